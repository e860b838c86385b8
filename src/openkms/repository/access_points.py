"""Application access rows: network rules, permission policies, application access points and client
keys' public halves, per account and region; and the instance CA's certificate row.

Never holds a client key's private key (there is no column for it). List values are stored as JSON
arrays and come back as tuples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update

from openkms.domain.access_points import AccessPoint, AccessPolicy, ClientKey, NetworkRule
from openkms.repository.tables import (
    aap_network_rules,
    aap_policies,
    application_access_points,
    as_utc,
    client_keys,
    instance_ca,
)

CA_ROW = 1


def _list(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def _tuple(text: str) -> tuple[str, ...]:
    return tuple(str(item) for item in json.loads(text))


class AccessPointRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- shared by the three named entities ---------------------------------------------------------
    def _where(self, table: Table, account_id: str, region_id: str, name: str) -> Any:
        return (table.c.account_id == account_id) & (table.c.region_id == region_id) & (table.c.name == name)

    def _get(self, table: Table, account_id: str, region_id: str, name: str) -> Row[Any] | None:
        return self._c.execute(select(table).where(self._where(table, account_id, region_id, name))).first()

    def _page(
        self, table: Table, account_id: str, region_id: str, offset: int, limit: int
    ) -> tuple[list[Row[Any]], int]:
        scope = (table.c.account_id == account_id) & (table.c.region_id == region_id)
        total = int(self._c.execute(select(func.count()).select_from(table).where(scope)).scalar_one())
        rows = list(
            self._c.execute(select(table).where(scope).order_by(table.c.name).offset(offset).limit(limit))
        )
        return rows, total

    def _remove(self, table: Table, account_id: str, region_id: str, name: str) -> bool:
        result = self._c.execute(delete(table).where(self._where(table, account_id, region_id, name)))
        return bool(result.rowcount)

    # -- network rules ------------------------------------------------------------------------------
    def add_network_rule(self, rule: NetworkRule) -> None:
        self._c.execute(
            insert(aap_network_rules).values(
                account_id=rule.account_id,
                region_id=rule.region_id,
                name=rule.name,
                description=rule.description,
                network_type=rule.network_type,
                source_addresses=_list(rule.source_addresses),
                created_at=rule.created_at,
            )
        )

    def network_rule(self, account_id: str, region_id: str, name: str) -> NetworkRule | None:
        row = self._get(aap_network_rules, account_id, region_id, name)
        return None if row is None else _network_rule(row)

    def network_rules(self, account_id: str, region_id: str, names: Sequence[str]) -> dict[str, NetworkRule]:
        if not names:
            return {}
        t = aap_network_rules
        rows = self._c.execute(
            select(t).where(
                t.c.account_id == account_id, t.c.region_id == region_id, t.c.name.in_(list(names))
            )
        )
        return {row.name: _network_rule(row) for row in rows}

    def page_network_rules(
        self, account_id: str, region_id: str, offset: int, limit: int
    ) -> tuple[list[NetworkRule], int]:
        rows, total = self._page(aap_network_rules, account_id, region_id, offset, limit)
        return [_network_rule(row) for row in rows], total

    def change_network_rule(self, rule: NetworkRule) -> None:
        t = aap_network_rules
        self._c.execute(
            update(t)
            .where(self._where(t, rule.account_id, rule.region_id, rule.name))
            .values(description=rule.description, source_addresses=_list(rule.source_addresses))
        )

    def remove_network_rule(self, account_id: str, region_id: str, name: str) -> bool:
        return self._remove(aap_network_rules, account_id, region_id, name)

    # -- permission policies ------------------------------------------------------------------------
    def add_policy(self, policy: AccessPolicy) -> None:
        self._c.execute(insert(aap_policies).values(**_policy_values(policy), created_at=policy.created_at))

    def policy(self, account_id: str, region_id: str, name: str) -> AccessPolicy | None:
        row = self._get(aap_policies, account_id, region_id, name)
        return None if row is None else _policy(row)

    def policies(self, account_id: str, region_id: str, names: Sequence[str]) -> dict[str, AccessPolicy]:
        if not names:
            return {}
        t = aap_policies
        rows = self._c.execute(
            select(t).where(
                t.c.account_id == account_id, t.c.region_id == region_id, t.c.name.in_(list(names))
            )
        )
        return {row.name: _policy(row) for row in rows}

    def page_policies(
        self, account_id: str, region_id: str, offset: int, limit: int
    ) -> tuple[list[AccessPolicy], int]:
        rows, total = self._page(aap_policies, account_id, region_id, offset, limit)
        return [_policy(row) for row in rows], total

    def change_policy(self, policy: AccessPolicy) -> None:
        t = aap_policies
        self._c.execute(
            update(t)
            .where(self._where(t, policy.account_id, policy.region_id, policy.name))
            .values(**_policy_values(policy))
        )

    def remove_policy(self, account_id: str, region_id: str, name: str) -> bool:
        return self._remove(aap_policies, account_id, region_id, name)

    # -- application access points ------------------------------------------------------------------
    def add_access_point(self, point: AccessPoint) -> None:
        self._c.execute(
            insert(application_access_points).values(
                account_id=point.account_id,
                region_id=point.region_id,
                name=point.name,
                description=point.description,
                authentication_method=point.authentication_method,
                policies=_list(point.policies),
                created_at=point.created_at,
            )
        )

    def access_point(self, account_id: str, region_id: str, name: str) -> AccessPoint | None:
        row = self._get(application_access_points, account_id, region_id, name)
        return None if row is None else _access_point(row)

    def page_access_points(
        self, account_id: str, region_id: str, offset: int, limit: int
    ) -> tuple[list[AccessPoint], int]:
        rows, total = self._page(application_access_points, account_id, region_id, offset, limit)
        return [_access_point(row) for row in rows], total

    def change_access_point(self, point: AccessPoint) -> None:
        t = application_access_points
        self._c.execute(
            update(t)
            .where(self._where(t, point.account_id, point.region_id, point.name))
            .values(description=point.description, policies=_list(point.policies))
        )

    def remove_access_point(self, account_id: str, region_id: str, name: str) -> bool:
        """The access point and every client key of it (a client key authenticates only as its access
        point: without it, the key is of no use)."""
        t = client_keys
        self._c.execute(
            delete(t).where(t.c.account_id == account_id, t.c.region_id == region_id, t.c.aap_name == name)
        )
        return self._remove(application_access_points, account_id, region_id, name)

    # -- client keys --------------------------------------------------------------------------------
    def add_client_key(self, key: ClientKey) -> None:
        self._c.execute(
            insert(client_keys).values(
                client_key_id=key.client_key_id,
                account_id=key.account_id,
                region_id=key.region_id,
                aap_name=key.aap_name,
                key_algorithm=key.key_algorithm,
                public_key=key.public_key_der,
                not_before=key.not_before,
                not_after=key.not_after,
                created_at=key.created_at,
            )
        )

    def client_key(self, client_key_id: str) -> ClientKey | None:
        row = self._c.execute(select(client_keys).where(client_keys.c.client_key_id == client_key_id)).first()
        return None if row is None else _client_key(row)

    def client_keys_of(self, account_id: str, region_id: str, aap_name: str | None) -> list[ClientKey]:
        t = client_keys
        query = select(t).where(t.c.account_id == account_id, t.c.region_id == region_id)
        if aap_name is not None:
            query = query.where(t.c.aap_name == aap_name)
        rows = self._c.execute(query.order_by(t.c.created_at, t.c.client_key_id))
        return [_client_key(row) for row in rows]

    def remove_client_key(self, client_key_id: str) -> bool:
        return bool(
            self._c.execute(delete(client_keys).where(client_keys.c.client_key_id == client_key_id)).rowcount
        )

    # -- the instance CA ----------------------------------------------------------------------------
    def ca_certificate(self) -> str | None:
        row = self._c.execute(select(instance_ca.c.certificate_pem).where(instance_ca.c.id == CA_ROW)).first()
        return None if row is None else str(row.certificate_pem)

    def add_ca_certificate(self, certificate_pem: str, now: datetime) -> None:
        self._c.execute(
            insert(instance_ca).values(id=CA_ROW, certificate_pem=certificate_pem, created_at=now)
        )


def _network_rule(row: Row[Any]) -> NetworkRule:
    return NetworkRule(
        row.account_id,
        row.region_id,
        row.name,
        row.description,
        row.network_type,
        _tuple(row.source_addresses),
        as_utc(row.created_at),
    )


def _policy_values(policy: AccessPolicy) -> dict[str, object]:
    return {
        "account_id": policy.account_id,
        "region_id": policy.region_id,
        "name": policy.name,
        "description": policy.description,
        "kms_instance": policy.kms_instance,
        "permissions": _list(policy.permissions),
        "resources": _list(policy.resources),
        "network_rules": _list(policy.network_rules),
    }


def _policy(row: Row[Any]) -> AccessPolicy:
    return AccessPolicy(
        row.account_id,
        row.region_id,
        row.name,
        row.description,
        row.kms_instance,
        _tuple(row.permissions),
        _tuple(row.resources),
        _tuple(row.network_rules),
        as_utc(row.created_at),
    )


def _access_point(row: Row[Any]) -> AccessPoint:
    return AccessPoint(
        row.account_id,
        row.region_id,
        row.name,
        row.description,
        row.authentication_method,
        _tuple(row.policies),
        as_utc(row.created_at),
    )


def _client_key(row: Row[Any]) -> ClientKey:
    return ClientKey(
        row.client_key_id,
        row.account_id,
        row.region_id,
        row.aap_name,
        row.key_algorithm,
        bytes(row.public_key),
        as_utc(row.not_before),
        as_utc(row.not_after),
        as_utc(row.created_at),
    )

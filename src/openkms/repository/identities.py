"""RAM users, roles, custom policies and their attachments, access keys of users, and service secrets.

Rows only: names are validated and documents parsed by the service before they get here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from openkms.domain.identity import Role, User
from openkms.repository.tables import (
    access_keys,
    as_utc,
    ram_attachments,
    ram_policies,
    ram_roles,
    ram_users,
    service_secrets,
)


@dataclass(frozen=True, slots=True)
class PolicyRow:
    account_id: str
    policy_name: str
    description: str
    document: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    principal_type: str  # "User" | "Role"
    principal_name: str
    policy_type: str  # "Custom" | "System"
    policy_name: str
    attached_at: datetime


@dataclass(frozen=True, slots=True)
class AccessKeyInfo:
    access_key_id: str
    status: str
    created_at: datetime


class IdentityRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- users --------------------------------------------------------------------------------------
    def add_user(self, row: User) -> None:
        self._c.execute(insert(ram_users).values(**_fields(row)))

    def user(self, account_id: str, user_name: str) -> User | None:
        found = self._c.execute(
            select(ram_users).where(ram_users.c.account_id == account_id, ram_users.c.user_name == user_name)
        ).first()
        return None if found is None else User(**_times(found._asdict()))

    def users(self, account_id: str, after: str, limit: int) -> list[User]:
        rows = self._c.execute(
            select(ram_users)
            .where(ram_users.c.account_id == account_id, ram_users.c.user_name > after)
            .order_by(ram_users.c.user_name)
            .limit(limit)
        )
        return [User(**_times(row._asdict())) for row in rows]

    def delete_user(self, account_id: str, user_name: str) -> None:
        self._c.execute(
            delete(ram_users).where(ram_users.c.account_id == account_id, ram_users.c.user_name == user_name)
        )

    # -- roles --------------------------------------------------------------------------------------
    def add_role(self, row: Role) -> None:
        self._c.execute(insert(ram_roles).values(**_fields(row)))

    def role(self, account_id: str, role_name: str) -> Role | None:
        found = self._c.execute(
            select(ram_roles).where(ram_roles.c.account_id == account_id, ram_roles.c.role_name == role_name)
        ).first()
        return None if found is None else Role(**_times(found._asdict()))

    def roles(self, account_id: str, after: str, limit: int) -> list[Role]:
        rows = self._c.execute(
            select(ram_roles)
            .where(ram_roles.c.account_id == account_id, ram_roles.c.role_name > after)
            .order_by(ram_roles.c.role_name)
            .limit(limit)
        )
        return [Role(**_times(row._asdict())) for row in rows]

    def delete_role(self, account_id: str, role_name: str) -> None:
        self._c.execute(
            delete(ram_roles).where(ram_roles.c.account_id == account_id, ram_roles.c.role_name == role_name)
        )

    # -- custom policies ----------------------------------------------------------------------------
    def add_policy(self, row: PolicyRow) -> None:
        self._c.execute(insert(ram_policies).values(**_fields(row)))

    def policy(self, account_id: str, policy_name: str) -> PolicyRow | None:
        found = self._c.execute(
            select(ram_policies).where(
                ram_policies.c.account_id == account_id, ram_policies.c.policy_name == policy_name
            )
        ).first()
        return None if found is None else PolicyRow(**_times(found._asdict()))

    def policies(self, account_id: str, after: str, limit: int) -> list[PolicyRow]:
        rows = self._c.execute(
            select(ram_policies)
            .where(ram_policies.c.account_id == account_id, ram_policies.c.policy_name > after)
            .order_by(ram_policies.c.policy_name)
            .limit(limit)
        )
        return [PolicyRow(**_times(row._asdict())) for row in rows]

    def delete_policy(self, account_id: str, policy_name: str) -> None:
        self._c.execute(
            delete(ram_policies).where(
                ram_policies.c.account_id == account_id, ram_policies.c.policy_name == policy_name
            )
        )

    # -- attachments --------------------------------------------------------------------------------
    def attach(self, account_id: str, row: AttachmentRow) -> None:
        self._c.execute(insert(ram_attachments).values(account_id=account_id, **_fields(row)))

    def detach(
        self, account_id: str, principal_type: str, principal_name: str, policy_type: str, name: str
    ) -> int:
        result = self._c.execute(
            delete(ram_attachments).where(
                ram_attachments.c.account_id == account_id,
                ram_attachments.c.principal_type == principal_type,
                ram_attachments.c.principal_name == principal_name,
                ram_attachments.c.policy_type == policy_type,
                ram_attachments.c.policy_name == name,
            )
        )
        return int(result.rowcount)

    def attachments(self, account_id: str, principal_type: str, principal_name: str) -> list[AttachmentRow]:
        rows = self._c.execute(
            select(ram_attachments)
            .where(
                ram_attachments.c.account_id == account_id,
                ram_attachments.c.principal_type == principal_type,
                ram_attachments.c.principal_name == principal_name,
            )
            .order_by(ram_attachments.c.attached_at, ram_attachments.c.policy_name)
        )
        return [
            AttachmentRow(
                r.principal_type, r.principal_name, r.policy_type, r.policy_name, as_utc(r.attached_at)
            )
            for r in rows
        ]

    def attachment_count(self, account_id: str, policy_type: str, policy_name: str) -> int:
        return int(
            self._c.execute(
                select(func.count())
                .select_from(ram_attachments)
                .where(
                    ram_attachments.c.account_id == account_id,
                    ram_attachments.c.policy_type == policy_type,
                    ram_attachments.c.policy_name == policy_name,
                )
            ).scalar_one()
        )

    def detach_policy_everywhere(self, account_id: str, policy_type: str, policy_name: str) -> None:
        self._c.execute(
            delete(ram_attachments).where(
                ram_attachments.c.account_id == account_id,
                ram_attachments.c.policy_type == policy_type,
                ram_attachments.c.policy_name == policy_name,
            )
        )

    # -- access keys of a principal -----------------------------------------------------------------
    def access_keys_of(self, account_id: str, principal_name: str) -> list[AccessKeyInfo]:
        rows = self._c.execute(
            select(access_keys.c.access_key_id, access_keys.c.status, access_keys.c.created_at)
            .where(access_keys.c.account_id == account_id, access_keys.c.principal_name == principal_name)
            .order_by(access_keys.c.created_at, access_keys.c.access_key_id)
        )
        return [AccessKeyInfo(r.access_key_id, r.status, as_utc(r.created_at)) for r in rows]

    def set_access_key_status(
        self, account_id: str, principal_name: str, access_key_id: str, status: str
    ) -> int:
        result = self._c.execute(
            update(access_keys)
            .where(
                access_keys.c.account_id == account_id,
                access_keys.c.principal_name == principal_name,
                access_keys.c.access_key_id == access_key_id,
            )
            .values(status=status)
        )
        return int(result.rowcount)

    def delete_access_key(self, account_id: str, principal_name: str, access_key_id: str) -> int:
        result = self._c.execute(
            delete(access_keys).where(
                access_keys.c.account_id == account_id,
                access_keys.c.principal_name == principal_name,
                access_keys.c.access_key_id == access_key_id,
            )
        )
        return int(result.rowcount)

    # -- service secrets ----------------------------------------------------------------------------
    def service_secret(self, name: str) -> bytes | None:
        found = self._c.execute(
            select(service_secrets.c.wrapped_value).where(service_secrets.c.name == name)
        ).first()
        return None if found is None else bytes(found.wrapped_value)

    def add_service_secret(self, name: str, wrapped_value: bytes, now: datetime) -> None:
        self._c.execute(
            insert(service_secrets).values(name=name, wrapped_value=wrapped_value, created_at=now)
        )


def _fields(row: object) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}  # type: ignore[attr-defined]


def _times(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("created_at", "updated_at"):
        moment = values.get(name)
        if isinstance(moment, datetime):
            values[name] = as_utc(moment)
    return values

"""Application access use cases (the OpenAPI side of the instance API): network rules, permission
policies and application access points, in the caller's account and region; and the grant the
instance endpoint decides on (`domain/access_decision.py`).

Every action is authorized as `kms:<Action>` on the entity's ARN by the caller's identity policies
(an account's root always may). Names a request refers to (a policy's network rules, an access
point's policies, a policy's instance) must exist when it is made; deleting one later is allowed, as
Alibaba allows it, and then grants nothing (deny by default).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock
from openkms.domain.access_decision import AccessGrant
from openkms.domain.access_points import (
    AUTHENTICATION_METHOD,
    MAX_NETWORK_RULES_PER_POLICY,
    MAX_POLICIES_PER_ACCESS_POINT,
    NETWORK_TYPE,
    AccessPoint,
    AccessPolicy,
    NetworkRule,
    check_entity_description,
    check_entity_name,
    check_permissions,
    check_resources,
    check_source_addresses,
    string_list,
)
from openkms.errors import Conflict, InvalidArgument, NotFound
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database, UnitOfWork
from openkms.resource import Resource
from openkms.service.authorization import authorize_own
from openkms.service.cache import TtlCache
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

__all__ = ["AccessPointService", "parse_access_control_rules"]


def _arn(ctx: RequestContext, kind: str, name: str) -> str:
    return f"acs:kms:{ctx.region_id}:{ctx.principal.account_id}:{kind}/{name}"


def _allow(ctx: RequestContext, action: KmsAction, kind: str, name: str) -> Resource:
    resource = Resource(_arn(ctx, kind, name))
    authorize_own(ctx, f"kms:{action}", resource.arn)
    return resource


def parse_access_control_rules(raw: str | None) -> tuple[str, ...]:
    """`{"NetworkRules":["rule1","rule2"]}` -> the rule names (none when absent)."""
    if raw is None or not raw.strip():
        return ()
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict) or set(document) - {"NetworkRules"}:
        raise InvalidArgument(
            'The parameter AccessControlRules must be a JSON object {"NetworkRules":["<rule name>",...]}.',
            parameter="AccessControlRules",
        )
    names = document.get("NetworkRules", [])
    if not isinstance(names, list):
        raise InvalidArgument(
            "The parameter AccessControlRules.NetworkRules must be a JSON array of rule names.",
            parameter="AccessControlRules",
        )
    if not names:
        return ()
    return tuple(
        check_entity_name(name, "AccessControlRules")
        for name in string_list(json.dumps(names), "AccessControlRules", limit=MAX_NETWORK_RULES_PER_POLICY)
    )


class AccessPointService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        grants: TtlCache[str, AccessGrant] | None = None,
        generation: Generation | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._generation = generation
        # The instance API's per-request read: cached like credentials (emptied when anything changes
        # on this node, or on another node of the store: migration 0014 announces these tables).
        self._grants = grants

    # -- network rules ------------------------------------------------------------------------------
    def create_network_rule(
        self,
        ctx: RequestContext,
        name: str,
        network_type: str,
        source_private_ip: str | None,
        description: str | None,
    ) -> Outcome[NetworkRule]:
        check_entity_name(name)
        resource = _allow(ctx, KmsAction.CREATE_NETWORK_RULE, "network", name)
        if network_type != NETWORK_TYPE:
            raise InvalidArgument(
                f"The parameter Type must be {NETWORK_TYPE} (the only network type).", parameter="Type"
            )
        rule = NetworkRule(
            ctx.principal.account_id,
            ctx.region_id,
            name,
            check_entity_description(description),
            network_type,
            _addresses(source_private_ip),
            self._clock.now(),
        )
        self._insert(lambda uow: uow.access_points.add_network_rule(rule), "network rule", name)
        return Outcome(rule, resource)

    def describe_network_rule(self, ctx: RequestContext, name: str) -> Outcome[NetworkRule]:
        resource = _allow(ctx, KmsAction.DESCRIBE_NETWORK_RULE, "network", name)
        with self._db.unit_of_work() as uow:
            rule = uow.access_points.network_rule(ctx.principal.account_id, ctx.region_id, name)
        if rule is None:
            raise _missing("network rule", name)
        return Outcome(rule, resource)

    def list_network_rules(
        self, ctx: RequestContext, page_number: int, page_size: int
    ) -> Outcome[tuple[list[NetworkRule], int]]:
        _allow(ctx, KmsAction.LIST_NETWORK_RULES, "network", "*")
        with self._db.unit_of_work() as uow:
            found = uow.access_points.page_network_rules(
                ctx.principal.account_id, ctx.region_id, (page_number - 1) * page_size, page_size
            )
        return Outcome(found)

    def update_network_rule(
        self, ctx: RequestContext, name: str, source_private_ip: str | None, description: str | None
    ) -> Outcome[NetworkRule]:
        resource = _allow(ctx, KmsAction.UPDATE_NETWORK_RULE, "network", name)
        addresses = None if source_private_ip is None else _addresses(source_private_ip)
        with self._writing() as uow:
            rule = uow.access_points.network_rule(ctx.principal.account_id, ctx.region_id, name)
            if rule is None:
                raise _missing("network rule", name)
            changed = replace(
                rule,
                description=rule.description
                if description is None
                else check_entity_description(description),
                source_addresses=rule.source_addresses if addresses is None else addresses,
            )
            uow.access_points.change_network_rule(changed)
        return Outcome(changed, resource)

    def delete_network_rule(self, ctx: RequestContext, name: str) -> Outcome[None]:
        resource = _allow(ctx, KmsAction.DELETE_NETWORK_RULE, "network", name)
        with self._writing() as uow:
            if not uow.access_points.remove_network_rule(ctx.principal.account_id, ctx.region_id, name):
                raise _missing("network rule", name)
        return Outcome(None, resource)

    # -- permission policies ------------------------------------------------------------------------
    def create_policy(
        self,
        ctx: RequestContext,
        name: str,
        kms_instance: str | None,
        permissions: str,
        resources: str,
        access_control_rules: str | None,
        description: str | None,
    ) -> Outcome[AccessPolicy]:
        check_entity_name(name)
        resource = _allow(ctx, KmsAction.CREATE_POLICY, "policy", name)
        if not kms_instance:
            raise InvalidArgument(
                "The parameter KmsInstance is required: the instance (kst-...) whose keys the policy covers.",
                parameter="KmsInstance",
            )
        policy = AccessPolicy(
            ctx.principal.account_id,
            ctx.region_id,
            name,
            check_entity_description(description),
            kms_instance,
            check_permissions(string_list(permissions, "Permissions")),
            check_resources(string_list(resources, "Resources")),
            parse_access_control_rules(access_control_rules),
            self._clock.now(),
        )

        def add(uow: UnitOfWork) -> None:
            self._check_instance(ctx, uow, kms_instance)
            self._check_rules_exist(ctx, uow, policy.network_rules)
            uow.access_points.add_policy(policy)

        self._insert(add, "policy", name)
        return Outcome(policy, resource)

    def describe_policy(self, ctx: RequestContext, name: str) -> Outcome[AccessPolicy]:
        resource = _allow(ctx, KmsAction.DESCRIBE_POLICY, "policy", name)
        with self._db.unit_of_work() as uow:
            policy = uow.access_points.policy(ctx.principal.account_id, ctx.region_id, name)
        if policy is None:
            raise _missing("policy", name)
        return Outcome(policy, resource)

    def list_policies(
        self, ctx: RequestContext, page_number: int, page_size: int
    ) -> Outcome[tuple[list[AccessPolicy], int]]:
        _allow(ctx, KmsAction.LIST_POLICIES, "policy", "*")
        with self._db.unit_of_work() as uow:
            found = uow.access_points.page_policies(
                ctx.principal.account_id, ctx.region_id, (page_number - 1) * page_size, page_size
            )
        return Outcome(found)

    def update_policy(
        self,
        ctx: RequestContext,
        name: str,
        permissions: str | None,
        resources: str | None,
        access_control_rules: str | None,
        description: str | None,
    ) -> Outcome[AccessPolicy]:
        resource = _allow(ctx, KmsAction.UPDATE_POLICY, "policy", name)
        new_permissions = (
            None if permissions is None else check_permissions(string_list(permissions, "Permissions"))
        )
        new_resources = None if resources is None else check_resources(string_list(resources, "Resources"))
        new_rules = None if access_control_rules is None else parse_access_control_rules(access_control_rules)
        with self._writing() as uow:
            policy = uow.access_points.policy(ctx.principal.account_id, ctx.region_id, name)
            if policy is None:
                raise _missing("policy", name)
            if new_rules is not None:
                self._check_rules_exist(ctx, uow, new_rules)
            changed = replace(
                policy,
                description=policy.description
                if description is None
                else check_entity_description(description),
                permissions=policy.permissions if new_permissions is None else new_permissions,
                resources=policy.resources if new_resources is None else new_resources,
                network_rules=policy.network_rules if new_rules is None else new_rules,
            )
            uow.access_points.change_policy(changed)
        return Outcome(changed, resource)

    def delete_policy(self, ctx: RequestContext, name: str) -> Outcome[None]:
        resource = _allow(ctx, KmsAction.DELETE_POLICY, "policy", name)
        with self._writing() as uow:
            if not uow.access_points.remove_policy(ctx.principal.account_id, ctx.region_id, name):
                raise _missing("policy", name)
        return Outcome(None, resource)

    # -- application access points ------------------------------------------------------------------
    def create_access_point(
        self,
        ctx: RequestContext,
        name: str,
        policies: str,
        authentication_method: str | None,
        description: str | None,
    ) -> Outcome[AccessPoint]:
        check_entity_name(name)
        resource = _allow(ctx, KmsAction.CREATE_APPLICATION_ACCESS_POINT, "applicationaccesspoint", name)
        method = authentication_method or AUTHENTICATION_METHOD
        if method != AUTHENTICATION_METHOD:
            raise InvalidArgument(
                f"The parameter AuthenticationMethod must be {AUTHENTICATION_METHOD} (the only method).",
                parameter="AuthenticationMethod",
            )
        point = AccessPoint(
            ctx.principal.account_id,
            ctx.region_id,
            name,
            check_entity_description(description),
            method,
            _policy_names(policies),
            self._clock.now(),
        )

        def add(uow: UnitOfWork) -> None:
            self._check_policies_exist(ctx, uow, point.policies)
            uow.access_points.add_access_point(point)

        self._insert(add, "application access point", name)
        return Outcome(point, resource)

    def describe_access_point(self, ctx: RequestContext, name: str) -> Outcome[AccessPoint]:
        resource = _allow(ctx, KmsAction.DESCRIBE_APPLICATION_ACCESS_POINT, "applicationaccesspoint", name)
        with self._db.unit_of_work() as uow:
            point = uow.access_points.access_point(ctx.principal.account_id, ctx.region_id, name)
        if point is None:
            raise _missing("application access point", name)
        return Outcome(point, resource)

    def list_access_points(
        self, ctx: RequestContext, page_number: int, page_size: int
    ) -> Outcome[tuple[list[AccessPoint], int]]:
        _allow(ctx, KmsAction.LIST_APPLICATION_ACCESS_POINTS, "applicationaccesspoint", "*")
        with self._db.unit_of_work() as uow:
            found = uow.access_points.page_access_points(
                ctx.principal.account_id, ctx.region_id, (page_number - 1) * page_size, page_size
            )
        return Outcome(found)

    def update_access_point(
        self, ctx: RequestContext, name: str, policies: str | None, description: str | None
    ) -> Outcome[AccessPoint]:
        resource = _allow(ctx, KmsAction.UPDATE_APPLICATION_ACCESS_POINT, "applicationaccesspoint", name)
        names = None if policies is None else _policy_names(policies)
        with self._writing() as uow:
            point = uow.access_points.access_point(ctx.principal.account_id, ctx.region_id, name)
            if point is None:
                raise _missing("application access point", name)
            if names is not None:
                self._check_policies_exist(ctx, uow, names)
            changed = replace(
                point,
                description=point.description
                if description is None
                else check_entity_description(description),
                policies=point.policies if names is None else names,
            )
            uow.access_points.change_access_point(changed)
        return Outcome(changed, resource)

    def delete_access_point(self, ctx: RequestContext, name: str) -> Outcome[None]:
        """The access point and its client keys go together."""
        resource = _allow(ctx, KmsAction.DELETE_APPLICATION_ACCESS_POINT, "applicationaccesspoint", name)
        with self._writing() as uow:
            if not uow.access_points.remove_access_point(ctx.principal.account_id, ctx.region_id, name):
                raise _missing("application access point", name)
        return Outcome(None, resource)

    # -- what the instance endpoint decides on ------------------------------------------------------
    def grant_of(self, client_key_id: str) -> AccessGrant | None:
        """The client key, its access point and the policies and network rules that access point
        names (those that exist), read in one snapshot; None for an unknown client key or one whose
        access point is gone. Authorization is `domain.access_decision.decide_access` on the result."""
        cache = self._grants
        if cache is not None:
            cached = cache.get(client_key_id)
            if cached is not None:
                return cached
        with self._db.unit_of_work() as uow:
            repo = uow.access_points
            key = repo.client_key(client_key_id)
            if key is None:
                return None
            point = repo.access_point(key.account_id, key.region_id, key.aap_name)
            if point is None:
                return None
            policies = repo.policies(key.account_id, key.region_id, point.policies)
            rule_names = sorted({name for policy in policies.values() for name in policy.network_rules})
            rules = repo.network_rules(key.account_id, key.region_id, rule_names)
        grant = AccessGrant(key, point, policies, rules)
        if cache is not None:
            cache.put(client_key_id, grant)
        return grant

    # -- helpers ------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[UnitOfWork]:
        """A write unit of work; once it committed, every worker's and node's cached grants go (the
        change generation; other nodes also hear of it from the database, migration 0014)."""
        with self._db.unit_of_work(write=True) as uow:
            yield uow
        if self._generation is not None:
            self._generation.bump()

    def _insert(self, add: Callable[[UnitOfWork], None], what: str, name: str) -> None:
        """Run `add(uow)` in a write unit of work; a name already taken is Rejected.ResourceExist."""
        try:
            with self._writing() as uow:
                add(uow)
        except IntegrityError:
            raise Conflict(f"A {what} named {name} already exists.") from None

    def _check_instance(self, ctx: RequestContext, uow: UnitOfWork, instance_id: str) -> None:
        instance = uow.instances.get(instance_id)
        if (
            instance is None
            or instance.account_id != ctx.principal.account_id
            or instance.region_id != ctx.region_id
        ):
            raise InvalidArgument(
                f"The parameter KmsInstance names no instance of this account in {ctx.region_id}.",
                parameter="KmsInstance",
            )

    def _check_rules_exist(self, ctx: RequestContext, uow: UnitOfWork, names: Sequence[str]) -> None:
        found = uow.access_points.network_rules(ctx.principal.account_id, ctx.region_id, names)
        missing = [name for name in names if name not in found]
        if missing:
            raise InvalidArgument(
                "The parameter AccessControlRules names network rules that do not exist: "
                f"{', '.join(missing)}.",
                parameter="AccessControlRules",
            )

    def _check_policies_exist(self, ctx: RequestContext, uow: UnitOfWork, names: Sequence[str]) -> None:
        found = uow.access_points.policies(ctx.principal.account_id, ctx.region_id, names)
        missing = [name for name in names if name not in found]
        if missing:
            raise InvalidArgument(
                f"The parameter Policies names policies that do not exist: {', '.join(missing)}.",
                parameter="Policies",
            )


def _addresses(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return ()
    return check_source_addresses(string_list(raw, "SourcePrivateIp"))


def _policy_names(raw: str) -> tuple[str, ...]:
    names = string_list(raw, "Policies", limit=MAX_POLICIES_PER_ACCESS_POINT)
    return tuple(check_entity_name(name, "Policies") for name in names)


def _missing(what: str, name: str) -> NotFound:
    return NotFound(f"The specified {what} {name} does not exist.")

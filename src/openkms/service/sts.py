"""STS use cases: AssumeRole (temporary credentials for a RAM role) and GetCallerIdentity.

AssumeRole needs both sides: the role's trust policy must trust the caller (or its account), and a
RAM user or role session must be allowed `sts:AssumeRole` on the role by its own identity policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openkms.clock import Clock
from openkms.errors import EntityNotExist, InvalidArgument, UnsupportedOperation
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.trust import trusted
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize_own, denied, facts
from openkms.service.context import RequestContext
from openkms.service.identities import IdentityService
from openkms.service.sts_tokens import SessionClaims, new_session_access_key_id

ROLE_ARN = re.compile(r"^acs:ram::(?P<account>\d{1,20}):role/(?P<role>[A-Za-z0-9.-]{1,64})\Z")
SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}\Z")
MIN_DURATION = 900
DEFAULT_DURATION = 3600


@dataclass(frozen=True, slots=True)
class Session:
    access_key_id: str
    secret: SecretBytes
    security_token: str
    expires_at: int
    assumed_role_arn: str
    assumed_role_id: str


class StsService:
    def __init__(self, db: Database, clock: Clock, identities: IdentityService) -> None:
        self._db = db
        self._clock = clock
        self._identities = identities

    def assume_role(
        self, ctx: RequestContext, role_arn: str, session_name: str, duration: int | None, policy: str | None
    ) -> Session:
        match = ROLE_ARN.match(role_arn)
        if match is None:
            raise InvalidArgument("RoleArn must look like acs:ram::<uid>:role/<name>.", parameter="RoleArn")
        if not SESSION_NAME.match(session_name):
            raise InvalidArgument(
                "RoleSessionName must be 2 to 64 letters, digits or . @ _ -.", parameter="RoleSessionName"
            )
        if policy:
            raise UnsupportedOperation("A session Policy is not supported yet; attach policies to the role.")
        account, role_name = match.group("account"), match.group("role")
        authorize_own(ctx, "sts:AssumeRole", f"acs:ram:*:{account}:role/{role_name}")
        with self._db.unit_of_work() as uow:
            role = uow.identities.role(account, role_name)
        if role is None:
            raise EntityNotExist("Role", f"The role {role_arn} does not exist.")
        seconds = DEFAULT_DURATION if duration is None else duration
        if not MIN_DURATION <= seconds <= role.max_session_duration:
            raise InvalidArgument(
                f"DurationSeconds must be {MIN_DURATION} to {role.max_session_duration} for this role.",
                parameter="DurationSeconds",
            )
        trust = parse_policy(role.assume_role_policy, PolicyKind.TRUST)
        ok, reason = trusted(trust, ctx.principal.account_id, ctx.principal.policy_arn, facts(ctx))
        if not ok:
            raise denied(ctx, "sts:AssumeRole", role_arn, reason, "denies" in reason, "TrustPolicy")
        expires_at = int(self._clock.now().timestamp()) + seconds  # the server's clock (dev clock too)
        claims = SessionClaims(
            new_session_access_key_id(), account, role_name, role.role_id, session_name, expires_at
        )
        access_key_id, secret, token = self._identities.claims_for(claims)
        return Session(
            access_key_id,
            secret,
            token,
            expires_at,
            f"acs:ram::{account}:assumed-role/{role_name}/{session_name}",
            f"{role.role_id}:{session_name}",
        )

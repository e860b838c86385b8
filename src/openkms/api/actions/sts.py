"""STS (2015-04-01) actions on the same RPC endpoint, shaped as the official
`alibabacloud-sts20150401` SDK models them: AssumeRole and GetCallerIdentity."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.resource import Resource
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome, acting_on
from openkms.service.sts import Session

API_VERSION = "2015-04-01"
MAX_DURATION = 43200


def assume_role(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    role = Resource(params.required_str("RoleArn"))
    with acting_on(role):
        session = services.sts.assume_role(
            ctx,
            role.arn,
            params.required_str("RoleSessionName"),
            params.optional_int("DurationSeconds", None, minimum=1, maximum=MAX_DURATION),
            params.optional_str("Policy"),
        )
    return Outcome(_credentials(session), role)


def _credentials(session: Session) -> Mapping[str, object]:
    return {
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            # The explicit export path of temporary credentials: to the caller that assumed the role.
            "AccessKeySecret": session.secret.reveal().decode("ascii"),
            "SecurityToken": session.security_token,
            "Expiration": iso_utc(datetime.fromtimestamp(session.expires_at, UTC)),
        },
        "AssumedRoleUser": {"Arn": session.assumed_role_arn, "AssumedRoleId": session.assumed_role_id},
    }


def get_caller_identity(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    principal = ctx.principal
    identity_type = {"Account": "Account", "SubUser": "RAMUser", "AssumedRoleUser": "AssumedRoleUser"}
    return {
        "AccountId": principal.account_id,
        "Arn": principal.arn,
        "IdentityType": identity_type[principal.kind],
        "PrincipalId": principal.name,
    }


ACTIONS = (
    Action(
        "AssumeRole",
        assume_role,
        frozenset(
            {"RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "ExternalId", "SourceIdentity"}
        ),
    ),
    Action("GetCallerIdentity", get_caller_identity, frozenset(), blocking=False),
)

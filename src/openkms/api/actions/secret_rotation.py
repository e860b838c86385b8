"""Secret rotation actions (2016-01-20): RotateSecret and UpdateSecretRotationPolicy.

Both apply to managed secrets only: the OpenKMS extension type OpenKMS.PostgreSQL (docs/secrets.md).
A Generic secret answers UnsupportedOperation, as Alibaba refuses both for generic secrets (they
rotate by PutSecretValue).
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.domain.secret_rotation import parse_interval
from openkms.errors import MissingParameter
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def rotate_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    done = services.secret_rotation.rotate(
        ctx, params.required_str("SecretName"), params.required_str("VersionId")
    )
    return done.map(
        lambda rotated: {
            "Arn": rotated.secret.arn,
            "SecretName": rotated.secret.name,
            "VersionId": rotated.version_id,
        }
    )


def update_secret_rotation_policy(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    if params.optional_str("EnableAutomaticRotation") is None:
        raise MissingParameter("EnableAutomaticRotation")
    enable = params.optional_bool("EnableAutomaticRotation", False)
    raw = params.optional_str("RotationInterval") or None
    interval = parse_interval(raw) if enable and raw is not None else None
    done = services.secret_rotation.update_policy(ctx, params.required_str("SecretName"), enable, interval)
    return done.map(lambda secret: {"SecretName": secret.name})


ACTIONS = (
    Action("RotateSecret", rotate_secret, frozenset({"SecretName", "VersionId"})),
    Action(
        "UpdateSecretRotationPolicy",
        update_secret_rotation_policy,
        frozenset({"SecretName", "EnableAutomaticRotation", "RotationInterval"}),
    ),
)

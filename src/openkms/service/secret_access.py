"""Finding a secret and deciding who may act on it: the secrets' counterpart of key resolution and
`service.authorization.authorize`.

A secret is named by its name (the caller's account and region) or its ARN. Another account's
secret whose secret policy shares nothing with the caller answers exactly as a missing one, so no
answer names it. Authorization asks the policy engine with the secret's ARN and its secret policy in
the place of a key policy (the same rules, `policy/engine.py`). Never reads a value.
"""

from __future__ import annotations

from openkms.domain.access_points import InstancePermission
from openkms.domain.secrets import Secret, parse_secret_ref
from openkms.errors import SecretInDeleteWindow, SecretNotFound
from openkms.policy.actions import KmsAction
from openkms.policy.engine import shares_with
from openkms.policy.secret_policy import secret_policy_document
from openkms.repository.database import UnitOfWork
from openkms.resource import Resource
from openkms.service.authorization import authorize_application, decide
from openkms.service.context import RequestContext
from openkms.service.outcome import acting_on


def secret_resource(secret: Secret, key_id: str | None = None, key_version_id: str | None = None) -> Resource:
    return Resource.secret(secret.arn, key_id, key_version_id)


def may_see(ctx: RequestContext, secret: Secret) -> bool:
    principal = ctx.principal
    if secret.account_id == principal.account_id:
        return True
    policy = secret_policy_document(secret.account_id, secret.policy)
    return shares_with(policy, principal.account_id, principal.policy_arn)


def authorize_secret(ctx: RequestContext, action: KmsAction, secret: Secret) -> None:
    """Deny by default: AccessDenied unless the caller may call `kms:<action>` on the secret."""
    principal = ctx.principal
    if secret.account_id == principal.account_id and principal.name == "root" and principal.actor == "user":
        return
    if principal.grant is not None:  # the instance API: CryptoServiceSecretUser, and the secret policy
        authorize_application(
            ctx,
            f"kms:{action}",
            InstancePermission.SECRET_USER,
            resource=f"secret/{secret.name}",
            instance_id=secret.instance_id,
            arn=secret.arn,
            account_id=secret.account_id,
            policy=secret_policy_document(secret.account_id, secret.policy),
        )
        ctx.secret_key_id = secret.encryption_key_id  # reading it decrypts under this key
        return
    decide(
        ctx,
        f"kms:{action}",
        secret.arn,
        secret.account_id,
        secret_policy_document(secret.account_id, secret.policy),
    )


def find_secret(uow: UnitOfWork, ctx: RequestContext, ref: str, *, lock: bool = False) -> Secret:
    """The secret `ref` names (name or ARN) if the caller may know it exists; SecretNotFound else."""
    name, region, account = parse_secret_ref(ref)
    if region is not None and region != ctx.region_id:
        raise SecretNotFound(f"The specified secret is not found in region {ctx.region_id}.")
    secret = uow.secrets.get(account or ctx.principal.account_id, ctx.region_id, name, lock=lock)
    if secret is None or not may_see(ctx, secret):
        raise SecretNotFound()
    return secret


def open_secret(
    uow: UnitOfWork,
    ctx: RequestContext,
    ref: str,
    action: KmsAction,
    *,
    lock: bool = False,
    pending_ok: bool = False,
) -> Secret:
    """Find and authorize; a secret waiting for deletion is refused unless `pending_ok`. Errors after
    the secret was found name it."""
    secret = find_secret(uow, ctx, ref, lock=lock)
    with acting_on(secret_resource(secret)):
        authorize_secret(ctx, action, secret)
        if secret.pending_deletion and not pending_ok:
            raise SecretInDeleteWindow()
    return secret

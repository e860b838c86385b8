"""Access keys -> principals. Secrets are stored wrapped and unwrapped only into a short-lived cache.

Three kinds of caller: an account's root (its own access keys), a RAM user (access keys of the user,
with the policies attached to the user), and an STS session of a RAM role (temporary credentials from
AssumeRole: an `STS.` access key id, its secret and a SecurityToken; the role's policies apply).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from openkms.clock import Clock
from openkms.errors import InvalidSecurityToken, SecurityTokenExpired, UnknownAccessKey
from openkms.keystore import Keystore
from openkms.node.generation import Generation
from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy
from openkms.policy.system import system_policy
from openkms.repository.database import Database
from openkms.repository.identities import IdentityRepository
from openkms.secret import SecretBytes
from openkms.service.cache import TtlCache
from openkms.service.context import Principal
from openkms.service.sts_tokens import STS_PREFIX, SessionClaims, TokenCodec
from openkms.types import AccountId

ACCESS_KEY_SPEC = "AccessKeySecret"


def secret_binding(access_key_id: str) -> tuple[str, str, str]:
    """The (key id, version id, spec) the keystore binds a wrapped access-key secret to."""
    return f"access-key/{access_key_id}", "secret", ACCESS_KEY_SPEC


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    principal: Principal
    secret: SecretBytes
    expires_at: float | None = None  # STS credentials only


class IdentityService:
    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        generation: Generation,
        cache_ttl: float,
        tokens: TokenCodec,
        clock: Clock,
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._tokens = tokens
        self._clock = clock
        self._cache: TtlCache[str, Credential] = TtlCache(cache_ttl, generation, name="credentials")
        self._roles: TtlCache[tuple[str, str], tuple[str, tuple[PolicyDocument, ...]]] = TtlCache(
            cache_ttl, generation, name="roles"
        )

    def credential(self, access_key_id: str, security_token: str | None = None) -> Credential:
        """The credential for an access key id; UnknownAccessKey if there is none or it is inactive.

        An `STS.` id needs its SecurityToken; the session must not have expired on the server's clock
        (the development clock moves it too) and its role must still be the one it was issued for.
        """
        if access_key_id.startswith(STS_PREFIX):
            return self._session(access_key_id, security_token)
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        with self._db.reading() as uow:
            row = uow.accounts.access_key(access_key_id)
            if row is None or row.status != "Active":
                raise UnknownAccessKey()
            policies: tuple[PolicyDocument, ...] = ()
            if row.principal_name.startswith("user/"):
                user_name = row.principal_name.removeprefix("user/")
                if uow.identities.user(row.account_id, user_name) is None:
                    raise UnknownAccessKey()
                policies = attached_policies(uow.identities, row.account_id, "User", user_name)
        key_id, version_id, spec = secret_binding(row.access_key_id)
        secret = self._keystore.unwrap(key_id, version_id, spec, row.wrapped_secret)
        principal = Principal(row.account_id, row.principal_name, policies)
        credential = Credential(row.access_key_id, principal, secret)
        self._cache.put(access_key_id, credential)
        return credential

    def _session(self, access_key_id: str, security_token: str | None) -> Credential:
        if not security_token:
            raise InvalidSecurityToken("An STS access key needs its SecurityToken.")
        claims = self._tokens.open(security_token)
        if claims is None or claims.access_key_id != access_key_id:
            raise InvalidSecurityToken()
        if claims.expires_at <= self._clock.now().timestamp():
            raise SecurityTokenExpired()
        role = self.role_policies(claims.account_id, claims.role_name)
        if role is None or not hmac.compare_digest(role[0], claims.role_id):
            raise UnknownAccessKey("The role of these credentials no longer exists.")
        policies = role[1]
        principal = Principal(
            AccountId(claims.account_id), f"assumed-role/{claims.role_name}/{claims.session_name}", policies
        )
        return Credential(access_key_id, principal, self._tokens.secret_for(claims), claims.expires_at)

    def role_policies(self, account_id: str, role_name: str) -> tuple[str, tuple[PolicyDocument, ...]] | None:
        """(RoleId, identity policies) of a role (cached), or None when the role does not exist."""
        cached = self._roles.get((account_id, role_name))
        if cached is not None:
            return cached
        with self._db.reading() as uow:
            role = uow.identities.role(account_id, role_name)
            if role is None:
                return None
            found = (role.role_id, attached_policies(uow.identities, account_id, "Role", role_name))
        self._roles.put((account_id, role_name), found)
        return found

    def claims_for(self, claims: SessionClaims) -> tuple[str, SecretBytes, str]:
        """(access key id, secret, security token) for a new session."""
        token = self._tokens.seal(claims)
        return claims.access_key_id, self._tokens.secret_for(claims), token


def attached_policies(
    repo: IdentityRepository, account_id: str, principal_type: str, name: str
) -> tuple[PolicyDocument, ...]:
    documents: list[PolicyDocument] = []
    for attachment in repo.attachments(account_id, principal_type, name):
        if attachment.policy_type == "System":
            document = system_policy(attachment.policy_name)
            if document is not None:
                documents.append(document)
            continue
        row = repo.policy(account_id, attachment.policy_name)
        if row is not None:
            documents.append(parse_policy(row.document, PolicyKind.IDENTITY))
    return tuple(documents)

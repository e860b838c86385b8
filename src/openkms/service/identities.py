"""Access keys -> principals. Secrets are stored wrapped and unwrapped only into a short-lived cache."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.errors import UnknownAccessKey
from openkms.keystore import Keystore
from openkms.node.generation import Generation
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.cache import TtlCache
from openkms.service.context import Principal

ACCESS_KEY_SPEC = "AccessKeySecret"


def secret_binding(access_key_id: str) -> tuple[str, str, str]:
    """The (key id, version id, spec) the keystore binds a wrapped access-key secret to."""
    return f"access-key/{access_key_id}", "secret", ACCESS_KEY_SPEC


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    principal: Principal
    secret: SecretBytes


class IdentityService:
    def __init__(self, db: Database, keystore: Keystore, generation: Generation, cache_ttl: float) -> None:
        self._db = db
        self._keystore = keystore
        self._cache: TtlCache[str, Credential] = TtlCache(cache_ttl, generation)

    def credential(self, access_key_id: str) -> Credential:
        """The credential for an access key id; UnknownAccessKey if there is none or it is inactive."""
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        with self._db.unit_of_work() as uow:
            row = uow.accounts.access_key(access_key_id)
        if row is None or row.status != "Active":
            raise UnknownAccessKey()
        key_id, version_id, spec = secret_binding(row.access_key_id)
        secret = self._keystore.unwrap(key_id, version_id, spec, row.wrapped_secret)
        credential = Credential(row.access_key_id, Principal(row.account_id, row.principal_name), secret)
        self._cache.put(access_key_id, credential)
        return credential

"""Server-wide secrets (the STS token key, the key-import key): made once per store, kept wrapped by
the keystore in `service_secrets`, and read back by every worker and node.

The first process to need one makes it; when two race, the database's primary key keeps the first and
the other reads it. Each secret is bound to its name and purpose, so one can never be unwrapped as
another (or as key material).
"""

from __future__ import annotations

import os

from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.repository.database import Database
from openkms.secret import SecretBytes

AUDIT_CHAIN_SECRET = "audit-chain"  # noqa: S105 - the name of a server secret, not a secret


def service_secret_binding(name: str, purpose: str) -> tuple[str, str, str]:
    """What a service secret's wrapping is bound to (the keyring's rewrap binds it the same way)."""
    return (f"service-secret/{name}", "v1", purpose)


def service_secret(db: Database, keystore: Keystore, clock: Clock, name: str, purpose: str) -> SecretBytes:
    """The 32-byte secret called `name` (made now if the store has none yet). Needs an unsealed keystore."""
    binding = service_secret_binding(name, purpose)
    with db.unit_of_work() as uow:
        wrapped = uow.identities.service_secret(name)
    if wrapped is None:
        fresh = SecretBytes(os.urandom(32))
        candidate = keystore.wrap(*binding, fresh)
        try:
            with db.unit_of_work(write=True) as uow:
                uow.identities.add_service_secret(name, candidate, clock.now())
            return fresh
        except IntegrityError:  # another process made it first: use theirs
            with db.unit_of_work() as uow:
                wrapped = uow.identities.service_secret(name)
            if wrapped is None:  # pragma: no cover - the insert conflicted with exactly this row
                raise
    return keystore.unwrap(*binding, wrapped)

"""What the keyring's rotation looks like from outside the keystore: the kinds of stored rows wrapped
under a KEK term, each term's count of them, retired terms, and the rewrap's progress.

Values only; no I/O and no key material (a count of rows and a term number say nothing secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class WrappedKind(StrEnum):
    """Every kind of stored row the keystore wraps (each is rewrapped by a rotation)."""

    KEY_MATERIAL = "key-material"  # key_versions.wrapped_material (software, and external keys' inner key)
    IMPORT_WRAPPING_KEY = "import-wrapping-key"  # import_tokens.wrapped_private_key (software)
    ACCESS_KEY_SECRET = "access-key-secret"  # noqa: S105 - access_keys.wrapped_secret
    INSTANCE_SECRET = "instance-secret"  # noqa: S105 - instances.sealed_secret
    SERVICE_SECRET = "service-secret"  # noqa: S105 - service_secrets.wrapped_value


@dataclass(frozen=True, slots=True)
class TermRows:
    """One live term: when it was made, whether it is the active one, and the rows under it by kind."""

    term: int
    created_at: datetime
    active: bool
    rows: dict[WrappedKind, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True, slots=True)
class RetiredTerm:
    term: int
    created_at: datetime
    retired_at: datetime


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    """`openkms keyring status`: the live terms (newest last), the retired ones, and the rewrap's
    progress towards the active term. `unreadable` counts rows whose term could not be read (not in
    the keystore's format): they are never rewrapped and keep their term from being retired."""

    active_term: int
    terms: tuple[TermRows, ...]
    retired: tuple[RetiredTerm, ...]
    rewrapped: int
    last_batch_at: datetime | None
    unreadable: int = 0

    @property
    def remaining(self) -> int:
        """Rows still under an older term than the active one."""
        return sum(term.total for term in self.terms if not term.active) + self.unreadable


@dataclass(frozen=True, slots=True)
class RewrapBatch:
    """One batch of the rewrap: rows moved to the active term, rows that failed their integrity check
    (left as they are and reported), and whether this batch ended a pass over every kind."""

    rewrapped: int
    failed: int
    pass_finished: bool

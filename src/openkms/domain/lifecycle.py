"""The key state machine (seed F5) as one transition table, and the one usability guard for crypto.

Every state change goes through `transition()`; every cryptographic operation asks `ensure_usable()`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from openkms.errors import InvalidKeyState, KeyDisabled
from openkms.types import KeyState


class KeyEvent(StrEnum):
    ENABLE = "EnableKey"
    DISABLE = "DisableKey"
    SCHEDULE_DELETION = "ScheduleKeyDeletion"
    CANCEL_DELETION = "CancelKeyDeletion"
    # Imported material.
    IMPORT_MATERIAL = "ImportKeyMaterial"
    DELETE_MATERIAL = "DeleteKeyMaterial"


# (state, event) -> new state. A missing pair is a refused transition.
_TRANSITIONS: dict[tuple[KeyState, KeyEvent], KeyState] = {
    (KeyState.ENABLED, KeyEvent.ENABLE): KeyState.ENABLED,
    (KeyState.DISABLED, KeyEvent.ENABLE): KeyState.ENABLED,
    (KeyState.ENABLED, KeyEvent.DISABLE): KeyState.DISABLED,
    (KeyState.DISABLED, KeyEvent.DISABLE): KeyState.DISABLED,
    (KeyState.ENABLED, KeyEvent.SCHEDULE_DELETION): KeyState.PENDING_DELETION,
    (KeyState.DISABLED, KeyEvent.SCHEDULE_DELETION): KeyState.PENDING_DELETION,
    # Alibaba returns a cancelled key to Enabled (not to its state before, as AWS does).
    (KeyState.PENDING_DELETION, KeyEvent.CANCEL_DELETION): KeyState.ENABLED,
    # Imported material: a key waiting for material may be deleted; importing enables it, or
    # (the same material again, e.g. with a new expiry) keeps an Enabled or Disabled key as it is;
    # deleting or expiring the material returns the key to PendingImport.
    (KeyState.PENDING_IMPORT, KeyEvent.SCHEDULE_DELETION): KeyState.PENDING_DELETION,
    (KeyState.PENDING_IMPORT, KeyEvent.IMPORT_MATERIAL): KeyState.ENABLED,
    (KeyState.ENABLED, KeyEvent.IMPORT_MATERIAL): KeyState.ENABLED,
    (KeyState.DISABLED, KeyEvent.IMPORT_MATERIAL): KeyState.DISABLED,
    (KeyState.ENABLED, KeyEvent.DELETE_MATERIAL): KeyState.PENDING_IMPORT,
    (KeyState.DISABLED, KeyEvent.DELETE_MATERIAL): KeyState.PENDING_IMPORT,
    (KeyState.PENDING_IMPORT, KeyEvent.DELETE_MATERIAL): KeyState.PENDING_IMPORT,
}


def transition(state: KeyState, event: KeyEvent) -> KeyState:
    """The state after `event`, or InvalidKeyState when the table has no such move."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidKeyState(f"A key in state {state} cannot take {event}.") from None


def ensure_material_current(material_expire_time: datetime | None, now: float) -> None:
    """Imported material past its MaterialExpireTime is unusable at once, whether or not the expiry job
    has run yet (it destroys the material and moves the key to PendingImport)."""
    if material_expire_time is not None and now >= material_expire_time.timestamp():
        raise InvalidKeyState("The key's imported material has expired; import the material again.")


def ensure_usable(state: KeyState) -> None:
    """Only Enabled keys take part in cryptographic operations (P8)."""
    if state is KeyState.ENABLED:
        return
    if state is KeyState.DISABLED:
        raise KeyDisabled()
    raise InvalidKeyState(f"The key is {state}; cryptographic operations are refused.")

"""A bounded pool of logged-in sessions on one PKCS#11 token.

Owns `TokenSessions`: the module is loaded once per process and path; the token is found by label or
serial; the first session logs in (PKCS#11 login belongs to the application, so the other sessions
share it) and the pool keeps at most `config.sessions` of them, each with its own cache of objects
found on it (a python-pkcs11 object is bound to the session that found it). A caller waits at most
`wait_seconds` for a free session. When the token or a session fails (removed, closed, logged out,
device error) the failing session, or the whole pool, is dropped and reopened on the next use; the
caller gets KeyStoreUnavailable naming the token, never the PIN.

Thread safe by serialising: python-pkcs11 initialises a module with C_Initialize(NULL), which tells the
module that the application will not call it from several threads at once (SoftHSM2 then takes no
locks, and concurrent calls crash it). So every call into one module, from every pool of the process,
holds that module's lock; a process uses one core of the token at a time (each server worker is a
process of its own).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import pkcs11
import pkcs11.exceptions as p11

from openkms.errors import KeyStoreUnavailable
from openkms.hsm.config import TokenConfig, load_pin

__all__ = ["SESSION_ERRORS", "TOKEN_ERRORS", "Slot", "TokenSessions", "module_lock"]

WAIT_SECONDS: Final = 5.0

# A session that answered one of these is not used again.
SESSION_ERRORS: Final[tuple[type[Exception], ...]] = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.SessionCount,
)
# After one of these the whole pool is reopened (and logged in again).
TOKEN_ERRORS: Final[tuple[type[Exception], ...]] = (
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.DeviceMemory,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)

_LIBRARIES: dict[str, Any] = {}
_LIBRARIES_LOCK = threading.Lock()
_MODULE_LOCKS: dict[str, threading.RLock] = {}


def module_lock(path: str) -> threading.RLock:
    """The lock every call into the module at `path` holds (see the module docstring)."""
    with _LIBRARIES_LOCK:
        lock = _MODULE_LOCKS.get(path)
        if lock is None:
            lock = _MODULE_LOCKS[path] = threading.RLock()
        return lock


def _library(path: str) -> Any:
    """The module at `path`, loaded (and C_Initialize'd) once per process."""
    with _LIBRARIES_LOCK:
        lib = _LIBRARIES.get(path)
        if lib is None:
            lib = _LIBRARIES[path] = pkcs11.lib(path)
        return lib


@dataclass(eq=False)
class Slot:
    """One pooled session and the objects found on it (by whatever key the user of the pool chooses)."""

    session: Any  # pkcs11.Session
    generation: int
    objects: dict[Any, Any] = field(default_factory=dict)


class TokenSessions:
    def __init__(self, config: TokenConfig, *, wait_seconds: float = WAIT_SECONDS) -> None:
        self.config = config
        self._wait = wait_seconds
        self._cond = threading.Condition()
        self._idle: list[Slot] = []
        self._open = 0  # sessions made and not dropped, idle or in use
        self._generation = 0  # grows when the pool is dropped: older sessions are not returned to it
        self._login: Any = None  # the logged-in session: kept open while any session is
        self._token: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"TokenSessions({self.config.token_name}, open={self._open}, size={self.config.sessions})"

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A logged-in python-pkcs11 Session for the duration of the block."""
        with self.slot() as slot:
            yield slot.session

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A pooled session with its object cache, used under the module's lock. A session or token
        failure in the block drops the session (or the pool) and raises KeyStoreUnavailable."""
        with module_lock(self.config.module_path), self._slot() as slot:
            yield slot

    @contextmanager
    def _slot(self) -> Iterator[Slot]:
        slot = self._take()
        try:
            yield slot
        except SESSION_ERRORS as exc:
            self._drop(slot)
            slot = None  # type: ignore[assignment]
            raise self._unavailable(exc) from None
        except (p11.ObjectHandleInvalid, p11.KeyHandleInvalid) as exc:
            # An object this session had found is gone (destroyed by another session or process):
            # forget what it found; the next request looks again (and reports the material lost).
            slot.objects.clear()
            raise self._unavailable(exc) from None
        except TOKEN_ERRORS as exc:
            self._drop(slot, everything=True)
            slot = None  # type: ignore[assignment]
            raise self._unavailable(exc) from None
        finally:
            if slot is not None:
                self._give_back(slot)

    def check_health(self) -> str:
        """What the token says of itself, after a session proved it answers."""
        with self.session():
            token = self._token
            return (
                f"{self.config.token_name}: {token.manufacturer_id.strip()} {token.model.strip()}, "
                f"serial {token.serial.decode(errors='replace').strip()}"
            )

    def close(self) -> None:
        with self._cond:
            self._closed = True
        with module_lock(self.config.module_path):
            self._drop(None, everything=True)

    # -- the pool ---------------------------------------------------------------------------------
    def _take(self) -> Slot:
        with self._cond:
            if self._closed:
                raise KeyStoreUnavailable(f"The sessions of {self.config.token_name} are closed.")
            free = self._cond.wait_for(lambda: self._idle or self._open < self.config.sessions, self._wait)
            if not free:
                raise KeyStoreUnavailable(f"Every session of {self.config.token_name} is busy; retry later.")
            if self._idle:
                return self._idle.pop()
            self._open += 1
            generation = self._generation
        try:
            return Slot(self._new_session(), generation)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _give_back(self, slot: Slot) -> None:
        with self._cond:
            if slot.generation == self._generation and not self._closed:
                self._idle.append(slot)
                self._cond.notify()
                return
        _close_quietly(slot.session)

    def _drop(self, slot: Slot | None, *, everything: bool = False) -> None:
        with self._cond:
            if slot is not None and slot.generation == self._generation:
                self._open -= 1
            doomed = [] if slot is None else [slot.session]
            if everything:
                doomed += [idle.session for idle in self._idle]
                self._idle = []
                self._open = 0
                self._generation += 1
                if self._login is not None:
                    doomed.append(self._login)
                self._login, self._token = None, None
            self._cond.notify_all()
        for session in doomed:
            _close_quietly(session)

    def _new_session(self) -> Any:
        try:
            with self._cond:
                if self._login is None:
                    token = self._find_token()
                    pin = load_pin(self.config.pin_source)
                    try:
                        self._login = token.open(user_pin=pin.reveal().decode(), rw=True)
                    except p11.UserAlreadyLoggedIn:  # another pool of this process logged in first
                        self._login = token.open(rw=True)
                    self._token = token
                token = self._token
            return token.open(rw=True)
        except p11.PinIncorrect:
            raise KeyStoreUnavailable(f"The PIN of {self.config.token_name} is not accepted.") from None
        except (p11.PinLocked, p11.PinExpired):
            raise KeyStoreUnavailable(f"The PIN of {self.config.token_name} is locked or expired.") from None
        except p11.PKCS11Error as exc:
            raise self._unavailable(exc) from None

    def _find_token(self) -> Any:
        config = self.config
        try:
            lib = _library(config.module_path)
        except (OSError, RuntimeError, p11.PKCS11Error) as exc:
            raise KeyStoreUnavailable(
                f"The PKCS#11 module {config.module_path} cannot be loaded ({type(exc).__name__})."
            ) from None
        try:
            if config.token_label is not None:
                return lib.get_token(token_label=config.token_label)
            return lib.get_token(token_serial=(config.token_serial or "").encode())
        except p11.NoSuchToken:
            raise KeyStoreUnavailable(f"No {config.token_name} is in {config.module_path}.") from None
        except p11.MultipleTokensReturned:
            raise KeyStoreUnavailable(f"More than one {config.token_name}: name it by serial.") from None

    def _unavailable(self, exc: BaseException) -> KeyStoreUnavailable:
        name = type(exc).__name__
        return KeyStoreUnavailable(f"The {self.config.token_name} failed ({name}); retry later.")


def _close_quietly(session: Any) -> None:
    with contextlib.suppress(p11.PKCS11Error):
        session.close()

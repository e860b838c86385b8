"""Bring your own key: GetParametersForImport, ImportKeyMaterial, DeleteKeyMaterial and the
material-expiry job's step.

An ImportToken is `OKI1.<token id>.<mac>`: the token's row holds the key id, the wrapping algorithm, the
wrapping public key, the expiry and the wrapping private key, wrapped by the keystore bound to the key
id and token id; the mac is an HMAC over the token id, key id, algorithm, expiry and public key under a
server secret, so a forged token, a token of another key, or a row altered in storage is refused
before any unwrapping. The same secret (through HKDF) keys the
fingerprint of imported material. The secret is made once and stored wrapped by the keystore.
Every change goes through the one locked write (`KeyService.locked`), which drops the key caches on
every worker; material that is deleted or expires is overwritten and the database scrubbed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.clock import Clock
from openkms.domain.key import Key
from openkms.domain.key_import import (
    TOKEN_LIFETIME,
    ImportParameters,
    StoredToken,
    check_wrapping_key_spec,
    format_token,
    parse_material_expiry,
    parse_token,
    parse_wrapping_algorithm,
)
from openkms.domain.lifecycle import KeyEvent, transition
from openkms.errors import (
    ImportTokenExpired,
    InvalidArgument,
    InvalidImportToken,
    InvalidKeyState,
    KeyNotFound,
    UnsupportedOperation,
)
from openkms.keystore import Keystore
from openkms.policy.actions import KmsAction
from openkms.providers.base import MATERIAL_IMPORT, ImportRequest, MaterialImport
from openkms.providers.key_import import ensure_wrapping_algorithm_safe
from openkms.providers.registry import ProviderRegistry
from openkms.repository.database import Database, UnitOfWork
from openkms.secret import SecretBytes
from openkms.service.backend_material import WRAPPING_KEY_SPEC, destroy_in_backend
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource
from openkms.service.outcome import Outcome, acting_on
from openkms.service.service_secrets import service_secret
from openkms.types import KeyId, KeyState, KeyVersionId, Origin

SECRET_NAME = "key-import-key"  # noqa: S105 - the row name of the wrapped secret
# An expired token's wrapping key is destroyed at once; its row stays this long so the token answers
# ExpiredImportToken rather than InvalidImportToken.
TOKEN_RETENTION = timedelta(days=7)
ENCRYPTED_MATERIAL_LIMIT = 16384  # bytes after base64 decoding: an RSA-4096 envelope is about 2.6 KB


class KeyImportService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        providers: ProviderRegistry,
        keystore: Keystore,
        clock: Clock,
    ) -> None:
        self._db = db
        self._keys = keys
        self._providers = providers
        self._keystore = keystore
        self._clock = clock
        self._lock = threading.Lock()
        self._derived: tuple[bytes, SecretBytes] | None = None
        keystore.on_seal(self._forget)

    # -- GetParametersForImport -------------------------------------------------------------------
    def get_parameters(
        self, ctx: RequestContext, key_ref: str, algorithm_raw: str | None, key_spec_raw: str | None
    ) -> Outcome[ImportParameters]:
        algorithm = parse_wrapping_algorithm(algorithm_raw)
        ensure_wrapping_algorithm_safe(algorithm)
        check_wrapping_key_spec(key_spec_raw)
        key = self._keys.read(ctx, key_ref, KmsAction.GET_PARAMETERS_FOR_IMPORT)
        with acting_on(key_resource(key)):
            _ensure_importable(key)
            token_id = secrets.token_hex(16)
            public_der, wrapped = self._importer(key).new_import_wrapping_key(key.key_id, token_id)
        now = self._clock.now().replace(microsecond=0)
        token = StoredToken(token_id, key.key_id, algorithm, public_der, wrapped, now + TOKEN_LIFETIME, now)
        with self._keys.holding(ctx, key.key_id, KmsAction.GET_PARAMETERS_FOR_IMPORT) as (uow, current):
            _ensure_importable(current)
            uow.imports.add_token(token)
        found = ImportParameters(
            key.key_id, format_token(token_id, self._mac(token)), public_der, token.expires_at
        )
        return Outcome(found, key_resource(key))

    # -- ImportKeyMaterial ------------------------------------------------------------------------
    def import_material(
        self,
        ctx: RequestContext,
        key_ref: str,
        import_token: str,
        encrypted_material: bytes,
        expire_unix: int | None,
    ) -> Outcome[None]:
        key = self._keys.read(ctx, key_ref, KmsAction.IMPORT_KEY_MATERIAL)
        now = self._clock.now()
        with acting_on(key_resource(key)):
            _ensure_importable(key)
            expire_time = parse_material_expiry(expire_unix, now)
            version_id, wrapped, fingerprint, expected = self._unwrap(
                key, import_token, encrypted_material, now
            )
        with self._keys.locked(ctx, key.key_id, KmsAction.IMPORT_KEY_MATERIAL) as (uow, current):
            state = transition(current.state, KeyEvent.IMPORT_MATERIAL)
            latest = uow.imports.record(key.key_id)
            if latest is None or latest[1] != expected:
                # Another import recorded a fingerprint meanwhile: this material was not checked against it.
                raise InvalidKeyState("The key's material changed while importing; try again.")
            uow.imports.put_material(key.key_id, version_id, wrapped, fingerprint, state, expire_time, now)
        self._providers.forget(version_id)
        return Outcome(None, key_resource(key, version_id))

    def _unwrap(
        self, key: Key, import_token: str, encrypted_material: bytes, now: datetime
    ) -> tuple[KeyVersionId, bytes, bytes, bytes | None]:
        """Check the token and unwrap the material in the provider: (version, wrapped material to
        store, its fingerprint, the fingerprint it was checked against)."""
        if not encrypted_material or len(encrypted_material) > ENCRYPTED_MATERIAL_LIMIT:
            raise InvalidArgument(
                "EncryptedKeyMaterial is empty or too long.", parameter="EncryptedKeyMaterial"
            )
        token_id, mac = parse_token(import_token)
        with self._db.unit_of_work() as uow:
            token = uow.imports.token(token_id)
            record = uow.imports.record(key.key_id)
        if token is None or not hmac.compare_digest(mac, self._mac(token)) or token.key_id != key.key_id:
            raise InvalidImportToken()
        if token.expires_at <= now or not token.wrapped_private_key:
            # An empty wrapping key: the expiry job destroyed it (another node's clock may run ahead).
            raise ImportTokenExpired()
        if record is None:  # pragma: no cover - every EXTERNAL key gets its record at CreateKey
            raise UnsupportedOperation("The key has no import record.")
        version_id, expected = record
        request = ImportRequest(
            key.key_id,
            version_id,
            key.spec,
            token.token_id,
            token.algorithm,
            token.wrapped_private_key,
            encrypted_material,
        )
        wrapped, fingerprint = self._importer(key).import_material(request, self._fingerprint_key(), expected)
        return version_id, wrapped, fingerprint, expected

    # -- DeleteKeyMaterial and the expiry job ------------------------------------------------------
    def delete_material(self, ctx: RequestContext, key_ref: str) -> Outcome[None]:
        with self._keys.locked(ctx, key_ref, KmsAction.DELETE_KEY_MATERIAL) as (uow, key):
            _ensure_external(key)
            transition(key.state, KeyEvent.DELETE_MATERIAL)
            destroyed = self._remove_material(uow, key)
        self._destroyed(destroyed)
        return Outcome(None, key_resource(key))

    def due_for_expiry(self, limit: int = 100) -> list[Key]:
        with self._db.unit_of_work() as uow:
            found = [uow.keys.get(key_id) for key_id in uow.imports.due_for_expiry(self._clock.now(), limit)]
        return [key for key in found if key is not None]

    def expire_if_due(self, ctx: RequestContext, key_id: KeyId) -> Outcome[bool]:
        """The expiry job's step for one key: destroy its material if MaterialExpireTime has passed."""
        destroyed: list[KeyVersionId] | None = None
        try:
            with self._keys.locked(ctx, key_id, KmsAction.DELETE_KEY_MATERIAL) as (uow, key):
                expiry = key.material_expire_time
                due = expiry is not None and expiry <= self._clock.now()
                if due and key.state is not KeyState.PENDING_DELETION:
                    transition(key.state, KeyEvent.DELETE_MATERIAL)
                    destroyed = self._remove_material(uow, key)
        except KeyNotFound:
            return Outcome(False, acted=False)
        if destroyed is None:
            return Outcome(False, key_resource(key), acted=False)
        self._destroyed(destroyed)
        return Outcome(True, key_resource(key))

    def _remove_material(self, uow: UnitOfWork, key: Key) -> list[KeyVersionId]:
        """The key's material goes: from its backend (an HSM's objects) first, then its rows."""
        stored = [(v.version.version_id, v.wrapped_material) for v in uow.keys.versions(key.key_id)]
        destroy_in_backend(self._providers, self._keys.instance_of(key), key.key_id, key.spec, stored)
        return uow.imports.remove_material(key.key_id)

    def _destroyed(self, versions: list[KeyVersionId]) -> None:
        """Material was removed: no cache keeps it, and no database page either."""
        for version_id in versions:
            self._providers.forget(version_id)
        self._db.scrub()

    def _importer(self, key: Key) -> MaterialImport:
        """The provider of the key's instance, as an importer of key material."""
        return self._keys.provider(key, MATERIAL_IMPORT)

    def expire_tokens(self, limit: int = 100) -> int:
        """Destroy the wrapping keys of expired tokens; forget the tokens TOKEN_RETENTION later."""
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:

            def destroy(expiring: list[tuple[KeyId, str, bytes]]) -> None:
                for key_id, token_id, stored in expiring:
                    key = uow.keys.get(key_id)
                    if key is not None:  # an HSM's wrapping key goes from the token too
                        instance = self._keys.instance_of(key)
                        destroy_in_backend(
                            self._providers, instance, key_id, WRAPPING_KEY_SPEC, [(token_id, stored)]
                        )

            return uow.imports.expire_tokens(now, now - TOKEN_RETENTION, limit, destroy)

    # -- secrets ----------------------------------------------------------------------------------
    def _mac(self, token: StoredToken) -> str:
        message = b"\0".join(
            (
                b"openkms-import-token/v1",
                token.token_id.encode(),
                token.key_id.encode(),
                token.algorithm.value.encode(),
                str(int(token.expires_at.timestamp())).encode(),
                hashlib.sha256(token.public_key_der).digest(),
            )
        )
        digest = hmac.digest(self._keys_derived()[0], message, hashlib.sha256)
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _fingerprint_key(self) -> SecretBytes:
        return self._keys_derived()[1]

    def _keys_derived(self) -> tuple[bytes, SecretBytes]:
        derived = self._derived
        if derived is not None:
            return derived
        with self._lock:
            if self._derived is None:
                raw = self._master().reveal()
                token_key = HKDF(hashes.SHA256(), 32, None, b"openkms import token").derive(raw)
                fingerprint_key = HKDF(hashes.SHA256(), 32, None, b"openkms import fingerprint").derive(raw)
                self._derived = (token_key, SecretBytes(fingerprint_key))
            return self._derived

    def _master(self) -> SecretBytes:
        return service_secret(self._db, self._keystore, self._clock, SECRET_NAME, "KeyImportKey")

    def _forget(self) -> None:
        with self._lock:
            self._derived = None


def _ensure_external(key: Key) -> None:
    if key.origin is not Origin.EXTERNAL:
        raise UnsupportedOperation("Only keys with Origin EXTERNAL take imported key material.")


def _ensure_importable(key: Key) -> None:
    _ensure_external(key)
    if key.state is KeyState.PENDING_DELETION:
        raise InvalidKeyState("The key is PendingDeletion; key material cannot be imported.")

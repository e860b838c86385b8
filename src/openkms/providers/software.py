"""The software provider: AES-256-GCM and RSA/EC key pairs with pyca/cryptography over material wrapped
by the keystore.

Owns the in-memory caches of ready key objects, one per key version, bounded and least-recently-used:
building an AESGCM costs about 0.8 us, loading an RSA private key milliseconds, and unwrapping the
material more, so the hot path must not. The caches are dropped when the keystore seals, and every call
checks the seal first. Never logs, never returns private key material, and answers every
authentication failure with the same InvalidCiphertext. The asymmetric algorithms live in `keypairs`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.domain.key_import import WRAPPING_KEY_BINDING
from openkms.errors import InvalidCiphertext, Sealed, StorageIntegrityError, UnsupportedOperation
from openkms.keystore import Keystore
from openkms.providers import key_import, keypairs
from openkms.providers.base import ImportRequest, Invocation, MaterialRef, NewVersion, random_bytes
from openkms.secret import SecretBytes
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyVersionId

_T = TypeVar("_T")

IV_LEN: Final = 12
TAG_LEN: Final = 16

# Material length per symmetric spec; a spec missing here is not something this provider can use.
_SYMMETRIC_KEY_LEN: Final[dict[KeySpec, int]] = {KeySpec.ALIYUN_AES_256: 32}


class SoftwareProvider:
    """The provider of software key stores; it has every capability (`providers.base`).

    `iv_source` supplies IVs; it is `os.urandom` except in known-answer tests, which pin the IV.
    Thread safety: the cache is an OrderedDict whose single operations are atomic under the GIL; a
    lost race costs at most one extra unwrap, never a wrong cipher. A miss that races with `seal()`
    inserts into the cache that `seal()` just discarded, so no material outlives the seal.
    """

    def __init__(
        self,
        keystore: Keystore,
        cache_size: int = 10000,
        *,
        iv_source: Callable[[int], bytes] = os.urandom,
        changes: Callable[[], int] | None = None,
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self._keystore = keystore
        self._cache_size = cache_size
        self._iv_source = iv_source
        self._cache: OrderedDict[KeyVersionId, AESGCM] = OrderedDict()
        self._pairs: OrderedDict[KeyVersionId, keypairs.PrivateKey] = OrderedDict()
        # The node's change counter: when a key is disabled, scheduled for deletion, destroyed or
        # rewrapped anywhere on the node, every worker drops the material it holds in memory.
        self._changes = changes
        self._seen = None if changes is None else changes()
        keystore.on_seal(self._drop_cache)

    def __repr__(self) -> str:
        return f"SoftwareProvider(cached_versions={len(self._cache)}, cache_size={self._cache_size})"

    def generate_symmetric(self, new: NewVersion) -> bytes:
        length = _SYMMETRIC_KEY_LEN.get(new.spec)
        if length is None:
            raise UnsupportedOperation(f"The software provider cannot generate {new.spec} keys.")
        return self._keystore.wrap(new.key_id, new.version_id, new.spec, random_bytes(length))

    def encrypt(
        self, ref: MaterialRef, plaintext: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> tuple[bytes, bytes]:
        cipher = self._cipher(ref)
        iv = self._iv_source(IV_LEN)
        return iv, cipher.encrypt(iv, plaintext, aad)

    def decrypt(
        self, ref: MaterialRef, iv: bytes, sealed: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> SecretBytes:
        # Checked before the cipher is touched: we only ever make 12-byte IVs, and pyca would raise
        # ValueError (not InvalidTag) on some other lengths.
        if len(iv) != IV_LEN or len(sealed) < TAG_LEN:
            raise InvalidCiphertext()
        cipher = self._cipher(ref)
        try:
            return SecretBytes(cipher.decrypt(iv, sealed, aad))
        except InvalidTag:
            raise InvalidCiphertext() from None

    # -- asymmetric key pairs ----------------------------------------------------------------------
    def generate_key_pair(self, new: NewVersion) -> bytes:
        private_key = keypairs.generate(new.spec)
        return self._keystore.wrap(
            new.key_id, new.version_id, new.spec, keypairs.private_key_der(private_key)
        )

    def public_key_pem(self, ref: MaterialRef) -> str:
        return keypairs.public_key_pem(self._pair(ref).public_key())

    def sign(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes) -> bytes:
        return keypairs.sign_digest(self._pair(ref), algorithm, digest)

    def verify(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes, signature: bytes
    ) -> None:
        keypairs.verify_digest(self._pair(ref).public_key(), algorithm, digest, signature)

    def asymmetric_encrypt(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, plaintext: bytes) -> bytes:
        return keypairs.oaep_encrypt(self._rsa(ref).public_key(), algorithm, plaintext)

    def asymmetric_decrypt(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, ciphertext: bytes
    ) -> SecretBytes:
        return keypairs.oaep_decrypt(self._rsa(ref), algorithm, ciphertext)

    # -- data-key export ----------------------------------------------------------------------------
    def wrap_for_export(
        self, public_key_der: bytes, algorithm: AsymmetricAlgorithm, data_key: SecretBytes
    ) -> bytes:
        return keypairs.wrap_for_export(public_key_der, algorithm, data_key)

    # -- imported material ----------------------------------------------------------------------------
    def new_import_wrapping_key(self, key_id: KeyId, token_id: str) -> tuple[bytes, bytes]:
        if self._keystore.sealed:
            raise Sealed()
        private_key = key_import.new_wrapping_key()
        wrapped = self._keystore.wrap(
            key_id, token_id, WRAPPING_KEY_BINDING, keypairs.private_key_der(private_key)
        )
        return keypairs.public_key_der(private_key.public_key()), wrapped

    def import_material(
        self,
        request: ImportRequest,
        fingerprint_key: SecretBytes,
        expected_fingerprint: bytes | None,
    ) -> tuple[bytes, bytes]:
        der = self._keystore.unwrap(
            request.key_id, request.token_id, WRAPPING_KEY_BINDING, request.wrapped_wrapping_key
        )
        wrapping_key = keypairs.load_private_key(der, KeySpec.RSA_2048)
        if not isinstance(wrapping_key, rsa.RSAPrivateKey):  # pragma: no cover - load_private_key checks
            raise StorageIntegrityError()
        imported = key_import.unwrap_imported(
            wrapping_key,
            request.algorithm,
            request.encrypted_material,
            request.key_id,
            request.spec,
            fingerprint_key,
            expected_fingerprint,
        )
        wrapped = self._keystore.wrap(request.key_id, request.version_id, request.spec, imported.material)
        self.forget(request.version_id)
        return wrapped, imported.fingerprint

    def forget(self, version_id: KeyVersionId) -> None:
        self._cache.pop(version_id, None)
        self._pairs.pop(version_id, None)

    def follow_changes(self) -> None:
        """Drop cached material now if the change generation moved (called when a change arrives, so
        a worker that serves no request does not keep destroyed material in memory)."""
        self._follow_changes()

    def _follow_changes(self) -> None:
        if self._changes is not None:
            seen = self._changes()
            if seen != self._seen:
                self._seen = seen
                self._drop_cache()

    def _drop_cache(self) -> None:
        # Replace rather than clear(): a miss in flight holds the old dict and fills that one.
        self._cache = OrderedDict()
        self._pairs = OrderedDict()

    def _rsa(self, ref: MaterialRef) -> rsa.RSAPrivateKey:
        key = self._pair(ref)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UnsupportedOperation(f"{ref.spec} keys do not encrypt.")
        return key

    def _pair(self, ref: MaterialRef) -> keypairs.PrivateKey:
        if self._keystore.sealed:
            raise Sealed()
        self._follow_changes()
        pairs = self._pairs
        key = pairs.get(ref.version_id)
        if key is not None:
            try:  # noqa: SIM105 -- as in _cipher
                pairs.move_to_end(ref.version_id)
            except KeyError:
                pass
            return key
        material = self._keystore.unwrap(ref.key_id, ref.version_id, ref.spec, ref.wrapped)
        key = keypairs.load_private_key(material, ref.spec)
        self._remember(pairs, ref.version_id, key)
        return key

    def _cipher(self, ref: MaterialRef) -> AESGCM:
        if self._keystore.sealed:
            raise Sealed()
        self._follow_changes()
        cache = self._cache
        cipher = cache.get(ref.version_id)
        if cipher is not None:
            # Another thread may have evicted or forgotten it since the get(); the cipher is still good.
            # Not contextlib.suppress: that costs about 0.3 us on every call of the hot path.
            try:  # noqa: SIM105
                cache.move_to_end(ref.version_id)
            except KeyError:
                pass
            return cipher
        return self._load(cache, ref)

    def _load(self, cache: OrderedDict[KeyVersionId, AESGCM], ref: MaterialRef) -> AESGCM:
        length = _SYMMETRIC_KEY_LEN.get(ref.spec)
        if length is None:
            raise UnsupportedOperation(f"The software provider cannot use {ref.spec} keys for AES-GCM.")
        material = self._keystore.unwrap(ref.key_id, ref.version_id, ref.spec, ref.wrapped)
        if len(material) != length:
            raise StorageIntegrityError()
        cipher = AESGCM(material.reveal())
        self._remember(cache, ref.version_id, cipher)
        return cipher

    def _remember(self, cache: OrderedDict[KeyVersionId, _T], version_id: KeyVersionId, value: _T) -> None:
        if self._cache_size:
            cache[version_id] = value
            while len(cache) > self._cache_size:
                try:
                    cache.popitem(last=False)
                except KeyError:
                    break

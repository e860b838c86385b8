"""The external provider: symmetric keys protected by a key in an external key manager, reached through
an XKS proxy (API v1, `openkms.xks.client`).

Owns double encryption, as AWS KMS does for external key stores: the data is sealed first with AES-256-GCM
under an inner key OpenKMS holds for the key version (software material wrapped by the keystore: the
software provider makes and uses it, so the inner layer is exactly a software key) and then by the
external key manager through the proxy, both layers bound to the same `aad`. Neither side alone can
decrypt: the proxy never sees the plaintext, and OpenKMS cannot open the outer layer without the
external key. Owns the stored reference of a version and the self-describing `sealed` layout. Never
logs; every authentication failure of either layer is the same InvalidCiphertext.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Final, TypeVar

from openkms.domain.instance import Instance
from openkms.errors import (
    ExternalKeyError,
    InvalidCiphertext,
    KeyStoreUnavailable,
    Sealed,
    StorageIntegrityError,
)
from openkms.keystore import Keystore
from openkms.providers.base import Invocation, MaterialRef, NewVersion
from openkms.providers.software import IV_LEN, TAG_LEN, SoftwareProvider
from openkms.secret import SecretBytes
from openkms.types import AsymmetricAlgorithm, KeySpec, KeyVersionId
from openkms.xks.client import IV_LENGTHS, MAX_CIPHERTEXT_METADATA, RequestMetadata, XksClient

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SYSTEM_PRINCIPAL", "ExternalProvider", "external_provider"]

DEFAULT_TIMEOUT_SECONDS: Final = 3.0
# The principal named in the proxy's audit when OpenKMS itself asks (jobs, key creation, health).
SYSTEM_PRINCIPAL: Final = "acs:kms:::system/openkms"
_T = TypeVar("_T")
_REF_MAGIC: Final = b"XKS1"
_SEALED_VERSION: Final = 1
_SUPPORTED: Final = frozenset({KeySpec.ALIYUN_AES_256})


class ExternalProvider:
    """The provider of one external key store instance: SymmetricCipher, HealthCheck, MaterialCache.

    `keystore` wraps the inner keys (the server's keystore, as for software keys); `client` talks to
    the instance's proxy and is closed with the provider; `instance_id` names the instance in errors;
    `changes` is the node's change counter (`generation.current`), as the software provider takes.
    """

    def __init__(
        self,
        keystore: Keystore,
        client: XksClient,
        instance_id: str,
        *,
        changes: Callable[[], int] | None = None,
    ) -> None:
        self._keystore = keystore
        self._client = client
        self._instance_id = instance_id
        # The inner layer is a software key, cached like the software provider's and dropped with it
        # when the node's change counter (`changes`, as for SoftwareProvider) moves.
        self._inner = SoftwareProvider(keystore, cache_size=1000, changes=changes)

    def __repr__(self) -> str:
        return f"ExternalProvider(instance={self._instance_id!r}, client={self._client!r})"

    def close(self) -> None:
        self._client.close()

    # -- SymmetricCipher ---------------------------------------------------------------------------
    def generate_symmetric(self, new: NewVersion) -> bytes:
        """Check the external key (AES_256, ENCRYPT and DECRYPT, ENABLED) and make the inner key: the
        stored reference is `XKS1 | len | external key id | keystore-wrapped inner key`."""
        if new.spec not in _SUPPORTED:
            raise ExternalKeyError(f"Keys in an external key store are {KeySpec.ALIYUN_AES_256} only.")
        if not new.external_key_id:
            raise ExternalKeyError("A key in an external key store needs the id of its external key.")
        external_id = new.external_key_id
        meta = RequestMetadata(SYSTEM_PRINCIPAL, "CreateKeyVersion", str(uuid.uuid4()))
        metadata = self._guard(lambda: self._client.get_key_metadata(external_id, meta))
        if metadata.key_spec != "AES_256":
            raise ExternalKeyError("The external key is not an AES_256 key.")
        missing = {"ENCRYPT", "DECRYPT"} - set(metadata.key_usage)
        if missing:
            raise ExternalKeyError(f"The external key does not allow {' and '.join(sorted(missing))}.")
        if metadata.key_status != "ENABLED":
            raise ExternalKeyError("The external key is disabled in the external key manager.")
        inner = self._inner.generate_symmetric(NewVersion(new.key_id, new.version_id, new.spec))
        encoded = external_id.encode("ascii")
        return _REF_MAGIC + bytes([len(encoded)]) + encoded + inner

    def encrypt(
        self, ref: MaterialRef, plaintext: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> tuple[bytes, bytes]:
        external_id, inner_ref = self._parse(ref)
        iv, inner_sealed = self._inner.encrypt(inner_ref, plaintext, aad)
        meta = self._metadata(ref, invocation, "Encrypt")
        outer = self._guard(lambda: self._client.encrypt(external_id, inner_sealed, aad, meta))
        metadata = outer.ciphertext_metadata
        sealed = (
            bytes([_SEALED_VERSION, len(outer.iv)])
            + outer.iv
            + (b"\xff" if metadata is None else bytes([len(metadata)]) + metadata)
            + outer.tag
            + outer.ciphertext
        )
        return iv, sealed

    def decrypt(
        self, ref: MaterialRef, iv: bytes, sealed: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> SecretBytes:
        if self._keystore.sealed:
            raise Sealed()
        external_id, inner_ref = self._parse(ref)
        if len(iv) != IV_LEN:
            raise InvalidCiphertext()
        outer_iv, metadata, tag, ciphertext = _unpack(sealed)
        meta = self._metadata(ref, invocation, "Decrypt")
        inner_sealed = self._guard(
            lambda: self._client.decrypt(
                external_id, ciphertext, outer_iv, tag, aad, meta, ciphertext_metadata=metadata
            )
        )
        return self._inner.decrypt(inner_ref, iv, inner_sealed.reveal(), aad)

    # -- HealthCheck, MaterialCache ----------------------------------------------------------------
    def wrap_for_export(
        self, public_key_der: bytes, algorithm: AsymmetricAlgorithm, data_key: SecretBytes
    ) -> bytes:
        """Data-key export: the caller's public key only (nothing of the external key is involved)."""
        return self._inner.wrap_for_export(public_key_der, algorithm, data_key)

    def follow_changes(self) -> None:
        """As the software provider's: the inner keys' cached material goes when a change arrives."""
        self._inner.follow_changes()

    def check_health(self) -> str:
        meta = RequestMetadata(SYSTEM_PRINCIPAL, "KmsHealthCheck", str(uuid.uuid4()))
        answer = self._guard(lambda: self._client.get_health_status(meta))
        fleet = answer["ekmFleetDetails"]
        statuses = [str(entry.get("healthStatus")) for entry in fleet]
        if all(status == "UNAVAILABLE" for status in statuses):
            raise KeyStoreUnavailable(
                f"Instance {self._instance_id}: the external key store reports its key managers unavailable."
            )
        active = statuses.count("ACTIVE")
        return (
            f"XKS proxy {str(answer.get('xksProxyVendor'))[:64]} {str(answer.get('xksProxyModel'))[:64]}: "
            f"{active} of {len(statuses)} key managers active"
        )

    def forget(self, version_id: KeyVersionId) -> None:
        self._inner.forget(version_id)

    # -- helpers -------------------------------------------------------------------------------------
    def _guard(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except KeyStoreUnavailable as exc:
            raise KeyStoreUnavailable(f"Instance {self._instance_id}: {exc.message}") from None

    def _parse(self, ref: MaterialRef) -> tuple[str, MaterialRef]:
        header, wrapped = split_reference(ref.wrapped)
        inner = MaterialRef(ref.key_id, ref.version_id, ref.spec, wrapped)
        return header[5:].decode("ascii"), inner

    @staticmethod
    def _metadata(ref: MaterialRef, invocation: Invocation | None, action: str) -> RequestMetadata:
        if invocation is None:
            return RequestMetadata(SYSTEM_PRINCIPAL, action, str(uuid.uuid4()), f"acs:kms:::key/{ref.key_id}")
        return RequestMetadata(
            invocation.principal_arn, invocation.action, invocation.request_id, invocation.key_arn
        )


def split_reference(stored: bytes) -> tuple[bytes, bytes]:
    """A stored reference split into its header (`XKS1 | len | external key id`) and the keystore-wrapped
    inner key after it (what the keyring's rewrap moves to a new term, keeping the header)."""
    if len(stored) < 6 or not stored.startswith(_REF_MAGIC):
        raise StorageIntegrityError()
    length = stored[4]
    external_id = stored[5 : 5 + length]
    if len(external_id) != length or not external_id.isascii():
        raise StorageIntegrityError()
    return stored[: 5 + length], stored[5 + length :]


def _unpack(sealed: bytes) -> tuple[bytes, bytes | None, bytes, bytes]:
    """`sealed` = version | IV length | proxy IV | metadata length (0xff: none) | metadata | tag |
    ciphertext (the inner layer: at least its 16-byte tag)."""
    try:
        version, iv_len = struct.unpack_from("BB", sealed)
        if version != _SEALED_VERSION or iv_len not in IV_LENGTHS:
            raise InvalidCiphertext()
        at = 2 + iv_len
        outer_iv = sealed[2:at]
        meta_len = sealed[at]
        at += 1
        metadata: bytes | None = None
        if meta_len != 0xFF:
            if meta_len > MAX_CIPHERTEXT_METADATA:
                raise InvalidCiphertext()
            metadata = sealed[at : at + meta_len]
            at += meta_len
    except (struct.error, IndexError):
        raise InvalidCiphertext() from None
    tag, ciphertext = sealed[at : at + TAG_LEN], sealed[at + TAG_LEN :]
    if len(outer_iv) != iv_len or len(tag) != TAG_LEN or len(ciphertext) < TAG_LEN:
        raise InvalidCiphertext()
    return outer_iv, metadata, tag, ciphertext


def external_provider(
    keystore: Keystore,
    instance: Instance,
    secret: SecretBytes | None,
    *,
    changes: Callable[[], int] | None = None,
) -> ExternalProvider:
    """The provider of an external instance from its settings (`endpoint`, `path_prefix`,
    `access_key_id`, `ca_file`, `allow_http`, `timeout_seconds`) and its unsealed SigV4 secret, signing
    with the instance's region: what the registry's factory for external instances calls.
    KeyStoreUnavailable (naming the instance, never the secret) when they cannot make a client."""
    settings = instance.settings
    try:
        if secret is None:
            raise ValueError("its SigV4 secret access key is missing")
        client = XksClient(
            settings["endpoint"],
            settings.get("path_prefix", ""),
            settings["access_key_id"],
            secret,
            settings.get("ca_file") or None,
            settings.get("allow_http", "").lower() == "true",
            float(settings.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS),
            region=instance.region_id,
        )
    except KeyError as exc:
        raise KeyStoreUnavailable(
            f"Instance {instance.instance_id}: the setting {exc.args[0]} is missing."
        ) from None
    except (ValueError, OSError) as exc:  # a bad setting, or a CA file that cannot be read
        raise KeyStoreUnavailable(f"Instance {instance.instance_id}: {exc}.") from None
    return ExternalProvider(keystore, client, instance.instance_id, changes=changes)

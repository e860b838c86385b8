"""The seam between the service layer and whatever holds key material (software keystore, HSM, proxy).

Owns the capability protocols a provider implements, as many as it can (`SymmetricCipher`,
`KeyPairs`, `MaterialImport`, `ExportWrapping`, `MaterialCache`, `MaterialDestruction`, `HealthCheck`),
the tokens the service asks a registry for (`SYMMETRIC`, `KEY_PAIRS`, ...; `providers.registry`), the
opaque `MaterialRef` handle, what a new version is made from (`NewVersion`), who is asking
(`Invocation`, for a backend that keeps its own audit) and the CSPRNG for data keys. A PKCS#11 or
key-store-proxy provider implements what its backend can do; a key whose provider lacks a capability
is refused with UnsupportedOperation. A backend that cannot be reached answers KeyStoreUnavailable,
and material its backend lost answers KeyMaterialLost; neither is ever answered by making new material.
Providers are the only code that touches key material; it never crosses this seam except as
SecretBytes plaintext (decrypt output, data keys). A provider never logs, and never puts key bytes,
plaintext or wrapped blobs into an exception message or a repr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final, Generic, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

from openkms.domain.key_import import WrappingAlgorithm
from openkms.secret import SecretBytes
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyUsage, KeyVersionId

__all__ = [
    "EXPORT_WRAPPING",
    "HEALTH_CHECK",
    "KEY_PAIRS",
    "MATERIAL_CACHE",
    "MATERIAL_DESTRUCTION",
    "MATERIAL_IMPORT",
    "SYMMETRIC",
    "Capability",
    "ExportWrapping",
    "HealthCheck",
    "ImportRequest",
    "Invocation",
    "KeyPairs",
    "MaterialCache",
    "MaterialDestruction",
    "MaterialImport",
    "MaterialRef",
    "NewVersion",
    "SymmetricCipher",
    "random_bytes",
]


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """An opaque handle to one key version's material. The service stores and passes it; only the
    provider that made it looks inside. For the software provider `wrapped` is the keystore blob."""

    key_id: KeyId
    version_id: KeyVersionId
    spec: KeySpec
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What a provider makes new material for: the version, its key's spec and usages (a hardware key
    pair may carry more than one, F2.2), and for a key in an external key store the id of the key in
    the external key manager that protects it (F1.4). Software providers read only the first three."""

    key_id: KeyId
    version_id: KeyVersionId
    spec: KeySpec
    usages: tuple[KeyUsage, ...] = ()
    external_key_id: str | None = None


class Invocation(NamedTuple):
    """Who is asking, for a backend that keeps its own audit (the XKS proxy's requestMetadata): the
    caller's ARN, the key's ARN, the action and the request id. Providers without an audit of their
    own ignore it."""

    principal_arn: str
    key_arn: str
    action: str
    request_id: str


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """ImportKeyMaterial's inputs for a provider: which version the material becomes, the token's
    wrapping key (as stored) and algorithm, and the caller's EncryptedKeyMaterial."""

    key_id: KeyId
    version_id: KeyVersionId
    spec: KeySpec
    token_id: str
    algorithm: WrappingAlgorithm
    wrapped_wrapping_key: bytes = field(repr=False)
    encrypted_material: bytes = field(repr=False)


# -- capabilities: a provider implements the ones it can -------------------------------------------
@runtime_checkable
class SymmetricCipher(Protocol):
    """Symmetric keys: make material, AES-GCM encrypt and decrypt under it."""

    def generate_symmetric(self, new: NewVersion) -> bytes:
        """Make new material for a key version; return what to store for it (wrapped material, or a
        reference to material the backend holds)."""
        ...

    def encrypt(
        self, ref: MaterialRef, plaintext: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> tuple[bytes, bytes]:
        """Authenticated encryption bound to `aad` with a fresh random 12-byte IV: (iv, sealed). For
        the software provider `sealed` is AES-GCM ct || tag; another provider may put more inside
        (at least 16 bytes), which only it reads back."""
        ...

    def decrypt(
        self, ref: MaterialRef, iv: bytes, sealed: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> SecretBytes:
        """The plaintext of (iv, sealed). Raises InvalidCiphertext if it does not authenticate."""
        ...


@runtime_checkable
class KeyPairs(Protocol):
    """Asymmetric keys: make key pairs, hand out public keys, sign, verify, RSAES-OAEP. The private
    key never leaves; a certificate signing request is built around `sign` (`providers.pkix`)."""

    def generate_key_pair(self, new: NewVersion) -> bytes:
        """Make a new key pair for an asymmetric key version; return what to store (the wrapped private
        key, or a reference to the pair the backend holds). Slow for large RSA keys: callers run it
        off the event loop."""
        ...

    def public_key_pem(self, ref: MaterialRef) -> str:
        """The version's public key as SubjectPublicKeyInfo PEM."""
        ...

    def sign(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes) -> bytes:
        """Sign a 32-byte SHA-256 digest with the version's private key."""
        ...

    def verify(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes, signature: bytes
    ) -> None:
        """Return if the signature is valid; raise SignatureInvalid if not."""
        ...

    def asymmetric_encrypt(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, plaintext: bytes) -> bytes:
        """RSAES-OAEP encryption to the version's public key."""
        ...

    def asymmetric_decrypt(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, ciphertext: bytes
    ) -> SecretBytes:
        """RSAES-OAEP decryption; raises InvalidCiphertext for anything that does not decrypt."""
        ...


@runtime_checkable
class MaterialImport(Protocol):
    """Bring your own key: a wrapping key pair per import token, and the unwrapping of the material."""

    def new_import_wrapping_key(self, key_id: KeyId, token_id: str) -> tuple[bytes, bytes]:
        """A fresh RSA-2048 wrapping key pair for GetParametersForImport: (public key DER, what to
        store: the private key wrapped, bound to the key id and token id). Slow: run off the loop."""
        ...

    def import_material(
        self,
        request: ImportRequest,
        fingerprint_key: SecretBytes,
        expected_fingerprint: bytes | None,
    ) -> tuple[bytes, bytes]:
        """Unwrap imported material with the token's wrapping key, check it fits the spec (and equals
        the material imported before when `expected_fingerprint` is set): (wrapped material to store,
        its keyed fingerprint). IncorrectKeyMaterial for every failure, whatever the cause."""
        ...


@runtime_checkable
class ExportWrapping(Protocol):
    """Data-key export: a data key encrypted to a caller's public key, so that only the holder of the
    private key (a cryptographic module) can unwrap it."""

    def wrap_for_export(
        self, public_key_der: bytes, algorithm: AsymmetricAlgorithm, data_key: SecretBytes
    ) -> bytes:
        """RSAES-OAEP encryption of `data_key` to the RSA SubjectPublicKeyInfo `public_key_der`."""
        ...


@runtime_checkable
class MaterialCache(Protocol):
    """A provider that keeps material in memory drops it when told the version changed or went."""

    def forget(self, version_id: KeyVersionId) -> None:
        """Drop any material cached for this version (it was disabled, deleted or rewrapped)."""
        ...


@runtime_checkable
class MaterialDestruction(Protocol):
    """A provider whose backend holds material itself (an HSM) destroys it when OpenKMS does."""

    def destroy(self, ref: MaterialRef) -> None:
        """Destroy the backend's material of this version. Idempotent: material already gone is not
        an error. KeyStoreUnavailable when the backend cannot be reached (the caller retries later)."""
        ...


@runtime_checkable
class HealthCheck(Protocol):
    """A provider with a backend that can be down tells whether it answers now."""

    def check_health(self) -> str:
        """A short description of the backend's state when it is usable; KeyStoreUnavailable (with
        the reason) when it is not."""
        ...


P = TypeVar("P")


class Capability(Generic[P]):
    """A token naming one capability protocol: the service asks a registry for `SYMMETRIC` of a key's
    provider and gets a `SymmetricCipher`, or UnsupportedOperation if that provider has none."""

    __slots__ = ("_protocol", "name")

    def __init__(self, name: str, protocol: type) -> None:
        self.name = name  # what the capability does, for the error: "... cannot <name>"
        self._protocol = protocol  # a runtime-checkable protocol class: the P of this token

    def __repr__(self) -> str:
        return f"Capability({self.name!r})"

    def offered_by(self, provider: object) -> P | None:
        """The provider as this capability, if it implements it."""
        return cast(P, provider) if isinstance(provider, self._protocol) else None


SYMMETRIC: Final[Capability[SymmetricCipher]] = Capability("use symmetric keys", SymmetricCipher)
KEY_PAIRS: Final[Capability[KeyPairs]] = Capability("use key pairs", KeyPairs)
MATERIAL_IMPORT: Final[Capability[MaterialImport]] = Capability("import key material", MaterialImport)
EXPORT_WRAPPING: Final[Capability[ExportWrapping]] = Capability("wrap data keys for export", ExportWrapping)
MATERIAL_CACHE: Final[Capability[MaterialCache]] = Capability("cache key material", MaterialCache)
MATERIAL_DESTRUCTION: Final[Capability[MaterialDestruction]] = Capability(
    "destroy key material", MaterialDestruction
)
HEALTH_CHECK: Final[Capability[HealthCheck]] = Capability("report its health", HealthCheck)


def random_bytes(n: int) -> SecretBytes:
    """`n` bytes from the operating system's CSPRNG, for data keys and other secrets."""
    if n < 0:
        raise ValueError("n must not be negative")
    return SecretBytes(os.urandom(n))

"""Asymmetric use cases: AsymmetricSign/Verify, AsymmetricEncrypt/Decrypt, GetPublicKey and the CSR
extension (GenerateCertificateSigningRequest).

One pipeline (`_version`) resolves the key, authorizes, checks that the key is asymmetric, has the
usage the action needs and is usable, and finds the named version of that key. Algorithm and size
rules come from `domain.specs`. Private keys stay in the provider; plaintext crosses only as
SecretBytes. Verification raises SignatureInvalid; the API adapter turns that into `Value: false`.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.clock import Clock, SystemClock
from openkms.domain.csr import CsrSubject
from openkms.domain.key import Key
from openkms.domain.lifecycle import ensure_material_current, ensure_usable
from openkms.domain.specs import SPEC_RULES, SpecRule, max_plaintext, parse_algorithm
from openkms.errors import InvalidArgument, KeyVersionNotFound, UnsupportedOperation
from openkms.node.generation import Generation
from openkms.providers.base import CryptoProvider, MaterialRef
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize
from openkms.service.cache import TtlCache
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService
from openkms.types import AsymmetricAlgorithm, KeyId, KeyUsage, KeyVersionId


@dataclass(frozen=True, slots=True)
class VersionOf:
    """The key and key version an asymmetric operation used (the response names them)."""

    key_id: KeyId
    version_id: KeyVersionId


@dataclass(frozen=True, slots=True)
class _Target:
    key: Key
    rule: SpecRule
    ref: MaterialRef

    @property
    def names(self) -> VersionOf:
        return VersionOf(self.key.key_id, self.ref.version_id)


class AsymmetricService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        provider: CryptoProvider,
        generation: Generation,
        cache_ttl: float,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._provider = provider
        self._clock: Clock = clock or SystemClock()
        self._versions: TtlCache[str, MaterialRef] = TtlCache(cache_ttl, generation)

    # -- the shared pipeline ----------------------------------------------------------------------
    def _version(
        self, ctx: RequestContext, key_ref: str, version_id: str, action: str, usage: KeyUsage | None
    ) -> _Target:
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, action, key)
        ensure_usable(key.state)
        if key.material_expire_time is not None:  # imported material: usable until it expires
            ensure_material_current(key.material_expire_time, self._clock.now().timestamp())
        rule = SPEC_RULES[key.spec]
        if rule.symmetric:
            raise UnsupportedOperation(f"{action} needs an asymmetric key; this key is {key.spec}.")
        if usage is not None and key.usage is not usage:
            raise UnsupportedOperation(f"{action} needs a key with usage {usage}; this key is {key.usage}.")
        ref = self._material(version_id)
        if ref is None or ref.key_id != key.key_id:
            raise KeyVersionNotFound(f"The key {key.key_id} has no version {version_id!r}.")
        ctx.touched(key.key_id, ref.version_id)
        return _Target(key, rule, ref)

    def _material(self, version_id: str) -> MaterialRef | None:
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        with self._db.unit_of_work() as uow:
            stored = uow.keys.version(version_id)
            key = None if stored is None else uow.keys.get(stored.version.key_id)
        if stored is None or key is None:
            return None
        ref = MaterialRef(key.key_id, stored.version.version_id, key.spec, stored.wrapped_material)
        self._versions.put(version_id, ref)
        return ref

    # -- use cases --------------------------------------------------------------------------------
    def get_public_key(self, ctx: RequestContext, key_ref: str, version_id: str) -> tuple[VersionOf, str]:
        target = self._version(ctx, key_ref, version_id, "GetPublicKey", None)
        return target.names, self._provider.public_key_pem(target.ref)

    def sign(
        self, ctx: RequestContext, key_ref: str, version_id: str, algorithm: str, digest: bytes
    ) -> tuple[VersionOf, bytes]:
        target = self._version(ctx, key_ref, version_id, "AsymmetricSign", KeyUsage.SIGN_VERIFY)
        chosen = parse_algorithm(algorithm, target.rule, KeyUsage.SIGN_VERIFY)
        return target.names, self._provider.sign(target.ref, chosen, digest)

    def verify(
        self,
        ctx: RequestContext,
        key_ref: str,
        version_id: str,
        algorithm: str,
        digest: bytes,
        signature: bytes,
    ) -> VersionOf:
        """Return if the signature verifies; raise SignatureInvalid if it does not."""
        target = self._version(ctx, key_ref, version_id, "AsymmetricVerify", KeyUsage.SIGN_VERIFY)
        chosen = parse_algorithm(algorithm, target.rule, KeyUsage.SIGN_VERIFY)
        self._provider.verify(target.ref, chosen, digest, signature)
        return target.names

    def encrypt(
        self, ctx: RequestContext, key_ref: str, version_id: str, algorithm: str, plaintext: bytes
    ) -> tuple[VersionOf, bytes]:
        target = self._version(ctx, key_ref, version_id, "AsymmetricEncrypt", KeyUsage.ENCRYPT_DECRYPT)
        chosen = parse_algorithm(algorithm, target.rule, KeyUsage.ENCRYPT_DECRYPT)
        limit = max_plaintext(target.rule, chosen)
        if len(plaintext) > limit:
            raise InvalidArgument(
                f"Plaintext is {len(plaintext)} bytes; {chosen} with {target.rule.spec} "
                f"takes at most {limit}.",
                parameter="Plaintext",
            )
        return target.names, self._provider.asymmetric_encrypt(target.ref, chosen, plaintext)

    def decrypt(
        self, ctx: RequestContext, key_ref: str, version_id: str, algorithm: str, ciphertext: bytes
    ) -> tuple[VersionOf, SecretBytes]:
        target = self._version(ctx, key_ref, version_id, "AsymmetricDecrypt", KeyUsage.ENCRYPT_DECRYPT)
        chosen = parse_algorithm(algorithm, target.rule, KeyUsage.ENCRYPT_DECRYPT)
        return target.names, self._provider.asymmetric_decrypt(target.ref, chosen, ciphertext)

    def certificate_signing_request(
        self, ctx: RequestContext, key_ref: str, version_id: str, algorithm: str, subject: CsrSubject
    ) -> tuple[VersionOf, str]:
        """A PEM CSR for the version's public key, signed by its private key (SIGN/VERIFY keys only)."""
        target = self._version(
            ctx, key_ref, version_id, "GenerateCertificateSigningRequest", KeyUsage.SIGN_VERIFY
        )
        chosen: AsymmetricAlgorithm = parse_algorithm(algorithm, target.rule, KeyUsage.SIGN_VERIFY)
        return target.names, self._provider.sign_csr(target.ref, chosen, subject)

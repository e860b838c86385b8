"""Asymmetric use cases: AsymmetricSign/Verify, AsymmetricEncrypt/Decrypt, GetPublicKey and the CSR
extension (GenerateCertificateSigningRequest).

Every one runs the key-operation pipeline (`service.key_ops`): resolve, authorize, check that the key
is a usable key pair with the usage the action needs; then the named version of that key. Algorithm and size
rules come from `domain.specs`. Private keys stay in the provider; plaintext crosses only as
SecretBytes. Verification raises SignatureInvalid; the API adapter turns that into `Value: false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from openkms.domain.csr import CsrSubject
from openkms.domain.specs import max_plaintext, parse_algorithm
from openkms.errors import InvalidArgument
from openkms.policy.actions import KmsAction
from openkms.providers import pkix
from openkms.providers.base import KeyPairs, MaterialRef
from openkms.repository.blocking import ensure_may_block
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.key_ops import (
    ANY_KEY_PAIR,
    ENCRYPTION_KEY_PAIR,
    SIGNING_KEY_PAIR,
    KeyOperations,
    Need,
    Target,
    end_dry_run,
)
from openkms.service.outcome import Outcome, acting_on
from openkms.types import AsymmetricAlgorithm, KeyId, KeyUsage, KeyVersionId

__all__ = ["AsymmetricService", "VersionOf"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VersionOf:
    """The key and key version an asymmetric operation used (the response names them)."""

    key_id: KeyId
    version_id: KeyVersionId


@dataclass(frozen=True, slots=True)
class _Versioned:
    """One version of a key pair that passed the pipeline; errors about it name the key and version."""

    target: Target[KeyPairs]
    ref: MaterialRef
    resource: Resource

    @property
    def provider(self) -> KeyPairs:
        return self.target.provider

    def algorithm(self, raw: str, usage: KeyUsage) -> AsymmetricAlgorithm:
        return parse_algorithm(raw, self.target.rule, usage)

    @property
    def names(self) -> VersionOf:
        return VersionOf(self.target.key.key_id, self.ref.version_id)

    def outcome(self, value: T) -> Outcome[tuple[VersionOf, T]]:
        return Outcome((self.names, value), self.resource)


class AsymmetricService:
    def __init__(self, operations: KeyOperations) -> None:
        self._ops = operations

    def _version(
        self,
        ctx: RequestContext,
        key_ref: str,
        version_id: str | None,
        action: KmsAction,
        need: Need[KeyPairs],
    ) -> _Versioned:
        """The pipeline for one version of a key pair: resolve, authorize, check, find the version
        (None: the key's primary version, as the instance API uses, which names no version). A
        private-key operation takes milliseconds: never on the event loop (a caller there retries in
        a worker thread)."""
        ensure_may_block()
        target = self._ops.prepare(ctx, key_ref, action, need)
        with acting_on(self._ops.resource(target.key)):
            ref = (
                self._ops.primary(target.key)
                if version_id is None
                else self._ops.version(target.key, version_id)
            )
        return _Versioned(target, ref, self._ops.resource(target.key, ref.version_id))

    # -- use cases --------------------------------------------------------------------------------
    def get_public_key(
        self, ctx: RequestContext, key_ref: str, version_id: str | None
    ) -> Outcome[tuple[VersionOf, str]]:
        used = self._version(ctx, key_ref, version_id, KmsAction.GET_PUBLIC_KEY, ANY_KEY_PAIR)
        with acting_on(used.resource):
            end_dry_run(ctx, used.resource)
            return used.outcome(used.provider.public_key_pem(used.ref))

    def sign(
        self, ctx: RequestContext, key_ref: str, version_id: str | None, algorithm: str, digest: bytes
    ) -> Outcome[tuple[VersionOf, bytes]]:
        used = self._version(ctx, key_ref, version_id, KmsAction.ASYMMETRIC_SIGN, SIGNING_KEY_PAIR)
        with acting_on(used.resource):
            chosen = used.algorithm(algorithm, KeyUsage.SIGN_VERIFY)
            end_dry_run(ctx, used.resource)
            return used.outcome(used.provider.sign(used.ref, chosen, digest))

    def verify(
        self,
        ctx: RequestContext,
        key_ref: str,
        version_id: str | None,
        algorithm: str,
        digest: bytes,
        signature: bytes,
    ) -> Outcome[VersionOf]:
        """Return if the signature verifies; raise SignatureInvalid (naming the key and version) if
        it does not."""
        used = self._version(ctx, key_ref, version_id, KmsAction.ASYMMETRIC_VERIFY, SIGNING_KEY_PAIR)
        with acting_on(used.resource):
            chosen = used.algorithm(algorithm, KeyUsage.SIGN_VERIFY)
            end_dry_run(ctx, used.resource)
            used.provider.verify(used.ref, chosen, digest, signature)
        return Outcome(used.names, used.resource)

    def encrypt(
        self, ctx: RequestContext, key_ref: str, version_id: str | None, algorithm: str, plaintext: bytes
    ) -> Outcome[tuple[VersionOf, bytes]]:
        used = self._version(ctx, key_ref, version_id, KmsAction.ASYMMETRIC_ENCRYPT, ENCRYPTION_KEY_PAIR)
        with acting_on(used.resource):
            chosen = used.algorithm(algorithm, KeyUsage.ENCRYPT_DECRYPT)
            rule = used.target.rule
            limit = max_plaintext(rule, chosen)
            if len(plaintext) > limit:
                raise InvalidArgument(
                    f"Plaintext is {len(plaintext)} bytes; {chosen} with {rule.spec} takes at most {limit}.",
                    parameter="Plaintext",
                )
            end_dry_run(ctx, used.resource)
            return used.outcome(used.provider.asymmetric_encrypt(used.ref, chosen, plaintext))

    def decrypt(
        self,
        ctx: RequestContext,
        key_ref: str,
        version_id: str | None,
        algorithm: str,
        ciphertext: bytes,
        *,
        action: KmsAction = KmsAction.ASYMMETRIC_DECRYPT,
    ) -> Outcome[tuple[VersionOf, SecretBytes]]:
        """`action`: what the caller must be allowed (ReEncrypt from a key pair opens with this too)."""
        used = self._version(ctx, key_ref, version_id, action, ENCRYPTION_KEY_PAIR)
        with acting_on(used.resource):
            chosen = used.algorithm(algorithm, KeyUsage.ENCRYPT_DECRYPT)
            end_dry_run(ctx, used.resource)
            return used.outcome(used.provider.asymmetric_decrypt(used.ref, chosen, ciphertext))

    def certificate_signing_request(
        self, ctx: RequestContext, key_ref: str, version_id: str, algorithm: str, subject: CsrSubject
    ) -> Outcome[tuple[VersionOf, str]]:
        """A PEM CSR for the version's public key, signed by its private key (SIGN/VERIFY keys only)."""
        used = self._version(
            ctx, key_ref, version_id, KmsAction.GENERATE_CERTIFICATE_SIGNING_REQUEST, SIGNING_KEY_PAIR
        )
        with acting_on(used.resource):
            chosen = used.algorithm(algorithm, KeyUsage.SIGN_VERIFY)
            provider, ref = used.provider, used.ref
            # Only the signature comes from the provider: the request is built around it.
            pem = pkix.certificate_signing_request(
                provider.public_key_pem(ref),
                chosen,
                subject,
                lambda digest: provider.sign(ref, chosen, digest),
            )
            return used.outcome(pem)

"""The hardware provider: keys generated and used inside an HSM through PKCS#11 (python-pkcs11).

Owns what one hardware instance's token holds for OpenKMS and how it is used: AES keys (128, 192, 256)
and RSA and EC key pairs made in the token as sensitive, non-extractable token objects, AES-GCM, RSA
signatures (PSS, PKCS#1 v1.5) and ECDSA made by the token over a SHA-256 digest, RSAES-OAEP decryption
by the token, imported material unwrapped inside the token, and destruction of the objects. What
OpenKMS stores for a version is only a reference (`P11` | format | kind | 16-byte CKA_ID): the material
never leaves the token. Public-key operations (verify, encrypt to the public key, data-key export)
use the public key read from the token, with pyca/cryptography. An object the token no longer has is
KeyMaterialLost; a token that fails is KeyStoreUnavailable (`hsm.sessions`); what the token cannot do
(SoftHSM2 2.6 has RSAES-OAEP with SHA-1 only) is UnsupportedOperation naming the mechanism. Never logs.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections import OrderedDict
from typing import Any, Final

import pkcs11.exceptions as p11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.constants import DEFAULT
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters

from openkms.domain.key_import import WrappingAlgorithm
from openkms.domain.specs import SPEC_RULES
from openkms.errors import (
    IncorrectKeyMaterial,
    InvalidCiphertext,
    KeyMaterialLost,
    SignatureInvalid,
    StorageIntegrityError,
    UnsupportedOperation,
)
from openkms.hsm.sessions import Slot, TokenSessions
from openkms.providers import key_import, keypairs
from openkms.providers.base import ImportRequest, Invocation, MaterialRef, NewVersion
from openkms.secret import SecretBytes
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyUsage, KeyVersionId

__all__ = ["HardwareProvider"]

IV_LEN: Final = 12
TAG_LEN: Final = 16
ID_LEN: Final = 16
_MAGIC: Final = b"P11\x01"
_SECRET, _PAIR, _WRAPPING = 1, 2, 3
_REF_LEN: Final = len(_MAGIC) + 1 + ID_LEN
_RSA_BITS: Final = {KeySpec.RSA_2048: 2048, KeySpec.RSA_3072: 3072, KeySpec.RSA_4096: 4096}
_CURVES: Final = {KeySpec.EC_P256: "secp256r1", KeySpec.EC_P256K: "secp256k1"}
# DigestInfo of SHA-256 (RFC 8017 9.2 note 1): RSASSA-PKCS1-v1_5 over a digest made elsewhere.
_SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
_OAEP: Final = {
    AsymmetricAlgorithm.RSAES_OAEP_SHA_256: (Mechanism.SHA256, MGF.SHA256, None),
    AsymmetricAlgorithm.RSAES_OAEP_SHA_1: (Mechanism.SHA_1, MGF.SHA1, None),
}
_WRAP_OAEP: Final = {
    WrappingAlgorithm.RSAES_OAEP_SHA_256: (Mechanism.SHA256, MGF.SHA256, None),
    WrappingAlgorithm.RSAES_OAEP_SHA_1: (Mechanism.SHA_1, MGF.SHA1, None),
}
# What a token answers for a ciphertext that does not authenticate (SoftHSM2: CKR_GENERAL_ERROR).
_BAD_CIPHERTEXT: Final = (
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.GeneralError,
    p11.FunctionFailed,
    p11.DataLenRange,
)
# What a token answers for a mechanism or parameter it does not have.
_NOT_SUPPORTED: Final = (
    p11.MechanismInvalid,
    p11.MechanismParamInvalid,
    p11.ArgumentsBad,
    p11.FunctionNotSupported,
)
_SECRET_TEMPLATE: Final = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
_PUBLIC_KEYS_KEPT: Final = 10_000


def reference(kind: int, object_id: bytes) -> bytes:
    return _MAGIC + bytes((kind,)) + object_id


def parse_reference(stored: bytes) -> tuple[int, bytes]:
    if len(stored) != _REF_LEN or not stored.startswith(_MAGIC) or stored[len(_MAGIC)] not in (1, 2, 3):
        raise StorageIntegrityError()
    return stored[len(_MAGIC)], stored[len(_MAGIC) + 1 :]


def _rsa_public(found: Any) -> rsa.RSAPublicKey:
    """The RSA public key of a token object (a public key, or a private key's public attributes)."""
    exponent = int.from_bytes(found[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(found[Attribute.MODULUS], "big")).public_key()


def _label(key_id: str, version_id: str) -> str:
    return f"openkms/{key_id}/{version_id}"


class HardwareProvider:
    """The provider of one hardware instance: SymmetricCipher, KeyPairs, MaterialImport, ExportWrapping,
    MaterialDestruction, HealthCheck. `sessions` is the instance's token; closed with the provider."""

    def __init__(self, sessions: TokenSessions, instance_id: str) -> None:
        self._sessions = sessions
        self._instance_id = instance_id
        self._public: OrderedDict[bytes, keypairs.PublicKey] = OrderedDict()
        self._public_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HardwareProvider(instance={self._instance_id!r}, sessions={self._sessions!r})"

    def close(self) -> None:
        self._sessions.close()

    def check_health(self) -> str:
        return self._sessions.check_health()

    # -- symmetric ----------------------------------------------------------------------------------
    def generate_symmetric(self, new: NewVersion) -> bytes:
        rule = SPEC_RULES.get(new.spec)
        if rule is None or not rule.symmetric:
            raise UnsupportedOperation(f"{new.spec} is not a symmetric key spec.")
        object_id = os.urandom(ID_LEN)
        with self._sessions.slot() as slot:
            slot.session.generate_key(
                KeyType.AES,
                rule.material_bytes * 8,
                id=object_id,
                label=_label(new.key_id, new.version_id),
                store=True,
                template=_SECRET_TEMPLATE,
            )
        return reference(_SECRET, object_id)

    def encrypt(
        self, ref: MaterialRef, plaintext: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> tuple[bytes, bytes]:
        iv = os.urandom(IV_LEN)
        with self._sessions.slot() as slot:
            key = self._object(slot, ref, ObjectClass.SECRET_KEY, _SECRET)
            sealed = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
        return iv, bytes(sealed)

    def decrypt(
        self, ref: MaterialRef, iv: bytes, sealed: bytes, aad: bytes, invocation: Invocation | None = None
    ) -> SecretBytes:
        if len(iv) != IV_LEN or len(sealed) < TAG_LEN:
            raise InvalidCiphertext()
        with self._sessions.slot() as slot:
            key = self._object(slot, ref, ObjectClass.SECRET_KEY, _SECRET)
            try:
                plain = key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
            except _BAD_CIPHERTEXT:
                raise InvalidCiphertext() from None
        return SecretBytes(bytes(plain))

    # -- key pairs ----------------------------------------------------------------------------------
    def generate_key_pair(self, new: NewVersion) -> bytes:
        usages = set(new.usages) or set(SPEC_RULES[new.spec].usages[:1])
        sign = KeyUsage.SIGN_VERIFY in usages
        decrypt = KeyUsage.ENCRYPT_DECRYPT in usages
        object_id = os.urandom(ID_LEN)
        label = _label(new.key_id, new.version_id)
        private = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: sign,
            Attribute.DECRYPT: decrypt,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public = {
            Attribute.TOKEN: True,
            Attribute.VERIFY: sign,
            Attribute.ENCRYPT: decrypt,
            Attribute.WRAP: False,
        }
        with self._sessions.slot() as slot:
            session = slot.session
            bits = _RSA_BITS.get(new.spec)
            if bits is not None:
                session.generate_keypair(
                    KeyType.RSA,
                    bits,
                    id=object_id,
                    label=label,
                    store=True,
                    public_template=public,
                    private_template=private,
                )
            elif new.spec in _CURVES:
                if decrypt:
                    raise UnsupportedOperation(f"{new.spec} keys only sign.")
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[new.spec])},
                    local=True,
                )
                params.generate_keypair(
                    id=object_id, label=label, store=True, public_template=public, private_template=private
                )
            else:
                raise UnsupportedOperation(f"{new.spec} is not an asymmetric key spec.")
        return reference(_PAIR, object_id)

    def public_key_pem(self, ref: MaterialRef) -> str:
        return keypairs.public_key_pem(self._public_key(ref))

    def sign(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes) -> bytes:
        keypairs.check_digest(digest)
        rsa_key = ref.spec in _RSA_BITS
        with self._sessions.slot() as slot:
            key = self._object(slot, ref, ObjectClass.PRIVATE_KEY, _PAIR)
            if not hasattr(key, "sign"):  # the token made it without CKA_SIGN
                raise UnsupportedOperation("The HSM refused to sign with this key (it may not sign).")
            try:
                if rsa_key and algorithm is AsymmetricAlgorithm.RSA_PSS_SHA_256:
                    params = (Mechanism.SHA256, MGF.SHA256, keypairs.PSS_SALT_BYTES)
                    return bytes(key.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=params))
                if rsa_key and algorithm is AsymmetricAlgorithm.RSA_PKCS1_SHA_256:
                    return bytes(key.sign(_SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS))
                if not rsa_key and algorithm is AsymmetricAlgorithm.ECDSA_SHA_256:
                    return bytes(encode_ecdsa_signature(key.sign(digest, mechanism=Mechanism.ECDSA)))
            except _NOT_SUPPORTED:
                raise UnsupportedOperation(f"This HSM cannot sign with {algorithm}.") from None
            except p11.PKCS11Error as exc:
                raise self._refused(exc, "sign") from None
        raise UnsupportedOperation(f"{algorithm} does not sign with this key.")

    def verify(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, digest: bytes, signature: bytes
    ) -> None:
        keypairs.verify_digest(self._public_key(ref), algorithm, digest, signature)

    def asymmetric_encrypt(self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, plaintext: bytes) -> bytes:
        public = self._public_key(ref)
        if not isinstance(public, rsa.RSAPublicKey):
            raise UnsupportedOperation(f"{ref.spec} keys do not encrypt.")
        return keypairs.oaep_encrypt(public, algorithm, plaintext)

    def asymmetric_decrypt(
        self, ref: MaterialRef, algorithm: AsymmetricAlgorithm, ciphertext: bytes
    ) -> SecretBytes:
        params = _OAEP.get(algorithm)
        bits = _RSA_BITS.get(ref.spec)
        if params is None or bits is None:
            raise UnsupportedOperation(f"{algorithm} does not decrypt with {ref.spec} keys.")
        if len(ciphertext) != bits // 8:
            raise InvalidCiphertext()
        with self._sessions.slot() as slot:
            key = self._object(slot, ref, ObjectClass.PRIVATE_KEY, _PAIR)
            if not hasattr(key, "decrypt"):  # the token made it without CKA_DECRYPT
                raise UnsupportedOperation("The HSM refused to decrypt with this key (it may not decrypt).")
            try:
                plain = key.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params)
            except _NOT_SUPPORTED:
                raise UnsupportedOperation(
                    f"This HSM cannot decrypt {algorithm} (its token lacks it)."
                ) from None
            except (*_BAD_CIPHERTEXT, p11.DataInvalid):
                raise InvalidCiphertext() from None
            except p11.PKCS11Error as exc:
                raise self._refused(exc, "decrypt") from None
        return SecretBytes(bytes(plain))

    # -- data-key export (a caller's public key: nothing of ours) -----------------------------------
    def wrap_for_export(
        self, public_key_der: bytes, algorithm: AsymmetricAlgorithm, data_key: SecretBytes
    ) -> bytes:
        return keypairs.wrap_for_export(public_key_der, algorithm, data_key)

    # -- imported material, unwrapped inside the token ---------------------------------------------
    def new_import_wrapping_key(self, key_id: KeyId, token_id: str) -> tuple[bytes, bytes]:
        """An RSA-2048 pair made in the token; its private half may only unwrap."""
        object_id = os.urandom(ID_LEN)
        private = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.UNWRAP: True,
            Attribute.DECRYPT: False,
            Attribute.SIGN: False,
        }
        public = {
            Attribute.TOKEN: True,
            Attribute.WRAP: True,
            Attribute.ENCRYPT: True,
            Attribute.VERIFY: False,
        }
        with self._sessions.slot() as slot:
            pub, _ = slot.session.generate_keypair(
                KeyType.RSA,
                2048,
                id=object_id,
                label=f"openkms-import/{key_id}/{token_id}",
                store=True,
                public_template=public,
                private_template=private,
            )
            public_key = _rsa_public(pub)
        return keypairs.public_key_der(public_key), reference(_WRAPPING, object_id)

    def import_material(
        self,
        request: ImportRequest,
        fingerprint_key: SecretBytes,
        expected_fingerprint: bytes | None,
    ) -> tuple[bytes, bytes]:
        """Unwrap imported material with the token's wrapping key into new token objects, so it never
        exists in OpenKMS's memory in clear. AES material: RSAES-OAEP unwrapping, fingerprinted by a
        check value the token makes (AES-ECB of a zero block). RSA key pairs: the envelope's ephemeral
        AES key OAEP-unwrapped as a session object, then the PKCS#8 key unwrapped with it (AES key wrap
        with padding); the public half is made from the private key's modulus and exponent, the pair
        must sign and verify, and it is fingerprinted by its public key. EC key pairs (the token does
        not give an unwrapped EC key's public point) and RSAES_PKCS1_V1_5 are refused."""
        rule = SPEC_RULES[request.spec]
        params = _WRAP_OAEP.get(request.algorithm)
        if params is None:
            raise UnsupportedOperation("Hardware instances unwrap imported material with RSAES-OAEP only.")
        if not rule.symmetric:
            return self._import_key_pair(request, params, fingerprint_key, expected_fingerprint)
        object_id = os.urandom(ID_LEN)
        wrapping_ref = MaterialRef(
            request.key_id, KeyVersionId(request.token_id), KeySpec.RSA_2048, request.wrapped_wrapping_key
        )
        with self._sessions.slot() as slot:
            wrapping = self._object(slot, wrapping_ref, ObjectClass.PRIVATE_KEY, _WRAPPING)
            try:
                made = wrapping.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    request.encrypted_material,
                    id=object_id,
                    label=_label(request.key_id, request.version_id),
                    store=True,
                    mechanism=Mechanism.RSA_PKCS_OAEP,
                    mechanism_param=params,
                    template=_SECRET_TEMPLATE,
                )
            except _NOT_SUPPORTED:
                raise UnsupportedOperation(
                    f"This HSM cannot unwrap with {request.algorithm}; use another WrappingAlgorithm."
                ) from None
            except p11.PKCS11Error:
                raise IncorrectKeyMaterial() from None
            try:
                length = int(made[Attribute.VALUE_LEN])
                check = bytes(made.encrypt(bytes(16), mechanism=Mechanism.AES_ECB))
            except p11.PKCS11Error:
                made.destroy()
                raise IncorrectKeyMaterial() from None
            mac = key_import.fingerprint(fingerprint_key, request.key_id, request.spec, b"hsm-kcv\0" + check)
            # A conforming token reports the unwrapped key's length; SoftHSM2 2.6 leaves CKA_VALUE_LEN
            # at 0 for unwrapped keys (and refuses it in the template), so there the length is unknown.
            wrong = length not in (0, rule.material_bytes) or (
                expected_fingerprint is not None and not hmac.compare_digest(mac, expected_fingerprint)
            )
            if wrong:
                made.destroy()
                raise IncorrectKeyMaterial()
        return reference(_SECRET, object_id), mac

    def _import_key_pair(
        self,
        request: ImportRequest,
        params: tuple[Any, Any, None],
        fingerprint_key: SecretBytes,
        expected_fingerprint: bytes | None,
    ) -> tuple[bytes, bytes]:
        bits = _RSA_BITS.get(request.spec)
        if bits is None:
            raise UnsupportedOperation("Hardware instances import RSA key pairs only (and AES keys).")
        block = 2048 // 8  # the wrapping key is RSA-2048
        head, tail = request.encrypted_material[:block], request.encrypted_material[block:]
        if len(head) != block or not tail:
            raise IncorrectKeyMaterial()
        object_id = os.urandom(ID_LEN)
        label = _label(request.key_id, request.version_id)
        wrapping_ref = MaterialRef(
            request.key_id, KeyVersionId(request.token_id), KeySpec.RSA_2048, request.wrapped_wrapping_key
        )
        private_template = {
            Attribute.ENCRYPT: DEFAULT,
            Attribute.WRAP: DEFAULT,
            Attribute.VERIFY: DEFAULT,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: True,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        with self._sessions.slot() as slot:
            wrapping = self._object(slot, wrapping_ref, ObjectClass.PRIVATE_KEY, _WRAPPING)
            try:
                ephemeral = wrapping.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    head,
                    store=False,
                    mechanism=Mechanism.RSA_PKCS_OAEP,
                    mechanism_param=params,
                    template={
                        Attribute.UNWRAP: True,
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                    },
                )
            except _NOT_SUPPORTED:
                raise UnsupportedOperation(
                    f"This HSM cannot unwrap with {request.algorithm}; use another WrappingAlgorithm."
                ) from None
            except p11.PKCS11Error:
                raise IncorrectKeyMaterial() from None
            try:
                private = ephemeral.unwrap_key(
                    ObjectClass.PRIVATE_KEY,
                    KeyType.RSA,
                    tail,
                    id=object_id,
                    label=label,
                    store=True,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD,
                    template=private_template,
                )
            except p11.PKCS11Error:
                raise IncorrectKeyMaterial() from None
            finally:
                ephemeral.destroy()
            try:
                public = _rsa_public(private)
                probe = bytes(keypairs.DIGEST_BYTES)
                signature = bytes(private.sign(_SHA256_DIGEST_INFO + probe, mechanism=Mechanism.RSA_PKCS))
                keypairs.verify_digest(public, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, probe, signature)
                if public.key_size != bits:
                    raise ValueError("not this spec")
            except (p11.PKCS11Error, ValueError, SignatureInvalid):
                private.destroy()
                raise IncorrectKeyMaterial() from None
            mac = key_import.fingerprint(
                fingerprint_key,
                request.key_id,
                request.spec,
                b"hsm-public\0" + keypairs.public_key_der(public),
            )
            if expected_fingerprint is not None and not hmac.compare_digest(mac, expected_fingerprint):
                private.destroy()
                raise IncorrectKeyMaterial()
            slot.session.create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: KeyType.RSA,
                    Attribute.MODULUS: private[Attribute.MODULUS],
                    Attribute.PUBLIC_EXPONENT: private[Attribute.PUBLIC_EXPONENT],
                    Attribute.ID: object_id,
                    Attribute.LABEL: label,
                    Attribute.TOKEN: True,
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: True,
                    Attribute.WRAP: False,
                }
            )
        return reference(_PAIR, object_id), mac

    # -- destruction ---------------------------------------------------------------------------------
    def destroy(self, ref: MaterialRef) -> None:
        _, object_id = parse_reference(ref.wrapped)
        with self._sessions.slot() as slot:
            for found in list(slot.session.get_objects({Attribute.ID: object_id})):
                found.destroy()
            slot.objects.clear()  # other slots' entries fail as missing objects, never as other keys
        with self._public_lock:
            self._public.pop(object_id, None)

    # -- helpers -----------------------------------------------------------------------------------
    def _object(self, slot: Slot, ref: MaterialRef, object_class: ObjectClass, kind: int) -> Any:
        found_kind, object_id = parse_reference(ref.wrapped)
        if found_kind != kind:
            raise UnsupportedOperation(f"{ref.spec} material cannot be used this way.")
        cache_key = (object_class, object_id)
        found = slot.objects.get(cache_key)
        if found is not None:
            return found
        try:
            found = slot.session.get_key(object_class=object_class, id=object_id)
        except p11.NoSuchKey:
            raise KeyMaterialLost(
                f"The HSM of instance {self._instance_id} no longer holds version {ref.version_id}."
            ) from None
        if len(slot.objects) > 4096:
            slot.objects.clear()
        slot.objects[cache_key] = found
        return found

    def _public_key(self, ref: MaterialRef) -> keypairs.PublicKey:
        _, object_id = parse_reference(ref.wrapped)
        with self._public_lock:
            cached = self._public.get(object_id)
        if cached is not None:
            return cached
        with self._sessions.slot() as slot:
            pub = self._object(slot, ref, ObjectClass.PUBLIC_KEY, _PAIR)
            if ref.spec in _RSA_BITS:
                public: keypairs.PublicKey = _rsa_public(pub)
            else:
                loaded = serialization.load_der_public_key(encode_ec_public_key(pub))
                if not isinstance(loaded, keypairs.PublicKey):
                    raise StorageIntegrityError()
                public = loaded
        with self._public_lock:
            self._public[object_id] = public
            while len(self._public) > _PUBLIC_KEYS_KEPT:
                self._public.popitem(last=False)
        return public

    def _refused(self, exc: BaseException, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"The HSM refused to {what} with this key ({type(exc).__name__}).")


def make_hardware_provider(instance: Any, secret: SecretBytes | None) -> HardwareProvider:
    """The registry's factory for hardware instances: a provider on the token the settings name."""
    from openkms.hsm.config import TokenConfig

    del secret  # the PIN comes from the instance's pin_source, never from the store
    return HardwareProvider(TokenSessions(TokenConfig.from_settings(instance.settings)), instance.instance_id)

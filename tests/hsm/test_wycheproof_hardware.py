"""The Wycheproof vectors the software provider passes, through the PKCS#11 provider on SoftHSM2.

The vectors' keys are put into the token here with C_CreateObject (a test-only path: production has
none, its keys are generated or unwrapped in the token), then used through the provider by reference:
AES-GCM decryption for every key size with 96-bit IVs, RSASSA-PKCS1-v1_5 signatures made by the token
byte for byte, and RSAES-OAEP (SHA-1, the one SoftHSM2 2.6 has) decryption by the token. Verification
goes through `providers.keypairs` for both providers (tests/unit/test_wycheproof_asymmetric.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.rsa import decode_rsa_private_key

from openkms.errors import InvalidCiphertext
from openkms.providers.base import MaterialRef
from openkms.providers.hardware import HardwareProvider, reference
from openkms.testing.softhsm import SoftHsmToken
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyVersionId
from tests.unit.test_software_provider import _GCM_VECTORS, GcmVector
from tests.unit.test_wycheproof_asymmetric import OAEP, PKCS1_SIGN, SPEC_BY_BITS, Case, _digest, _ids, _judge

AES_SPECS = {128: KeySpec.ALIYUN_AES_128, 192: KeySpec.ALIYUN_AES_192, 256: KeySpec.ALIYUN_AES_256}
GCM = [v for v in _GCM_VECTORS if v.iv_size == 96 and v.key_size in AES_SPECS and len(v.tag) == 16]
OAEP_SHA1 = OAEP[AsymmetricAlgorithm.RSAES_OAEP_SHA_1]
_SECRET, _PAIR = 1, 2


class TokenVault:
    """Vector keys created in the token once each, as references the provider takes."""

    def __init__(self, token: SoftHsmToken) -> None:
        self._session = token.session()
        self._made: dict[bytes, MaterialRef] = {}

    def close(self) -> None:
        for ref in self._made.values():
            for found in self._session.get_objects({Attribute.ID: ref.wrapped[-16:]}):
                found.destroy()
        self._session.close()

    def aes(self, vector: GcmVector) -> MaterialRef:
        ref = self._made.get(vector.key)
        if ref is None:
            object_id = os.urandom(16)
            self._session.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.VALUE: vector.key,
                    Attribute.ID: object_id,
                    Attribute.TOKEN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                }
            )
            ref = self._made[vector.key] = _ref(AES_SPECS[vector.key_size], reference(_SECRET, object_id))
        return ref

    def rsa(self, case: Case) -> MaterialRef:
        pkcs8 = bytes.fromhex(case.group["privateKeyPkcs8"])
        ref = self._made.get(pkcs8)
        if ref is None:
            key = serialization.load_der_private_key(pkcs8, None)
            pkcs1 = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            object_id = os.urandom(16)
            attributes: dict[Any, Any] = dict(decode_rsa_private_key(pkcs1))
            attributes.update(
                {
                    Attribute.ID: object_id,
                    Attribute.TOKEN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: True,
                }
            )
            self._session.create_object(attributes)
            ref = self._made[pkcs8] = _ref(SPEC_BY_BITS[case.group["keySize"]], reference(_PAIR, object_id))
        return ref


def _ref(spec: KeySpec, stored: bytes) -> MaterialRef:
    return MaterialRef(KeyId("key-vector"), KeyVersionId(str(uuid.uuid4())), spec, stored)


@pytest.fixture(scope="module")
def vault(softhsm: SoftHsmToken, hardware: HardwareProvider) -> Iterator[TokenVault]:
    made = TokenVault(softhsm)
    yield made
    made.close()


@pytest.mark.parametrize("vector", GCM, ids=[f"tc{v.tc_id}-aes{v.key_size}" for v in GCM])
def test_aes_gcm_decrypt_in_the_token(
    vault: TokenVault, hardware: HardwareProvider, vector: GcmVector
) -> None:
    ref = vault.aes(vector)
    try:
        opened: bytes | None = hardware.decrypt(ref, vector.iv, vector.ct + vector.tag, vector.aad).reveal()
    except InvalidCiphertext:
        opened = None
    if vector.result == "valid":
        assert opened == vector.msg
    elif vector.result == "invalid":
        assert opened is None


@pytest.mark.parametrize("case", PKCS1_SIGN, ids=_ids(PKCS1_SIGN))
def test_rsa_pkcs1_signatures_of_the_token_are_byte_exact(
    vault: TokenVault, hardware: HardwareProvider, case: Case
) -> None:
    signature = hardware.sign(vault.rsa(case), AsymmetricAlgorithm.RSA_PKCS1_SHA_256, _digest(case))
    if case.result == "valid":
        assert signature.hex() == case.test["sig"], str(case)


@pytest.mark.parametrize("case", OAEP_SHA1, ids=_ids(OAEP_SHA1))
def test_rsa_oaep_sha1_decrypt_in_the_token(
    vault: TokenVault, hardware: HardwareProvider, case: Case
) -> None:
    try:
        opened: bytes | None = hardware.asymmetric_decrypt(
            vault.rsa(case), AsymmetricAlgorithm.RSAES_OAEP_SHA_1, bytes.fromhex(case.test["ct"])
        ).reveal()
    except InvalidCiphertext:
        opened = None
    if case.test["label"]:
        assert opened is None, str(case)  # we always use the empty label
    else:
        _judge(case, opened == bytes.fromhex(case.test["msg"]))
        if case.result == "invalid":
            assert opened is None, str(case)

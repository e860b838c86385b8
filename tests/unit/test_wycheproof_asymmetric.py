"""Wycheproof RSA-PSS, RSA PKCS#1 v1.5, RSA-OAEP and ECDSA (P-256, secp256k1) vectors on the software
provider's asymmetric code.

Private-key vectors (PKCS#1 v1.5 signature generation, OAEP decryption) run through the provider itself:
the vector's PKCS#8 key is wrapped by a real keystore and used by reference, like any stored version.
Verification vectors have only public keys and run through `keypairs.verify_digest`, the function the
provider's verify calls. Messages are hashed here: the API signs and verifies SHA-256 digests.

Strictness decisions (pinned here): "acceptable" cases may go either way; P1363 signatures are turned
into DER only when exactly 64 bytes (anything else is invalid); OAEP vectors with a non-empty label must
not decrypt (we use the empty label); OAEP vectors with MGF1-SHA1 under SHA-256 must not decrypt.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from openkms.errors import InvalidCiphertext, SignatureInvalid
from openkms.keystore import Keystore
from openkms.providers import keypairs
from openkms.providers.base import MaterialRef
from openkms.providers.software import SoftwareProvider
from openkms.secret import SecretBytes
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyVersionId


def _vectors_dir() -> Path:
    override = os.environ.get("OPENKMS_VECTORS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "vectors"


WYCHEPROOF = _vectors_dir() / "wycheproof"
SPEC_BY_BITS = {2048: KeySpec.RSA_2048, 3072: KeySpec.RSA_3072, 4096: KeySpec.RSA_4096}


@dataclass(frozen=True)
class Case:
    file: str
    tc_id: int
    result: str
    group: dict[str, Any]
    test: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.file.removesuffix('_test.json')}-{self.tc_id}"


def _cases(*files: str) -> list[Case]:
    cases = []
    for name in files:
        data = json.loads((WYCHEPROOF / name).read_text())
        for group in data["testGroups"]:
            for test in group["tests"]:
                cases.append(Case(name, test["tcId"], test["result"], group, test))
    return cases


def _ids(cases: list[Case]) -> list[str]:
    return [str(case) for case in cases]


def _digest(case: Case) -> bytes:
    return hashlib.sha256(bytes.fromhex(case.test["msg"])).digest()


class Vault:
    """A real keystore and provider; vector private keys are wrapped and used by reference."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore
        self.provider = SoftwareProvider(keystore)
        self._refs: dict[str, MaterialRef] = {}

    def stored(self, case: Case) -> MaterialRef:
        """The vector's private key wrapped by the keystore, as a stored version would be."""
        pkcs8 = case.group["privateKeyPkcs8"]
        ref = self._refs.get(pkcs8)
        if ref is None:
            spec = SPEC_BY_BITS[case.group["keySize"]]
            key_id, version_id = KeyId(f"key-vector-{uuid.uuid4().hex}"), KeyVersionId(str(uuid.uuid4()))
            wrapped = self.keystore.wrap(key_id, version_id, spec, SecretBytes(bytes.fromhex(pkcs8)))
            ref = self._refs[pkcs8] = MaterialRef(key_id, version_id, spec, wrapped)
        return ref


@pytest.fixture(scope="module")
def vault() -> Iterator[Vault]:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    yield Vault(keystore)
    keystore.seal()


def _verifies(public_key: Any, algorithm: AsymmetricAlgorithm, case: Case, signature: bytes) -> bool:
    try:
        keypairs.verify_digest(public_key, algorithm, _digest(case), signature)
    except SignatureInvalid:
        return False
    return True


def _judge(case: Case, accepted: bool) -> None:
    if case.result == "valid":
        assert accepted, f"{case}: a valid case was rejected ({case.test['comment']})"
    elif case.result == "invalid":
        assert not accepted, (
            f"{case}: an invalid case was accepted ({case.test['comment']}, {case.test['flags']})"
        )


# -- RSA-PSS verify (SHA-256, MGF1-SHA-256, salt 32) -------------------------------------------------
PSS = _cases(*(f"rsa_pss_{bits}_sha256_mgf1_32_test.json" for bits in (2048, 3072, 4096)))
# Only the cases valid under salt length 0; the file also holds signatures re-made with salt 32.
PSS_SALT_0 = [case for case in _cases("rsa_pss_2048_sha256_mgf1_0_test.json") if case.result == "valid"]


def _rsa_public(case: Case) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(bytes.fromhex(case.group["publicKeyDer"]))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.mark.parametrize("case", PSS, ids=_ids(PSS))
def test_rsa_pss_verify(case: Case) -> None:
    assert (case.group["sha"], case.group["mgfSha"], case.group["sLen"]) == ("SHA-256", "SHA-256", 32)
    accepted = _verifies(
        _rsa_public(case), AsymmetricAlgorithm.RSA_PSS_SHA_256, case, bytes.fromhex(case.test["sig"])
    )
    _judge(case, accepted)


@pytest.mark.parametrize("case", PSS_SALT_0, ids=_ids(PSS_SALT_0))
def test_rsa_pss_salt_length_is_pinned_to_32(case: Case) -> None:
    """Signatures made with salt length 0 must not verify: RSA_PSS_SHA_256 means salt 32."""
    accepted = _verifies(
        _rsa_public(case), AsymmetricAlgorithm.RSA_PSS_SHA_256, case, bytes.fromhex(case.test["sig"])
    )
    assert not accepted, str(case)


# -- RSA PKCS#1 v1.5 verify and deterministic generation ---------------------------------------------
PKCS1_VERIFY = _cases(*(f"rsa_signature_{bits}_sha256_test.json" for bits in (2048, 3072, 4096)))
PKCS1_SIGN = [
    case
    for case in _cases(*(f"rsa_pkcs1_{bits}_sig_gen_test.json" for bits in (2048, 3072, 4096)))
    if case.group["sha"] == "SHA-256"
]


@pytest.mark.parametrize("case", PKCS1_VERIFY, ids=_ids(PKCS1_VERIFY))
def test_rsa_pkcs1_verify(case: Case) -> None:
    assert case.group["sha"] == "SHA-256"
    accepted = _verifies(
        _rsa_public(case), AsymmetricAlgorithm.RSA_PKCS1_SHA_256, case, bytes.fromhex(case.test["sig"])
    )
    _judge(case, accepted)


@pytest.mark.parametrize("case", PKCS1_SIGN, ids=_ids(PKCS1_SIGN))
def test_rsa_pkcs1_sign_through_the_provider_is_byte_exact(vault: Vault, case: Case) -> None:
    provider, ref = vault.provider, vault.stored(case)
    signature = provider.sign(ref, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, _digest(case))
    if case.result == "valid":
        assert signature.hex() == case.test["sig"], str(case)
    # Whatever the verdict on the key, what we sign must verify under its own public key.
    provider.verify(ref, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, _digest(case), signature)


# -- RSA-OAEP decrypt through the provider ----------------------------------------------------------
OAEP = {
    AsymmetricAlgorithm.RSAES_OAEP_SHA_256: _cases(
        *(f"rsa_oaep_{bits}_sha256_mgf1sha256_test.json" for bits in (2048, 3072, 4096))
    ),
    AsymmetricAlgorithm.RSAES_OAEP_SHA_1: _cases("rsa_oaep_2048_sha1_mgf1sha1_test.json"),
}
OAEP_CASES = [(algorithm, case) for algorithm, cases in OAEP.items() for case in cases]
OAEP_WRONG_MGF = _cases(*(f"rsa_oaep_{bits}_sha256_mgf1sha1_test.json" for bits in (2048, 3072, 4096)))


def _decrypts_to(vault: Vault, algorithm: AsymmetricAlgorithm, case: Case) -> bytes | None:
    ciphertext = bytes.fromhex(case.test["ct"])
    try:
        plaintext = vault.provider.asymmetric_decrypt(vault.stored(case), algorithm, ciphertext)
    except InvalidCiphertext:
        return None
    return plaintext.reveal()


@pytest.mark.parametrize(("algorithm", "case"), OAEP_CASES, ids=[str(case) for _, case in OAEP_CASES])
def test_rsa_oaep_decrypt_through_the_provider(
    vault: Vault, algorithm: AsymmetricAlgorithm, case: Case
) -> None:
    opened = _decrypts_to(vault, algorithm, case)
    matches = opened == bytes.fromhex(case.test["msg"])
    if case.test["label"]:
        # We always use the empty label; a ciphertext made with another label must not open.
        assert opened is None, str(case)
    else:
        _judge(case, matches)
        if case.result == "invalid":
            assert opened is None, f"{case}: an invalid ciphertext opened"


@pytest.mark.parametrize("case", OAEP_WRONG_MGF, ids=_ids(OAEP_WRONG_MGF))
def test_rsa_oaep_with_mgf1_sha1_does_not_open_as_rsaes_oaep_sha_256(vault: Vault, case: Case) -> None:
    assert _decrypts_to(vault, AsymmetricAlgorithm.RSAES_OAEP_SHA_256, case) is None, str(case)


# -- ECDSA verify (DER, and P1363 converted to DER) ---------------------------------------------------
ECDSA_DER = _cases("ecdsa_secp256r1_sha256_test.json", "ecdsa_secp256k1_sha256_test.json")
ECDSA_P1363 = _cases("ecdsa_secp256r1_sha256_p1363_test.json", "ecdsa_secp256k1_sha256_p1363_test.json")


def _ec_public(case: Case) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(bytes.fromhex(case.group["publicKeyDer"]))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


@pytest.mark.parametrize("case", ECDSA_DER, ids=_ids(ECDSA_DER))
def test_ecdsa_der_verify(case: Case) -> None:
    assert case.group["sha"] == "SHA-256"
    accepted = _verifies(
        _ec_public(case), AsymmetricAlgorithm.ECDSA_SHA_256, case, bytes.fromhex(case.test["sig"])
    )
    _judge(case, accepted)


@pytest.mark.parametrize("case", ECDSA_P1363, ids=_ids(ECDSA_P1363))
def test_ecdsa_p1363_verify_after_der_conversion(case: Case) -> None:
    raw = bytes.fromhex(case.test["sig"])
    if len(raw) != 64:
        accepted = False
    else:
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        accepted = _verifies(_ec_public(case), AsymmetricAlgorithm.ECDSA_SHA_256, case, der)
    _judge(case, accepted)


def test_vector_files_are_all_present_and_non_trivial() -> None:
    counts = {
        "pss": len(PSS),
        "pss_salt_0": len(PSS_SALT_0),
        "pkcs1_verify": len(PKCS1_VERIFY),
        "pkcs1_sign": len(PKCS1_SIGN),
        "oaep": len(OAEP_CASES),
        "oaep_wrong_mgf": len(OAEP_WRONG_MGF),
        "ecdsa_der": len(ECDSA_DER),
        "ecdsa_p1363": len(ECDSA_P1363),
    }
    assert counts == {
        "pss": 324,
        "pss_salt_0": 61,
        "pkcs1_verify": 776,
        "pkcs1_sign": 27,
        "oaep": 147,
        "oaep_wrong_mgf": 95,
        "ecdsa_der": 960,
        "ecdsa_p1363": 514,
    }

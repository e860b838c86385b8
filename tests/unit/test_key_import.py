"""The import primitives: full validation of imported private keys (never skippable), the uniform
unwrap (a failed RSA unwrap carries on with random bytes; one error for every failure), the keyed
fingerprint, and the token and expiry parsing."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from openkms.domain.key_import import WrappingAlgorithm, parse_material_expiry, parse_token
from openkms.domain.lifecycle import KeyEvent, transition
from openkms.errors import (
    IncorrectKeyMaterial,
    InvalidArgument,
    InvalidImportToken,
    InvalidKeyState,
    UnsupportedOperation,
)
from openkms.providers import key_import, keypairs
from openkms.secret import SecretBytes
from openkms.types import KeyId, KeySpec, KeyState
from tests.support.byok import pkcs8

WRAPPING = rsa.generate_private_key(65537, 2048)
FP_KEY = SecretBytes(os.urandom(32))
KEY = KeyId("key-1")


def _inconsistent_rsa_der() -> bytes:
    good = rsa.generate_private_key(65537, 2048).private_numbers()
    bad = rsa.RSAPrivateNumbers(
        p=good.p,
        q=good.q,
        d=good.d ^ 2,  # a wrong private exponent: the key does not decrypt what its public half encrypts
        dmp1=good.dmp1,
        dmq1=good.dmq1,
        iqmp=good.iqmp,
        public_numbers=good.public_numbers,
    )
    return pkcs8(bad.private_key(unsafe_skip_rsa_key_validation=True))


def test_an_inconsistent_rsa_key_is_refused_on_import_only() -> None:
    der = _inconsistent_rsa_der()
    assert keypairs.load_imported_private_key(der, KeySpec.RSA_2048) is None
    # the storage path (our own wrapped keys) skips the check: import must never use it
    assert keypairs.load_private_key(SecretBytes(der), KeySpec.RSA_2048) is not None


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        (KeySpec.RSA_2048, rsa.generate_private_key(65537, 3072)),
        (KeySpec.RSA_3072, rsa.generate_private_key(65537, 2048)),
        (KeySpec.EC_P256, ec.generate_private_key(ec.SECP256K1())),
        (KeySpec.EC_P256K, ec.generate_private_key(ec.SECP256R1())),
        (KeySpec.EC_P256, rsa.generate_private_key(65537, 2048)),
    ],
)
def test_a_key_of_another_spec_is_refused(
    spec: KeySpec, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> None:
    assert keypairs.load_imported_private_key(pkcs8(key), spec) is None


def test_valid_keys_load_and_noise_does_not() -> None:
    assert keypairs.load_imported_private_key(pkcs8(ec.generate_private_key(ec.SECP256R1())), KeySpec.EC_P256)
    assert keypairs.load_imported_private_key(pkcs8(WRAPPING), KeySpec.RSA_2048)
    assert keypairs.load_imported_private_key(os.urandom(100), KeySpec.RSA_2048) is None


@pytest.mark.parametrize("algorithm", list(WrappingAlgorithm))
def test_a_failed_rsa_unwrap_carries_on_with_random_bytes(algorithm: WrappingAlgorithm) -> None:
    # A wrong length fails under every algorithm, deterministically.
    short = _encrypt(algorithm, os.urandom(16))
    first, ok_first = key_import._rsa_unwrap(WRAPPING, algorithm, short, 32)
    second, ok_second = key_import._rsa_unwrap(WRAPPING, algorithm, short, 32)
    assert (ok_first, ok_second) == (False, False)
    assert len(first) == len(second) == 32 and first != second  # random, never the wrapped bytes
    # Bad padding never raises: OAEP fails into random bytes; PKCS#1 v1.5 under implicit rejection gives
    # a synthetic message (OpenSSL 3.2+) that is then just as likely the wrong length.
    noise, ok = key_import._rsa_unwrap(WRAPPING, algorithm, os.urandom(256), 32)
    assert len(noise) == 32
    if algorithm is not WrappingAlgorithm.RSAES_PKCS1_V1_5:
        assert not ok
    material = os.urandom(32)
    assert key_import._rsa_unwrap(WRAPPING, algorithm, _encrypt(algorithm, material), 32) == (material, True)


def _encrypt(algorithm: WrappingAlgorithm, material: bytes) -> bytes:
    return WRAPPING.public_key().encrypt(material, key_import._padding(algorithm))


def test_every_material_failure_is_the_same_error() -> None:
    messages = set()
    for encrypted in (
        _encrypt(WrappingAlgorithm.RSAES_PKCS1_V1_5, os.urandom(32)),  # the wrong algorithm
        _encrypt(WrappingAlgorithm.RSAES_OAEP_SHA_256, os.urandom(16)),  # the wrong length
        os.urandom(256),  # bad padding
        os.urandom(3),
        _encrypt(WrappingAlgorithm.RSAES_OAEP_SHA_256, os.urandom(32)) + b"x",  # trailing bytes
    ):
        with pytest.raises(IncorrectKeyMaterial) as caught:
            key_import.unwrap_imported(
                WRAPPING,
                WrappingAlgorithm.RSAES_OAEP_SHA_256,
                encrypted,
                KEY,
                KeySpec.ALIYUN_AES_256,
                FP_KEY,
                None,
            )
        messages.add(caught.value.message)
    assert len(messages) == 1


def test_only_the_same_material_matches_the_fingerprint() -> None:
    material = os.urandom(32)
    algorithm = WrappingAlgorithm.RSAES_OAEP_SHA_1
    first = key_import.unwrap_imported(
        WRAPPING, algorithm, _encrypt(algorithm, material), KEY, KeySpec.ALIYUN_AES_256, FP_KEY, None
    )
    assert first.material.reveal() == material
    again = key_import.unwrap_imported(
        WRAPPING,
        algorithm,
        _encrypt(algorithm, material),
        KEY,
        KeySpec.ALIYUN_AES_256,
        FP_KEY,
        first.fingerprint,
    )
    assert again.fingerprint == first.fingerprint
    with pytest.raises(IncorrectKeyMaterial):
        key_import.unwrap_imported(
            WRAPPING,
            algorithm,
            _encrypt(algorithm, os.urandom(32)),
            KEY,
            KeySpec.ALIYUN_AES_256,
            FP_KEY,
            first.fingerprint,
        )


def test_the_fingerprint_is_keyed_and_bound_to_the_key() -> None:
    material = os.urandom(32)
    mac = key_import.fingerprint(FP_KEY, KEY, KeySpec.ALIYUN_AES_256, material)
    assert mac == key_import.fingerprint(FP_KEY, KEY, KeySpec.ALIYUN_AES_256, material)
    assert mac != hashlib.sha256(material).digest()
    assert mac != key_import.fingerprint(SecretBytes(os.urandom(32)), KEY, KeySpec.ALIYUN_AES_256, material)
    assert mac != key_import.fingerprint(FP_KEY, KeyId("key-2"), KeySpec.ALIYUN_AES_256, material)


def test_token_and_expiry_parsing() -> None:
    assert parse_token("OKI1." + "a" * 32 + "." + "B" * 43) == ("a" * 32, "B" * 43)
    for bad in ("", "OKI1.", "OKI1." + "a" * 32, "OKI2." + "a" * 32 + "." + "B" * 43, "x" * 80):
        with pytest.raises(InvalidImportToken):
            parse_token(bad)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_material_expiry(None, now) is None and parse_material_expiry(0, now) is None
    later = int((now + timedelta(days=1)).timestamp())
    assert parse_material_expiry(later, now) == now + timedelta(days=1)
    for bad_expiry in (-1, int(now.timestamp()), 10**18):
        with pytest.raises(InvalidArgument):
            parse_material_expiry(bad_expiry, now)


def test_material_transitions() -> None:
    assert transition(KeyState.PENDING_IMPORT, KeyEvent.IMPORT_MATERIAL) is KeyState.ENABLED
    assert transition(KeyState.DISABLED, KeyEvent.IMPORT_MATERIAL) is KeyState.DISABLED
    assert transition(KeyState.ENABLED, KeyEvent.DELETE_MATERIAL) is KeyState.PENDING_IMPORT
    assert transition(KeyState.PENDING_IMPORT, KeyEvent.SCHEDULE_DELETION) is KeyState.PENDING_DELETION
    for event in (KeyEvent.IMPORT_MATERIAL, KeyEvent.DELETE_MATERIAL):
        with pytest.raises(InvalidKeyState):
            transition(KeyState.PENDING_DELETION, event)
    for event in (KeyEvent.ENABLE, KeyEvent.DISABLE):
        with pytest.raises(InvalidKeyState):
            transition(KeyState.PENDING_IMPORT, event)


def test_material_is_unusable_from_its_expiry_time() -> None:
    from datetime import UTC, datetime

    from openkms.domain.lifecycle import ensure_material_current
    from openkms.errors import InvalidKeyState

    expiry = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ensure_material_current(None, expiry.timestamp() + 10**9)  # no expiry: always current
    ensure_material_current(expiry, expiry.timestamp() - 0.001)
    with pytest.raises(InvalidKeyState):
        ensure_material_current(expiry, expiry.timestamp())


def test_pkcs1_v15_unwrapping_needs_implicit_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    """On this machine's OpenSSL a bad PKCS#1 v1.5 padding yields a synthetic message, not an error.
    Where it would raise (OpenSSL before 3.2, which cannot be installed here: simulated), the algorithm
    is refused instead of leaking padding failures."""
    from openkms.domain.key_import import WrappingAlgorithm
    from openkms.providers import key_import as provider_import

    assert provider_import.pkcs1_v15_rejects_implicitly() is True
    provider_import.ensure_wrapping_algorithm_safe(WrappingAlgorithm.RSAES_PKCS1_V1_5)
    monkeypatch.setattr(provider_import, "pkcs1_v15_rejects_implicitly", lambda: False)
    with pytest.raises(UnsupportedOperation):
        provider_import.ensure_wrapping_algorithm_safe(WrappingAlgorithm.RSAES_PKCS1_V1_5)
    provider_import.ensure_wrapping_algorithm_safe(WrappingAlgorithm.RSAES_OAEP_SHA_256)

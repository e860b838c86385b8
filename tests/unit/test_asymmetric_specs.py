"""The spec table (domain/specs.py) for asymmetric keys and the CSR subject rules (domain/csr.py)."""

from __future__ import annotations

import pytest

from openkms.domain.csr import ISO_3166_ALPHA_2, make_subject
from openkms.domain.specs import (
    SPEC_RULES,
    SPECS_BY_KIND,
    ensure_rotation_allowed,
    max_plaintext,
    parse_algorithm,
    parse_spec,
    parse_usage,
)
from openkms.errors import InvalidArgument, MissingParameter, UnsupportedOperation
from openkms.types import AsymmetricAlgorithm, InstanceKind, KeySpec, KeyUsage

A = AsymmetricAlgorithm


def test_software_instances_offer_the_seed_specs_and_default_keys_stay_symmetric() -> None:
    hardware_only = {KeySpec.ALIYUN_AES_128, KeySpec.ALIYUN_AES_192}
    assert set(SPECS_BY_KIND[InstanceKind.SOFTWARE]) == set(KeySpec) - hardware_only
    assert set(SPECS_BY_KIND[InstanceKind.HARDWARE]) == set(KeySpec)
    assert SPECS_BY_KIND[InstanceKind.EXTERNAL] == (KeySpec.ALIYUN_AES_256,)
    assert SPECS_BY_KIND[None] == (KeySpec.ALIYUN_AES_256,)
    with pytest.raises(InvalidArgument):
        parse_spec("Aliyun_AES_128", InstanceKind.SOFTWARE)
    with pytest.raises(InvalidArgument):
        parse_spec("RSA_2048", None)


def test_every_spec_usage_has_its_algorithms() -> None:
    table = {
        (spec, usage): set(rule.algorithms(usage))
        for spec, rule in SPEC_RULES.items()
        for usage in rule.usages
    }
    rsa_sign, rsa_encrypt = (
        {A.RSA_PSS_SHA_256, A.RSA_PKCS1_SHA_256},
        {A.RSAES_OAEP_SHA_256, A.RSAES_OAEP_SHA_1},
    )
    assert table == {
        (KeySpec.ALIYUN_AES_256, KeyUsage.ENCRYPT_DECRYPT): set(),
        (KeySpec.ALIYUN_AES_192, KeyUsage.ENCRYPT_DECRYPT): set(),
        (KeySpec.ALIYUN_AES_128, KeyUsage.ENCRYPT_DECRYPT): set(),
        **{
            (spec, KeyUsage.SIGN_VERIFY): rsa_sign
            for spec in (KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096)
        },
        **{
            (spec, KeyUsage.ENCRYPT_DECRYPT): rsa_encrypt
            for spec in (KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096)
        },
        (KeySpec.EC_P256, KeyUsage.SIGN_VERIFY): {A.ECDSA_SHA_256},
        (KeySpec.EC_P256K, KeyUsage.SIGN_VERIFY): {A.ECDSA_SHA_256},
    }


def test_default_usage_of_keys_that_can_sign_is_sign_verify() -> None:
    assert parse_usage(None, parse_spec("RSA_3072", InstanceKind.SOFTWARE)) is KeyUsage.SIGN_VERIFY
    assert parse_usage("", parse_spec("EC_P256", InstanceKind.SOFTWARE)) is KeyUsage.SIGN_VERIFY
    with pytest.raises(InvalidArgument):
        parse_usage("ENCRYPT/DECRYPT", parse_spec("EC_P256K", InstanceKind.SOFTWARE))


def test_parse_algorithm_names_the_choices() -> None:
    rule = SPEC_RULES[KeySpec.RSA_2048]
    assert parse_algorithm("RSA_PSS_SHA_256", rule, KeyUsage.SIGN_VERIFY) is A.RSA_PSS_SHA_256
    with pytest.raises(InvalidArgument) as caught:
        parse_algorithm("RSAES_OAEP_SHA_256", rule, KeyUsage.SIGN_VERIFY)
    assert caught.value.parameter == "Algorithm"
    assert "RSA_PSS_SHA_256, RSA_PKCS1_SHA_256" in caught.value.message


@pytest.mark.parametrize(
    ("spec", "algorithm", "limit"),
    [
        (KeySpec.RSA_2048, A.RSAES_OAEP_SHA_256, 190),
        (KeySpec.RSA_2048, A.RSAES_OAEP_SHA_1, 214),
        (KeySpec.RSA_3072, A.RSAES_OAEP_SHA_256, 318),
        (KeySpec.RSA_3072, A.RSAES_OAEP_SHA_1, 342),
        (KeySpec.RSA_4096, A.RSAES_OAEP_SHA_256, 446),
        (KeySpec.RSA_4096, A.RSAES_OAEP_SHA_1, 470),
    ],
)
def test_oaep_limits(spec: KeySpec, algorithm: AsymmetricAlgorithm, limit: int) -> None:
    assert max_plaintext(SPEC_RULES[spec], algorithm) == limit


def test_rotation_is_refused_for_asymmetric_specs_only() -> None:
    for spec in ("RSA_2048", "RSA_4096", "EC_P256", "EC_P256K"):
        with pytest.raises(UnsupportedOperation):
            ensure_rotation_allowed(spec)
    for allowed in (None, "", "Aliyun_AES_256", "no such spec"):
        ensure_rotation_allowed(allowed)


def test_csr_subject_keeps_values_exactly_and_validates() -> None:
    subject = make_subject(
        "cn", organization="Acme, Inc. (R&D)", country="CN", email="a@b.example", locality=""
    )
    assert (subject.organization, subject.country, subject.locality) == ("Acme, Inc. (R&D)", "CN", None)
    assert {"CN", "US", "DE", "JP", "GB"} <= ISO_3166_ALPHA_2 and len(ISO_3166_ALPHA_2) == 249
    with pytest.raises(MissingParameter):
        make_subject(None)
    bad = [
        {"country": "UK"},
        {"country": "us"},
        {"country": "USA"},
        {"email": "no-at-sign"},
        {"email": "ü@example.com"},
        {"organization": "x" * 65},
        {"province": "line\nbreak"},
        {"organizational_unit": "trailing "},
    ]
    for fields in bad:
        with pytest.raises(InvalidArgument):
            make_subject("cn", **fields)

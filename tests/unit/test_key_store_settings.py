"""The rules of hardware and external instances' settings and of CreateKey's OpenKMS extensions
(additional usages for hardware key pairs, the external key id for keys of external instances)."""

from __future__ import annotations

import pytest

from openkms.domain.specs import SPEC_RULES
from openkms.errors import InvalidArgument, MissingParameter, UnsupportedOperation
from openkms.secret import SecretBytes
from openkms.service.key_stores import check_settings
from openkms.service.keys import parse_additional_usages, parse_external_key_id
from openkms.types import InstanceKind, KeySpec, KeyUsage

HARDWARE = InstanceKind.HARDWARE
EXTERNAL = InstanceKind.EXTERNAL
SIGN, ENCRYPT = KeyUsage.SIGN_VERIFY, KeyUsage.ENCRYPT_DECRYPT


def test_hardware_settings_need_a_module_a_token_and_a_pin_source() -> None:
    given = {"module": "/lib/p11.so", "token_label": "t", "pin_source": "env:PIN", "sessions": "4"}
    assert check_settings(HARDWARE, given, None) == given
    assert (
        check_settings(HARDWARE, {**given, "token_label": "", "token_serial": "42"}, None)["token_serial"]
        == "42"
    )
    with pytest.raises(MissingParameter, match="token_label or token_serial"):
        check_settings(HARDWARE, {"module": "/lib/p11.so", "pin_source": "env:PIN"}, None)
    with pytest.raises(MissingParameter, match="pin_source"):
        check_settings(HARDWARE, {"module": "/lib/p11.so", "token_label": "t"}, None)
    with pytest.raises(InvalidArgument, match=r"Unknown setting.*pin"):
        check_settings(HARDWARE, {**given, "pin": "1234"}, None)  # a PIN is never a setting


def test_external_settings_need_an_endpoint_a_credential_and_its_secret() -> None:
    given = {"endpoint": "https://xks:8443", "path_prefix": "/kms/xks/v1", "access_key_id": "AKIAEXAMPLE"}
    assert check_settings(EXTERNAL, given, SecretBytes(b"secret")) == given
    assert check_settings(EXTERNAL, given, None, secret_stored=True) == given
    with pytest.raises(MissingParameter, match="secret_access_key"):
        check_settings(EXTERNAL, given, None)
    with pytest.raises(MissingParameter, match="endpoint"):
        check_settings(EXTERNAL, {**given, "endpoint": ""}, SecretBytes(b"secret"))
    with pytest.raises(InvalidArgument, match="take no settings"):
        check_settings(InstanceKind.SOFTWARE, {}, None)


def test_additional_usages_are_for_hardware_key_pairs_only() -> None:
    rsa = SPEC_RULES[KeySpec.RSA_2048]
    assert parse_additional_usages("ENCRYPT/DECRYPT", rsa, SIGN, HARDWARE) == (ENCRYPT,)
    assert parse_additional_usages("SIGN/VERIFY, ENCRYPT/DECRYPT", rsa, SIGN, HARDWARE) == (ENCRYPT,)
    assert parse_additional_usages(None, rsa, SIGN, InstanceKind.SOFTWARE) == ()
    with pytest.raises(UnsupportedOperation, match="hardware instance"):
        parse_additional_usages("ENCRYPT/DECRYPT", rsa, SIGN, InstanceKind.SOFTWARE)
    with pytest.raises(UnsupportedOperation, match="hardware instance"):
        parse_additional_usages("ENCRYPT/DECRYPT", rsa, SIGN, None)
    with pytest.raises(InvalidArgument) as caught:
        parse_additional_usages("ENCRYPT/DECRYPT", SPEC_RULES[KeySpec.EC_P256], SIGN, HARDWARE)
    assert caught.value.parameter == "OpenKMSAdditionalKeyUsages"


def test_an_external_key_id_belongs_to_keys_of_external_instances() -> None:
    assert parse_external_key_id("bb2d-4c9e_1.a", EXTERNAL) == "bb2d-4c9e_1.a"
    assert parse_external_key_id(None, HARDWARE) is None
    with pytest.raises(MissingParameter):
        parse_external_key_id(None, EXTERNAL)
    with pytest.raises(UnsupportedOperation):
        parse_external_key_id("k1", InstanceKind.SOFTWARE)
    for bad in ("with space", "x" * 129, "slash/y"):
        with pytest.raises(InvalidArgument):
            parse_external_key_id(bad, EXTERNAL)

"""Audit before answer for the asymmetric actions: a record per request naming the key version, and
with an unwritable audit log no signature, plaintext, public key, exported key or CSR is released."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.security.test_audit import _in_process_server, _kms
from tests.support.raw import signed_params
from tests.support.sdk import KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to make writes fail")
def test_an_unwritable_audit_log_releases_no_asymmetric_result(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = LiveServer(data_dir).start()
    kms = _kms(server.endpoint)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    made = {}
    for spec, usage in (
        ("RSA_2048", "ENCRYPT/DECRYPT"),
        ("EC_P256", "SIGN/VERIFY"),
        ("Aliyun_AES_256", None),
    ):
        meta = kms.call("CreateKey", DKMSInstanceId=instance, KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        made[spec] = {"KeyId": meta["KeyId"], "KeyVersionId": meta["PrimaryKeyVersion"]}
    pem = kms.call("GetPublicKey", **made["RSA_2048"])["PublicKey"]
    public_key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    secret = b"audit-guarded-plaintext"
    blob = base64.b64encode(public_key.encrypt(secret, oaep)).decode()
    records = [
        json.loads(line)
        for path in sorted((data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    last = records[-1]
    assert (last["action"], last["key_id"], last["key_version_id"], last["result"]) == (
        "GetPublicKey",
        made["RSA_2048"]["KeyId"],
        made["RSA_2048"]["KeyVersionId"],
        "Success",
    )
    server.stop()

    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    wrapping_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    wrapping = {
        "PublicKeyBlob": base64.b64encode(
            wrapping_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
        "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
        "WrappingKeySpec": "RSA_2048",
    }
    with _in_process_server(data_dir, Path("/dev/full")) as endpoint:
        kms = _kms(endpoint)
        for action, params in [
            (
                "AsymmetricDecrypt",
                {**made["RSA_2048"], "Algorithm": "RSAES_OAEP_SHA_256", "CiphertextBlob": blob},
            ),
            ("AsymmetricSign", {**made["EC_P256"], "Algorithm": "ECDSA_SHA_256", "Digest": digest}),
            ("GetPublicKey", made["EC_P256"]),
            ("GenerateAndExportDataKey", {"KeyId": made["Aliyun_AES_256"]["KeyId"], **wrapping}),
        ]:
            with pytest.raises(KmsError) as caught:
                kms.call(action, **params)
            assert (caught.value.code, caught.value.status) == ("InternalFailure", 500), action
        csr = httpx.post(
            f"http://{endpoint}/",
            data=signed_params(
                "GenerateCertificateSigningRequest",
                ACCESS_KEY_ID,
                ACCESS_KEY_SECRET,
                Algorithm="ECDSA_SHA_256",
                CommonName="audit",
                **made["EC_P256"],
            ),
            timeout=30,
        )
        assert csr.status_code == 500 and "CERTIFICATE REQUEST" not in csr.text
        assert csr.json()["Code"] == "InternalFailure"

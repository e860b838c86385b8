"""Alibaba's Node.js KMS SDK (`@alicloud/kms20160120`, on `@alicloud/rpc-client`), unchanged, against a
live server: the main key flows, the flattened `EncryptionContext.<key>=<value>` form it sends, an
asymmetric signature and refusals. The SDK is installed from tests/clients/node's lockfile with
`npm ci` once per checkout (node_modules is kept between runs); a machine without Node.js skips."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"


def _node_sdk() -> Path:
    """The folder with the Node.js SDK installed (npm ci from the lockfile, when the lockfile changed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed on this machine")
    lock = CLIENT_DIR / "package-lock.json"
    stamp = CLIENT_DIR / "node_modules" / ".openkms-lock-sha256"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != wanted:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return CLIENT_DIR


@pytest.fixture(scope="module")
def node_flows(server: LiveServer) -> dict[str, Any]:
    folder = _node_sdk()
    env = {
        **os.environ,
        "OPENKMS_ENDPOINT": server.endpoint,
        "OPENKMS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "OPENKMS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
    }
    run = subprocess.run(
        ["node", "flows.js"], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def _code(refusal: dict[str, Any]) -> str:
    """The Alibaba code of a refusal: the Node.js RPC client reports `<Code>Error` (its own suffix)."""
    code = str(refusal["code"])
    assert code.endswith("Error"), refusal
    return code.removesuffix("Error")


def test_key_lifecycle_and_aliases(node_flows: dict[str, Any]) -> None:
    key_id = node_flows["keyId"]
    assert node_flows["created"]["KeyId"] == key_id and node_flows["created"]["Description"] == "node"
    assert node_flows["described"]["keyState"] == "Enabled" and node_flows["listed"] >= 1
    assert node_flows["byAlias"] == key_id
    assert node_flows["aliases"] == [f"alias/node-{key_id[-8:]}"]
    assert node_flows["disabledState"] == "Disabled"
    assert _code(node_flows["encryptWhileDisabled"]) == "Rejected.Disabled"
    assert node_flows["scheduledState"] == "PendingDeletion"
    assert node_flows["cancelledState"] == "Enabled"


def test_encryption_with_the_flattened_context(node_flows: dict[str, Any], server: LiveServer) -> None:
    hello = base64.b64encode(b"hello from node").decode()
    assert node_flows["decryptedPlain"] == hello
    assert node_flows["decryptedBound"] == hello
    assert _code(node_flows["wrongContext"]) == "Rejected.InvalidCiphertext"
    assert node_flows["dataKeyOpened"] == node_flows["dataKey"]["plaintext"]
    # What Node sealed with the flattened map opens with the JSON map through the Python SDK.
    python = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    opened = python.call(
        "Decrypt",
        CiphertextBlob=node_flows["boundBlob"],
        EncryptionContext={"tenant.id": "7", "purpose": "node"},
    )
    assert opened["Plaintext"] == hello


def test_asymmetric_signature_verifies_locally(node_flows: dict[str, Any]) -> None:
    assert node_flows["verified"] is True
    public_key = serialization.load_pem_public_key(node_flows["publicKey"].encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        base64.b64decode(node_flows["signature"]),
        base64.b64decode(node_flows["digest"]),
        ec.ECDSA(Prehashed(hashes.SHA256())),
    )


def test_refusals_carry_alibaba_codes(node_flows: dict[str, Any]) -> None:
    assert _code(node_flows["missingKey"]) == "Forbidden.KeyNotFound"
    assert _code(node_flows["badWindow"]) == "InvalidParameter"

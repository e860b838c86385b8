"""The key-stores scenario of `make bench`: Encrypt on software, hardware (SoftHSM2) and external (XKS
proxy on SoftHSM2) keys, and AsymmetricSign on software and hardware key pairs, beside the bare
stack's Encrypt ceiling, all measured in the same run with the same wrk plan.

What it sets up: a SoftHSM2 token in the work folder (its own softhsm2.conf), an `openkms serve` with
SOFTHSM2_CONF in its environment, a hardware instance made with `openkms instance create --kind hsm`
(the PIN in a 0600 file), an `openkms xks-proxy` process on the same token (plain HTTP on loopback,
development mode) and an external instance pointing at it, then one key of each kind through the API.
SoftHSM2 is a software token: its figures say what the PKCS#11 path costs, not what a real HSM does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import REPO_DIR, ManagedServer, _child_env, free_port, log
from bench.presign import Credentials, rpc_call
from openkms.testing.softhsm import SoftHsmToken, make_token

ENCRYPTION_CONTEXT = '{"app":"billing","purpose":"bench"}'
SIGN_CASES = (("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256"))
XKS_ACCESS_KEY_ID = "AKIAOPENKMSBENCH0001"
XKS_KEY_ID = "bench-external-1"
XKS_KEY_LABEL = "bench-xks-aes"


@dataclass
class KeyStoreTarget:
    """One benchmarked request: the kind of key store, its action and the parameters."""

    kind: str
    action: str
    params: Mapping[str, str]

    @property
    def name(self) -> str:
        spec = self.params.get("_spec", "")
        return f"{self.kind} {spec}".strip()


def _cli(data_dir: Path, env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(data_dir)],
        env=dict(env),
        cwd=REPO_DIR,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openkms {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def _instance_id(printed: str) -> str:
    return printed.split()[0]


def start_proxy(work: Path, token: SoftHsmToken, env: Mapping[str, str]) -> tuple[ManagedServer, str]:
    """`openkms xks-proxy` on loopback over plain HTTP, its config 0600; (server, secret)."""
    secret = base64.b64encode(os.urandom(33)).decode()
    config = {
        "path_prefix": "/bench",
        "plain_http": True,
        "credentials": [{"access_key_id": XKS_ACCESS_KEY_ID, "secret_access_key": secret}],
        "token": dict(token.settings()),
        "keys": {XKS_KEY_ID: {"label": XKS_KEY_LABEL}},
    }
    path = work / "xks-proxy.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    args = [sys.executable, "-m", "openkms.cli", "xks-proxy", "--config", str(path), "--port", "{port}"]
    proxy = ManagedServer("xks-proxy", args, env, work / "xks-proxy.log")
    proxy.port = free_port()
    return proxy, secret


def set_up(work: Path, url: str, creds: Credentials, data_dir: Path, env: Mapping[str, str], token: SoftHsmToken,
           proxy_url: str, proxy_secret: str) -> list[KeyStoreTarget]:  # fmt: skip
    """Instances and keys; one call of each target through the same signer (a broken setup fails here)."""
    settings = token.settings()
    hsm = _instance_id(
        _cli(data_dir, env, "instance", "create", "--kind", "hsm", "--name", "bench-hsm",
             "--module", settings["module"], "--token-label", settings["token_label"],
             "--pin-source", settings["pin_source"])
    )  # fmt: skip
    external = _instance_id(
        _cli(data_dir, env, "instance", "create", "--kind", "external", "--name", "bench-xks",
             "--endpoint", proxy_url, "--path-prefix", "/bench", "--access-key-id", XKS_ACCESS_KEY_ID,
             "--allow-http", "--secret-stdin", stdin=proxy_secret + "\n")
    )  # fmt: skip
    software = str(
        rpc_call(url, creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    )
    plaintext = base64.b64encode(os.urandom(48)).decode()
    targets: list[KeyStoreTarget] = []
    for kind, instance, extra in (
        ("software", software, {}),
        ("hsm", hsm, {}),
        ("external", external, {"OpenKMSExternalKeyId": XKS_KEY_ID}),
    ):
        key_id = rpc_call(url, creds, "CreateKey", DKMSInstanceId=instance, **extra)["KeyMetadata"]["KeyId"]
        params = {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": ENCRYPTION_CONTEXT}
        targets.append(KeyStoreTarget(kind, "Encrypt", params))
    digest = base64.b64encode(hashlib.sha256(b"openkms bench").digest()).decode()
    for spec, algorithm in SIGN_CASES:
        for kind, instance in (("software", software), ("hsm", hsm)):
            meta = rpc_call(
                url, creds, "CreateKey", DKMSInstanceId=instance, KeySpec=spec, KeyUsage="SIGN/VERIFY"
            )["KeyMetadata"]
            params = {
                "KeyId": meta["KeyId"],
                "KeyVersionId": meta["PrimaryKeyVersion"],
                "Algorithm": algorithm,
                "Digest": digest,
                "_spec": spec,
            }
            targets.append(KeyStoreTarget(kind, "AsymmetricSign", params))
    for target in targets:
        rpc_call(url, creds, target.action, **wire_params(target))
    log(f"key stores: software {software}, hsm {hsm}, external {external}")
    return targets


def wire_params(target: KeyStoreTarget) -> dict[str, str]:
    return {name: value for name, value in target.params.items() if not name.startswith("_")}


def token_for(work: Path) -> SoftHsmToken:
    """A fresh SoftHSM2 token with the proxy's AES key on it."""
    token = make_token(work / "softhsm", label="openkms-bench")
    token.add_aes_key(XKS_KEY_LABEL)
    return token


def server_env(token: SoftHsmToken, extra: Mapping[str, str]) -> dict[str, str]:
    return _child_env({"SOFTHSM2_CONF": str(token.conf_path), **extra})


_ = Any

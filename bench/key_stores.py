"""The key-stores scenario of `make bench`: Encrypt on software, hardware (SoftHSM2) and external (XKS
proxy on SoftHSM2) keys, and AsymmetricSign on software and hardware key pairs, beside the bare
stack's Encrypt ceiling, all measured in the same run with the same wrk plan (runs interleaved).

What it sets up: a SoftHSM2 token in the work folder (`openkms.testing.softhsm`), an `openkms serve`
with SOFTHSM2_CONF in its environment, a hardware instance made with `openkms instance create --kind
hsm` (the PIN in a 0600 file), an `openkms xks-proxy` process on the same token (plain HTTP on
loopback, development mode) and an external instance pointing at it, then one key of each kind
through the API. SoftHSM2 is a software token whose calls a process serialises (docs/hsm.md): its
figures say what the PKCS#11 path costs here, not what a real HSM does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import REPO_DIR, ManagedServer, _child_env, log
from bench.presign import Credentials, rpc_call
from openkms.testing.softhsm import SoftHsmToken, make_token

if TYPE_CHECKING:
    from bench.run import Bench, Row, Target

ENCRYPTION_CONTEXT = '{"app":"billing","purpose":"bench"}'
SIGN_CASES = (("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256"))
XKS_ACCESS_KEY_ID = "AKIAOPENKMSBENCH0001"
XKS_PREFIX = "/bench"
XKS_KEY_ID = "bench-external-1"
XKS_KEY_LABEL = "bench-xks-aes"


@dataclass(frozen=True)
class Case:
    """One row group: an action and its targets by name (measured interleaved)."""

    action: str
    params: Mapping[str, Mapping[str, str]]  # target name -> request parameters


def _cli(data_dir: Path, env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(data_dir)],
        env=dict(env), cwd=REPO_DIR, input=stdin, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"openkms {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.split()[0]


def _proxy(work: Path, token: SoftHsmToken, env: Mapping[str, str]) -> tuple[ManagedServer, str]:
    secret = base64.b64encode(os.urandom(33)).decode()
    config = {
        "path_prefix": XKS_PREFIX,
        "plain_http": True,
        "credentials": [{"access_key_id": XKS_ACCESS_KEY_ID, "secret_access_key": secret}],
        "token": token.settings(),
        "keys": {XKS_KEY_ID: {"label": XKS_KEY_LABEL}},
    }
    path = work / "xks-proxy.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    args = [sys.executable, "-m", "openkms.cli", "xks-proxy", "--config", str(path), "--port", "{port}"]
    proxy = ManagedServer("xks-proxy", args, env, work / "xks-proxy.log")
    proxy.ready_path = "/ping"
    return proxy, secret


def _cases(url: str, creds: Credentials, data_dir: Path, env: Mapping[str, str], token: SoftHsmToken,
           proxy: ManagedServer, secret: str) -> list[Case]:  # fmt: skip
    settings = token.settings()
    hsm = _cli(data_dir, env, "instance", "create", "--kind", "hsm", "--name", "bench-hsm",
               "--module", settings["module"], "--token-label", settings["token_label"],
               "--pin-source", settings["pin_source"])  # fmt: skip
    external = _cli(data_dir, env, "instance", "create", "--kind", "external", "--name", "bench-xks",
                    "--endpoint", proxy.url, "--path-prefix", XKS_PREFIX,
                    "--access-key-id", XKS_ACCESS_KEY_ID, "--allow-http", "--secret-stdin",
                    stdin=secret + "\n")  # fmt: skip
    software = str(
        rpc_call(url, creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    )
    plaintext = base64.b64encode(os.urandom(48)).decode()  # 64 bytes of text, as the steady rows
    encrypt: dict[str, Mapping[str, str]] = {}
    for kind, instance, extra in (
        ("software", software, {}),
        ("hsm", hsm, {}),
        ("external", external, {"OpenKMSExternalKeyId": XKS_KEY_ID}),
    ):
        key_id = rpc_call(url, creds, "CreateKey", DKMSInstanceId=instance, **extra)["KeyMetadata"]["KeyId"]
        encrypt[kind] = {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": ENCRYPTION_CONTEXT}
    cases = [Case("Encrypt", encrypt)]
    digest = base64.b64encode(hashlib.sha256(b"openkms bench").digest()).decode()
    for spec, algorithm in SIGN_CASES:
        sign: dict[str, Mapping[str, str]] = {}
        for kind, instance in (("software", software), ("hsm", hsm)):
            meta = rpc_call(url, creds, "CreateKey", DKMSInstanceId=instance, KeySpec=spec,
                            KeyUsage="SIGN/VERIFY")["KeyMetadata"]  # fmt: skip
            sign[f"{kind} {spec}"] = {"KeyId": meta["KeyId"], "KeyVersionId": meta["PrimaryKeyVersion"],
                                      "Algorithm": algorithm, "Digest": digest}  # fmt: skip
        cases.append(Case("AsymmetricSign", sign))
    for case in cases:  # one call of each through the same signer: a broken setup fails here
        for params in case.params.values():
            rpc_call(url, creds, case.action, **params)
    log(f"key stores: software {software}, hsm {hsm}, external {external}")
    return cases


def run_scenario(bench: Bench, stack: contextlib.ExitStack, workers: int, connections: Sequence[int],
                 bare: Target | None) -> dict[str, Any]:  # fmt: skip
    """Set up, measure every case at each connection count (the bare ceiling's Encrypt interleaved
    with the Encrypt rows), and say where it ran."""
    from bench.harness import openkms_server
    from bench.run import Target

    token = make_token(bench.work / "softhsm", label="openkms-bench")
    token.add_aes_key(XKS_KEY_LABEL)
    env = _child_env(token.env())
    proxy, secret = _proxy(bench.work, token, env)
    stack.callback(proxy.stop)
    proxy.start()
    (bench.work / "key-stores").mkdir(parents=True, exist_ok=True)
    server = openkms_server(bench.work / "key-stores", bench.creds, workers, token.env())
    stack.callback(server.stop)
    server.start()
    cases = _cases(
        server.url, bench.creds, bench.work / "key-stores" / "openkms-data", env, token, proxy, secret
    )
    for conns in connections:
        for case in cases:
            targets = [Target(server, name, params) for name, params in case.params.items()]
            if case.action == "Encrypt" and bare is not None:
                targets.append(bare)
            bench.interleaved(targets, case.action, conns)
    server.stop()
    proxy.stop()
    return {"token": "SoftHSM2 (softhsm2-util), file object store", "proxy": "openkms xks-proxy, plain HTTP"}


def summary_lines(rows: Sequence[Row]) -> list[str]:
    """Each key-store row as a ratio to the bare Encrypt ceiling and to the software row beside it."""
    lines: list[str] = []
    bare = {row.connections: row for row in rows if row.target == "ceiling" and row.action == "Encrypt"}
    for row in rows:
        if row.target in ("bare", "ceiling") or row.target.startswith("openkms"):
            continue
        ceiling = bare.get(row.connections)
        spec = row.target.split(" ", 1)[1] if " " in row.target else ""
        software = next(
            (r for r in rows if r.action == row.action and r.connections == row.connections
             and r.target == ("software " + spec).strip()),
            None,
        )  # fmt: skip
        parts = [f"{row.target} {row.action} c={row.connections}: {row.rps:,.0f} req/s"]
        if ceiling is not None and ceiling.rps:
            parts.append(f"{row.rps / ceiling.rps:.3f} of the bare ceiling")
        if software is not None and software is not row and software.rps:
            parts.append(f"{row.rps / software.rps:.2f} of software")
        parts.append(
            f"p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms (worst run {row.worst_p99_ms:.2f} ms)"
        )
        lines.append("- " + ", ".join(parts))
    return lines

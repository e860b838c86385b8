"""The everyday CLI against a live server: profiles (and the refusal of a profile file others may
read), key, alias, encrypt/decrypt/generate-data-key and account commands, tables and --json, binary
data through stdin and stdout, errors as one line with the Alibaba Code and no traceback, and data
that looks like Rich markup printed as it is."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openkms.cli.main import app
from tests.support.products import Caller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

OPENKMS = [sys.executable, "-m", "openkms.cli"]
CLIENT_COMMANDS = [
    ["key", "list"],
    ["alias", "list"],
    ["account", "list"],
    ["profile", "list"],
    ["profile", "show"],
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("cli") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def profiles(live: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile file with the live server as the default profile (its secret stored in it)."""
    path = tmp_path / "config" / "profiles.json"
    monkeypatch.setenv("OPENKMS_PROFILES", str(path))
    monkeypatch.delenv("OPENKMS_ACCESS_KEY_SECRET", raising=False)
    monkeypatch.delenv("OPENKMS_PROFILE", raising=False)
    added = cli(
        "profile", "add", "local", "--endpoint", live.endpoint, "--access-key-id", ACCESS_KEY_ID,
        "--secret-stdin", stdin=ACCESS_KEY_SECRET + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return path


def cli(*args: str, stdin: str | bytes | None = None) -> object:
    from click.testing import Result

    result: Result = CliRunner().invoke(app, list(args), input=stdin)
    return result


def run(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`openkms <args>` as a user runs it (the installed entry point's code path)."""
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def ok_json(*args: str, stdin: str | None = None) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def new_key(description: str = "cli test key") -> str:
    metadata = ok_json("key", "create", "--description", description)["KeyMetadata"]
    assert isinstance(metadata, dict)
    return str(metadata["KeyId"])


def test_profiles_are_private_and_never_show_the_secret(profiles: Path, live: LiveServer) -> None:
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    assert stat.S_IMODE(profiles.parent.stat().st_mode) == 0o700
    listed = CliRunner().invoke(app, ["profile", "list"])
    shown = CliRunner().invoke(app, ["profile", "show", "local", "--json"])
    assert listed.exit_code == 0 and "local" in listed.stdout and live.endpoint in listed.stdout
    document = json.loads(shown.stdout)
    assert document["Endpoint"] == f"http://{live.endpoint}" and document["Default"] is True
    assert document["Secret"] == "in the profile file"
    assert ACCESS_KEY_SECRET not in listed.output + shown.output
    # A second profile without a stored secret takes it from the environment.
    other = CliRunner().invoke(
        app, ["profile", "add", "env", "--endpoint", live.endpoint, "--access-key-id", ACCESS_KEY_ID]
    )
    assert other.exit_code == 0, other.output
    refused = run("key", "list", "--profile", "env", env={"OPENKMS_PROFILES": str(profiles)})
    assert refused.returncode == 1
    assert refused.stderr.decode().startswith("error NoSecret:") and b"Traceback" not in refused.stderr
    with_secret = {"OPENKMS_PROFILES": str(profiles), "OPENKMS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET}
    fine = run("key", "list", "--profile", "env", env=with_secret)
    assert fine.returncode == 0, fine.stderr


def test_a_profile_file_others_may_read_is_refused(profiles: Path) -> None:
    profiles.chmod(0o644)
    result = run("key", "list", env={"OPENKMS_PROFILES": str(profiles)})
    assert result.returncode == 1 and result.stdout == b""
    line = result.stderr.decode()
    assert line.count("\n") == 1 and line.startswith("error ProfileFileTooOpen:")
    assert "chmod 600" in line and ACCESS_KEY_SECRET not in line
    profiles.chmod(0o600)
    assert run("key", "list", env={"OPENKMS_PROFILES": str(profiles)}).returncode == 0


def test_the_key_lifecycle(profiles: Path) -> None:
    key_id = new_key()
    listed = ok_json("key", "list")["Keys"]
    assert isinstance(listed, list) and key_id in {key["KeyId"] for key in listed}
    table = CliRunner().invoke(app, ["key", "list"])
    assert table.exit_code == 0 and key_id in table.stdout and "KeyState" in table.stdout
    assert ok_json("key", "describe", key_id)["KeyMetadata"]["KeyState"] == "Enabled"  # type: ignore[index]
    assert ok_json("key", "disable", key_id)["KeyMetadata"]["KeyState"] == "Disabled"  # type: ignore[index]
    assert ok_json("key", "enable", key_id)["KeyMetadata"]["KeyState"] == "Enabled"  # type: ignore[index]
    scheduled = ok_json("key", "schedule-deletion", key_id, "--days", "7")["KeyMetadata"]
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["DeleteDate"]  # type: ignore[index]
    cancelled = ok_json("key", "cancel-deletion", key_id)["KeyMetadata"]
    assert cancelled["KeyState"] == "Enabled"  # type: ignore[index]
    ok_json("key", "disable", key_id)
    shown = CliRunner().invoke(app, ["key", "describe", key_id])
    assert shown.exit_code == 0 and "Disabled" in shown.stdout


def test_binary_data_round_trips_through_stdin_and_stdout(profiles: Path) -> None:
    key_id = new_key()
    env = {"OPENKMS_PROFILES": str(profiles)}
    data = os.urandom(2048) + b"\x00\n\r\xff"
    encrypted = run("encrypt", "--key", key_id, stdin=data, env=env)
    assert encrypted.returncode == 0, encrypted.stderr
    blob = encrypted.stdout
    assert blob.endswith(b"\n") and data not in blob
    decrypted = run("decrypt", stdin=blob, env=env)
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == data
    # Encrypt's Plaintext holds 6144 bytes: 4608 of binary data once base64-encoded.
    assert run("encrypt", "--key", key_id, stdin=os.urandom(4608), env=env).returncode == 0
    too_big = run("encrypt", "--key", key_id, stdin=os.urandom(4609), env=env)
    assert too_big.returncode == 1 and too_big.stderr.decode().startswith("error PlaintextTooLarge:")
    assert "generate-data-key" in too_big.stderr.decode()


def test_files_a_context_and_text(profiles: Path, live: LiveServer, tmp_path: Path) -> None:
    key_id = new_key()
    source, blob, back = tmp_path / "in.bin", tmp_path / "blob", tmp_path / "out.bin"
    source.write_bytes(b"file \x00 bytes")
    context = '{"purpose": "test"}'
    made = CliRunner().invoke(
        app, ["encrypt", "--key", key_id, "--in", str(source), "--out", str(blob), "--context", context]
    )
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    refused = run("decrypt", "--in", str(blob), env={"OPENKMS_PROFILES": str(profiles)})  # no context
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr.decode().startswith("error Rejected.InvalidCiphertext:")
    done = CliRunner().invoke(app, ["decrypt", "--in", str(blob), "--out", str(back), "--context", context])
    assert done.exit_code == 0, done.output
    assert back.read_bytes() == b"file \x00 bytes"
    # --text sends UTF-8 text as it is, as other clients do: the SDK reads the same string back.
    as_text = CliRunner().invoke(app, ["encrypt", "--key", key_id, "--text"], input="héllo")
    kms = Caller("kms", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert kms.call("Decrypt", CiphertextBlob=as_text.stdout.strip())["Plaintext"] == "héllo"
    text_back = CliRunner().invoke(app, ["decrypt", "--text"], input=as_text.stdout)
    assert text_back.stdout == "héllo"
    described = ok_json("decrypt", stdin=as_text.stdout)
    assert described["Plaintext"] == "héllo" and described["KeyId"] == key_id


def test_generate_data_key(profiles: Path, tmp_path: Path) -> None:
    key_id = new_key()
    made = ok_json("generate-data-key", "--key", key_id)
    assert len(base64.b64decode(str(made["Plaintext"]))) == 32 and made["CiphertextBlob"]
    short = ok_json("generate-data-key", "--key", key_id, "--spec", "AES_128")
    assert len(base64.b64decode(str(short["Plaintext"]))) == 16
    out = tmp_path / "dk"
    kept = ok_json("generate-data-key", "--key", key_id, "--plaintext-out", str(out))
    assert "Plaintext" not in kept and len(out.read_bytes()) == 32
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    blob_only = ok_json("generate-data-key", "--key", key_id, "--without-plaintext")
    assert "Plaintext" not in blob_only and blob_only["CiphertextBlob"]
    table = CliRunner().invoke(app, ["generate-data-key", "--key", key_id])
    assert table.exit_code == 0 and "CiphertextBlob" in table.stdout


def test_aliases(profiles: Path) -> None:
    first, second = new_key(), new_key()
    name = f"cli-{uuid.uuid4().hex[:8]}"
    made = ok_json("alias", "create", name, first)
    assert made["AliasName"] == f"alias/{name}"
    aliases = ok_json("alias", "list", "--key", first)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [f"alias/{name}"]  # type: ignore[union-attr,index]
    ok_json("alias", "update", f"alias/{name}", second)
    assert ok_json("key", "describe", f"alias/{name}")["KeyMetadata"]["KeyId"] == second  # type: ignore[index]
    table = CliRunner().invoke(app, ["alias", "list"])
    assert f"alias/{name}" in table.stdout
    ok_json("alias", "delete", name)
    assert f"alias/{name}" not in CliRunner().invoke(app, ["alias", "list"]).stdout


def test_account_list_shows_the_caller_and_the_account_users(profiles: Path, live: LiveServer) -> None:
    ram = Caller("ram", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    user = f"cli-{uuid.uuid4().hex[:8]}"
    ram.call("CreateUser", UserName=user)
    listed = ok_json("account", "list")
    caller = listed["Caller"]
    assert caller["IdentityType"] == "Account" and caller["Arn"].endswith(":root")  # type: ignore[index]
    assert user in {u["UserName"] for u in listed["Users"]}  # type: ignore[union-attr,index]
    table = CliRunner().invoke(app, ["account", "list"])
    # The ARN's ":root" and "::" are printed as they are (Rich would read ":ram:" as an emoji code).
    assert table.exit_code == 0 and str(caller["Arn"]) in table.stdout  # type: ignore[index]


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=" ".join)
def test_every_client_command_prints_json(profiles: Path, command: list[str]) -> None:
    assert isinstance(ok_json(*command), dict)


def test_data_that_looks_like_markup_is_printed_as_is(profiles: Path) -> None:
    description = "[red]not red[/red] :ram: acs:ram::123:root [bold]"
    key_id = new_key(description)
    table = CliRunner().invoke(app, ["key", "describe", key_id])
    assert table.exit_code == 0 and description in table.stdout


def test_server_errors_are_one_line_with_the_code(profiles: Path, live: LiveServer) -> None:
    env = {"OPENKMS_PROFILES": str(profiles)}
    missing = run("key", "describe", "no-such-key", env=env)
    assert missing.returncode == 1 and missing.stdout == b""
    line = missing.stderr.decode()
    assert line.count("\n") == 1 and line.startswith("error Forbidden.KeyNotFound:") and "RequestId" in line
    assert "hint:" in line
    wrong = run("key", "list", env={**env, "OPENKMS_ACCESS_KEY_SECRET": "not-the-secret"})
    assert wrong.returncode == 1 and wrong.stderr.decode().startswith("error SignatureDoesNotMatch:")
    closed = run("key", "list", "--endpoint", "127.0.0.1:1", env=env)
    assert closed.returncode == 1 and closed.stderr.decode().startswith("error ConnectionFailed:")
    usage = run("key", "describe", env=env)
    assert usage.returncode == 2 and usage.stderr.decode().startswith("error InvalidUsage:")
    for result in (missing, wrong, closed, usage):
        assert b"Traceback" not in result.stderr and result.stderr.count(b"\n") == 1


def test_key_associations_over_the_api_and_as_the_operator(profiles: Path, live: LiveServer) -> None:
    key_id = new_key()
    ok_json("encrypt", "--key", key_id, stdin="x")
    over_api = ok_json("key", "associations", key_id)
    account = str(ok_json("account", "list")["Caller"]["AccountId"])  # type: ignore[index]
    assert over_api["Status"] == "Succeeded"
    assert f"acs:ram::{account}:root" in {a["Principal"] for a in over_api["Associations"]}  # type: ignore[union-attr,index]
    # The operator's table on the store: the ARN printed whole, ":ram:" not read as an emoji.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    shown = subprocess.run(
        [*OPENKMS, "key", "associations", key_id, "--data-dir", str(live.data_dir)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"acs:ram::{account}:root" in shown.stdout


def _command_paths(group: object, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield from _command_paths(command, [*path, name])


def test_version_and_help() -> None:
    import typer

    version = run("--version")
    assert version.returncode == 0 and version.stdout.decode().startswith("openkms ")
    paths = list(_command_paths(typer.main.get_command(app), []))
    names = {" ".join(path) for path in paths}
    assert {"key create", "encrypt", "alias list", "profile add", "account list", "serve"} <= names
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path  # a flag takes no value
        assert "(F" not in result.stdout, path  # no internal feature numbers


def test_audit_verify_outside_a_data_dir_is_one_line_and_makes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "audit", "verify"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error NoAuditLog:") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no openkms-data folder made on the way

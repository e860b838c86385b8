"""RAM login profiles, ChangePassword and the account alias through the official RAM SDK against a
live server (SQLite and PostgreSQL); the root's console password from `openkms account password` and
from the first start. A password is never in an answer, the audit log or the server's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openkms.clock import SystemClock
from openkms.errors import SignInFailed
from openkms.repository.database import Database
from openkms.service.sign_in import ConsoleSession, SignInPolicy, SignInService
from tests.support.products import Caller, DeniedError
from tests.support.server import LiveServer

PASSWORD = "Login-Passw0rd"
NEW_PASSWORD = "Changed-Passw0rd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sign_in(server: LiveServer) -> Iterator[Callable[[str, str], ConsoleSession]]:
    """Sign in through the service the console calls, on the live server's own store."""
    db = Database(server.database_url or f"sqlite:///{(server.data_dir / 'openkms.db').resolve()}")
    service = SignInService(db, SystemClock(), SignInPolicy())
    yield service.sign_in
    db.dispose()


def denied(call: Callable[[], Any]) -> DeniedError:
    with pytest.raises(DeniedError) as caught:
        call()
    return caught.value


def audit_text(server: LiveServer) -> str:
    return "".join(path.read_text() for path in sorted((server.data_dir / "audit").glob("*.jsonl")))


def test_login_profile_lifecycle(
    server: LiveServer, ram: Caller, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    name = unique("alice")
    ram.call("CreateUser", UserName=name)
    created = ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD, PasswordResetRequired=True)
    profile = created["LoginProfile"]
    assert profile["UserName"] == name and profile["PasswordResetRequired"] is True
    assert profile["MFABindRequired"] is False and profile["CreateDate"].endswith("Z")
    assert PASSWORD not in json.dumps(created)
    assert ram.call("GetLoginProfile", UserName=name)["LoginProfile"] == profile

    session = sign_in(f"{name}@{account_id}.onaliyun.com", PASSWORD)
    assert session.principal.name == f"user/{name}" and session.password_reset_required

    ram.call("UpdateLoginProfile", UserName=name, PasswordResetRequired=False, MFABindRequired=True)
    got = ram.call("GetLoginProfile", UserName=name)["LoginProfile"]
    assert (got["PasswordResetRequired"], got["MFABindRequired"]) == (False, True)
    sign_in(f"{name}@{account_id}", PASSWORD)  # flags only: the password is unchanged
    ram.call("UpdateLoginProfile", UserName=name, Password=NEW_PASSWORD)
    with pytest.raises(SignInFailed):
        sign_in(f"{name}@{account_id}", PASSWORD)
    sign_in(f"{name}@{account_id}", NEW_PASSWORD)

    ram.call("DeleteLoginProfile", UserName=name)
    missing = denied(lambda: ram.call("GetLoginProfile", UserName=name))
    assert (missing.code, missing.status) == ("EntityNotExist.User.LoginProfile", 404)
    with pytest.raises(SignInFailed):
        sign_in(f"{name}@{account_id}", NEW_PASSWORD)
    ram.call("DeleteUser", UserName=name)

    text = audit_text(server)
    assert "CreateLoginProfile" in text and "UpdateLoginProfile" in text
    assert PASSWORD not in text and NEW_PASSWORD not in text
    assert PASSWORD not in server.log() and NEW_PASSWORD not in server.log()


@pytest.mark.parametrize(
    ("password", "needs"),
    [("Sh0rt", "8 to 32"), ("no-digits-Here", "a digit"), ("NOLOWER123", "a lowercase letter")],
)
def test_a_password_against_the_policy_is_refused(ram: Caller, password: str, needs: str) -> None:
    name = unique("weak")
    ram.call("CreateUser", UserName=name)
    refused = denied(lambda: ram.call("CreateLoginProfile", UserName=name, Password=password))
    assert (refused.code, refused.status) == ("InvalidParameter.Password", 400)
    assert needs in refused.message and password not in refused.message
    assert (
        denied(lambda: ram.call("GetLoginProfile", UserName=name)).code == "EntityNotExist.User.LoginProfile"
    )
    ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD)
    refused = denied(lambda: ram.call("UpdateLoginProfile", UserName=name, Password=password))
    assert refused.code == "InvalidParameter.Password"


def test_duplicates_and_missing_entities(ram: Caller) -> None:
    name = unique("dup")
    ram.call("CreateUser", UserName=name)
    ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD)
    again = denied(lambda: ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD))
    assert (again.code, again.status) == ("EntityAlreadyExists.User.LoginProfile", 409)
    ghost = unique("ghost")
    for action, params in (
        ("CreateLoginProfile", {"Password": PASSWORD}),
        ("GetLoginProfile", {}),
        ("UpdateLoginProfile", {"PasswordResetRequired": True}),
        ("DeleteLoginProfile", {}),
    ):
        refused = denied(lambda a=action, p=params: ram.call(a, UserName=ghost, **p))
        assert refused.code == "EntityNotExist.User"
    ram.call("DeleteLoginProfile", UserName=name)
    missing = denied(lambda: ram.call("UpdateLoginProfile", UserName=name, PasswordResetRequired=True))
    assert missing.code == "EntityNotExist.User.LoginProfile"
    missing = denied(lambda: ram.call("DeleteLoginProfile", UserName=name))
    assert missing.code == "EntityNotExist.User.LoginProfile"


def test_deleting_a_user_deletes_its_login_profile(
    ram: Caller, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    name = unique("gone")
    ram.call("CreateUser", UserName=name)
    ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD)
    ram.call("DeleteUser", UserName=name)
    ram.call("CreateUser", UserName=name)  # the same name again starts without a login profile
    assert (
        denied(lambda: ram.call("GetLoginProfile", UserName=name)).code == "EntityNotExist.User.LoginProfile"
    )
    with pytest.raises(SignInFailed):
        sign_in(f"{name}@{account_id}", PASSWORD)


def _user_with_key(ram: Caller, *policies: str) -> tuple[str, str, str]:
    name = unique("user")
    ram.call("CreateUser", UserName=name)
    key = ram.call("CreateAccessKey", UserName=name)["AccessKey"]
    for policy in policies:
        ram.call("AttachPolicyToUser", UserName=name, PolicyType="System", PolicyName=policy)
    return name, key["AccessKeyId"], key["AccessKeySecret"]


def test_a_user_without_the_permission_is_refused(server: LiveServer, ram: Caller) -> None:
    _, key_id, secret = _user_with_key(ram, "AliyunKMSFullAccess")
    as_user = Caller("ram", server.endpoint, key_id, secret)
    target = unique("target")
    ram.call("CreateUser", UserName=target)
    refused = denied(lambda: as_user.call("CreateLoginProfile", UserName=target, Password=PASSWORD))
    assert (refused.code, refused.status) == ("Forbidden.NoPermission", 403)
    assert (
        denied(lambda: ram.call("GetLoginProfile", UserName=target)).code
        == "EntityNotExist.User.LoginProfile"
    )
    assert denied(lambda: as_user.call("GetLoginProfile", UserName=target)).code == "Forbidden.NoPermission"
    # ... and with AliyunRAMFullAccess it may.
    _, admin_id, admin_secret = _user_with_key(ram, "AliyunRAMFullAccess")
    admin = Caller("ram", server.endpoint, admin_id, admin_secret)
    admin.call("CreateLoginProfile", UserName=target, Password=PASSWORD)
    assert admin.call("GetLoginProfile", UserName=target)["LoginProfile"]["UserName"] == target


def test_a_user_changes_its_own_password(
    server: LiveServer, ram: Caller, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    name, key_id, secret = _user_with_key(ram)
    ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD, PasswordResetRequired=True)
    itself = Caller("ram", server.endpoint, key_id, secret)
    wrong = denied(
        lambda: itself.call("ChangePassword", OldPassword="Wrong-Passw0rd", NewPassword=NEW_PASSWORD)
    )
    assert (wrong.code, wrong.status) == ("InvalidParameter.OldPassword", 400)
    weak = denied(lambda: itself.call("ChangePassword", OldPassword=PASSWORD, NewPassword="weak"))
    assert weak.code == "InvalidParameter.Password"
    itself.call("ChangePassword", OldPassword=PASSWORD, NewPassword=NEW_PASSWORD)
    assert ram.call("GetLoginProfile", UserName=name)["LoginProfile"]["PasswordResetRequired"] is False
    assert not sign_in(f"{name}@{account_id}", NEW_PASSWORD).password_reset_required
    root_refused = denied(lambda: ram.call("ChangePassword", OldPassword=PASSWORD, NewPassword=NEW_PASSWORD))
    assert root_refused.code == "InvalidParameter"
    assert NEW_PASSWORD not in audit_text(server)


def test_the_account_alias(
    server: LiveServer, ram: Caller, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    assert ram.call("GetAccountAlias")["AccountAlias"] == account_id
    for bad in ("ab", "-corp", "corp-", "Corp", "a--b", "1234567", "x" * 33):
        refused = denied(lambda b=bad: ram.call("SetAccountAlias", AccountAlias=b))
        assert refused.code == "InvalidParameter"
    alias = f"corp-{uuid.uuid4().hex[:8]}"
    ram.call("SetAccountAlias", AccountAlias=alias)
    try:
        assert ram.call("GetAccountAlias")["AccountAlias"] == alias
        name = unique("bob")
        ram.call("CreateUser", UserName=name)
        ram.call("CreateLoginProfile", UserName=name, Password=PASSWORD)
        assert sign_in(f"{name}@{alias}.onaliyun.com", PASSWORD).principal.name == f"user/{name}"
        _, key_id, secret = _user_with_key(ram, "AliyunRAMFullAccess")
        user = Caller("ram", server.endpoint, key_id, secret)
        assert denied(lambda: user.call("SetAccountAlias", AccountAlias="other-name")).code == (
            "Forbidden.NoPermission"
        )
    finally:
        ram.call("ClearAccountAlias")
    assert ram.call("GetAccountAlias")["AccountAlias"] == account_id


# ---- the root's console password ------------------------------------------------------------------


def _cli_password(server: LiveServer, *extra: str, stdin: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "openkms.cli", "account", "password", "--password-stdin", *extra]
    args += ["--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_account_password_sets_the_roots_console_password(
    server: LiveServer, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    weak = _cli_password(server, stdin="weakpass\n")
    assert weak.returncode == 1 and "a digit" in weak.stderr and "weakpass" not in weak.stderr + weak.stdout
    password = f"Root-{uuid.uuid4().hex[:8]}-9A"
    done = _cli_password(server, "--account-id", account_id, stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    session = sign_in(account_id, password)
    assert session.principal.name == "root" and str(session.principal.account_id) == account_id
    text = audit_text(server)
    assert "SetAccountPassword" in text and password not in text
    unknown = _cli_password(server, "--account-id", "9999999999999999", stdin=password + "\n")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr


def test_a_first_start_writes_the_roots_console_password(tmp_path: Path) -> None:
    # No preset access key: the generated secret and the console password share the 0600 file.
    live = LiveServer(
        tmp_path / "data", extra_env={"OPENKMS_ROOT_ACCESS_KEY_ID": "", "OPENKMS_ROOT_ACCESS_KEY_SECRET": ""}
    ).start()
    try:
        path = live.data_dir / "root-credentials.json"
        document = json.loads(path.read_text())
        assert path.stat().st_mode & 0o777 == 0o600
        assert document["ConsoleSignInName"] == document["AccountId"]
        assert {"AccessKeyId", "AccessKeySecret", "ConsolePassword"} <= set(document)
        log = live.log()
        assert document["ConsolePassword"] not in log and document["AccessKeySecret"] not in log
        assert "console password" in log and str(path) in log
        db = Database(f"sqlite:///{(live.data_dir / 'openkms.db').resolve()}")
        try:
            session = SignInService(db, SystemClock(), SignInPolicy()).sign_in(
                document["AccountId"], document["ConsolePassword"]
            )
            assert session.principal.name == "root"
            assert session.password_reset_required  # written in clear: changed at the first sign-in
        finally:
            db.dispose()
        live.stop()
        live.start()  # a restart changes nothing
        assert json.loads(path.read_text()) == document
    finally:
        live.stop()


def test_a_preset_access_key_still_gets_a_console_password(server: LiveServer, account_id: str) -> None:
    document = json.loads((server.data_dir / "root-credentials.json").read_text())
    assert document["AccountId"] == account_id and "ConsolePassword" in document
    assert "AccessKeySecret" not in document  # the preset secret is the operator's already
    assert document["ConsolePassword"] not in server.log()


def test_account_password_prompts_twice_without_echo(
    server: LiveServer, account_id: str, sign_in: Callable[[str, str], ConsoleSession]
) -> None:
    from typer.testing import CliRunner

    from openkms.cli.main import app

    password = f"Prompt-{uuid.uuid4().hex[:8]}-7B"
    args = ["account", "password", "--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: "" for k in os.environ if k.startswith("OPENKMS_")}
    mismatch = CliRunner().invoke(
        app, args, input=f"{password}\nOther-Passw0rd\n{password}\n{password}\n", env=env
    )
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output  # the first pair differed: asked again
    assert password not in mismatch.output  # hidden input is not echoed
    assert sign_in(account_id, password).principal.name == "root"

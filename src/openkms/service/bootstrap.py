"""First start of an empty store: regions, the root account, one software instance per region, the
root access key (which needs the unsealed keystore, because its secret is stored wrapped) and the
root's first console password (random; only its hash is stored).

Idempotent: every step checks what exists, so restarts and several processes starting together are
safe (the database's unique constraints settle races).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service import ids
from openkms.service.identities import secret_binding
from openkms.service.passwords import generate_password, hash_password
from openkms.service.sign_in import new_password_row
from openkms.types import AccessKeyId, AccountId, InstanceKind, RegionId

CREDENTIALS_FILE = "root-credentials.json"


@dataclass(frozen=True, slots=True)
class RootAccessKey:
    account_id: AccountId
    access_key_id: AccessKeyId
    written_to: Path | None  # the credentials file (a generated secret and/or the console password)
    secret_written: bool = False  # a generated secret is in the file (not a preset one)
    console_password: bool = False  # a first console password was made and is in the file


def bootstrap_store(db: Database, regions: tuple[str, ...], clock: Clock) -> AccountId:
    """Create missing regions, the root account and its software instances; return the root uid."""
    now = clock.now()
    try:
        with db.unit_of_work(write=True) as uow:
            existing = set(uow.accounts.region_ids())
            for region in regions:
                if region not in existing:
                    uow.accounts.add_region(RegionId(region), now)
            accounts = uow.accounts.account_ids()
            if accounts:
                root = accounts[0]
            else:
                root = ids.new_account_id()
                uow.accounts.add_account(root, now)
            for region in regions:
                if not uow.instances.in_region(root, RegionId(region)):
                    uow.instances.add(
                        ids.new_instance_id(RegionId(region)),
                        root,
                        RegionId(region),
                        InstanceKind.SOFTWARE,
                        "default software instance",
                        now,
                    )
    except IntegrityError:
        # Another process bootstrapped concurrently; its result stands.
        with db.unit_of_work() as uow:
            return uow.accounts.account_ids()[0]
    return root


def ensure_root_access_key(
    db: Database,
    keystore: Keystore,
    clock: Clock,
    data_dir: Path,
    preset: tuple[str, str] | None,
) -> RootAccessKey | None:
    """Give the root account its access key if it has none. None when one already exists.

    `preset` (from OPENKMS_ROOT_ACCESS_KEY_ID/SECRET) is used as given; otherwise a key is generated
    and its secret written to root-credentials.json (mode 0600) in the data dir, never printed. The
    same first start gives the root a random console password (unless it has one), written to that
    file with its sign-in name (the account uid).
    """
    with db.unit_of_work() as uow:
        root = uow.accounts.account_ids()[0]
        if uow.accounts.access_key_ids(root):
            return None
    access_key_id, secret = (AccessKeyId(preset[0]), preset[1]) if preset else ids.new_access_key()
    key_id, version_id, spec = secret_binding(access_key_id)
    wrapped = keystore.wrap(key_id, version_id, spec, SecretBytes(secret.encode()))
    password = generate_password()
    encoded = hash_password(password)
    try:
        with db.unit_of_work(write=True) as uow:
            if uow.accounts.access_key_ids(root):
                return None
            now = clock.now()
            uow.accounts.add_access_key(access_key_id, root, "root", wrapped, now)
            console_password = uow.console.password(root, "root") is None
            if console_password:
                # Written in clear to the credentials file: it must be changed at the first sign-in.
                uow.console.add_password(new_password_row(root, "root", encoded, now, reset_required=True))
    except IntegrityError:
        return None
    document: dict[str, str] = {"AccountId": root}
    if preset is None:
        document |= {"AccessKeyId": access_key_id, "AccessKeySecret": secret}
    if console_password:
        document |= {"ConsoleSignInName": root, "ConsolePassword": password}
    written_to = None
    if len(document) > 1:
        written_to = data_dir / CREDENTIALS_FILE
        _write_private(written_to, document)
    return RootAccessKey(root, access_key_id, written_to, preset is None, console_password)


def describe_root_credentials(created: RootAccessKey) -> str:
    """The log line of a first start: where the secrets are, never the secrets themselves."""
    holds = []
    if created.secret_written:
        holds.append("its secret")
    if created.console_password:
        holds.append(f"the console password (sign-in name {created.account_id})")
    line = f"access key {created.access_key_id} created; "
    if not created.secret_written:
        line += "its secret is the one in OPENKMS_ROOT_ACCESS_KEY_SECRET; "
    if holds:
        line += (
            f"{' and '.join(holds)} {'are' if len(holds) > 1 else 'is'} in {created.written_to} (mode 0600)"
        )
    return line.rstrip("; ")


@dataclass(frozen=True, slots=True)
class NewAccount:
    account_id: AccountId
    access_key_id: AccessKeyId
    secret: SecretBytes


def create_account(db: Database, keystore: Keystore, clock: Clock, regions: tuple[str, ...]) -> NewAccount:
    """A new main account: a fresh uid, one software instance per region, and its root access key.

    The secret is returned once, to the administrator who asked; the store keeps it wrapped.
    """
    account_id = ids.new_account_id()
    access_key_id, secret_text = ids.new_access_key()
    secret = SecretBytes(secret_text.encode())
    key_id, version_id, spec = secret_binding(access_key_id)
    wrapped = keystore.wrap(key_id, version_id, spec, secret)
    now = clock.now()
    with db.unit_of_work(write=True) as uow:
        uow.accounts.add_account(account_id, now)
        for region in regions:
            uow.instances.add(
                ids.new_instance_id(RegionId(region)),
                account_id,
                RegionId(region),
                InstanceKind.SOFTWARE,
                "default software instance",
                now,
            )
        uow.accounts.add_access_key(access_key_id, account_id, "root", wrapped, now)
    return NewAccount(account_id, access_key_id, secret)


def _write_private(path: Path, document: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.chmod(path, 0o600)

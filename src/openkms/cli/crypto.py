"""`openkms encrypt|decrypt|generate-data-key` over the Alibaba API, on files or stdin/stdout.

Binary-safe: Encrypt's Plaintext is a string, so by default the bytes are sent base64-encoded (as
Alibaba's documentation asks for binary data) and `decrypt` decodes them back; `--text` sends UTF-8
text as it is, for ciphertexts other clients made from text. A ciphertext is the CiphertextBlob
string. Plaintext goes only where it was asked to go (--out, stdout, --plaintext-out), never into an
error line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from openkms.cli.connect import AccessKeyId, Endpoint, Json, ProfileName, Region, client, requests
from openkms.cli.output import fail, print_fields, print_json
from openkms.service.crypto import PLAINTEXT_LIMIT

KeyOption = Annotated[str, typer.Option("--key", help="The key: its id, or an alias (alias/...).")]
InFile = Annotated[Path, typer.Option("--in", help="Read from this file; - (default) is stdin.")]
OutFile = Annotated[
    Path, typer.Option("--out", help="Write to this file (mode 0600); - (default) is stdout.")
]
Context = Annotated[
    str | None,
    typer.Option("--context", help='EncryptionContext as a JSON object, e.g. {"purpose":"backup"}.'),
]
Text = Annotated[
    bool,
    typer.Option("--text", help="The plaintext is UTF-8 text sent as is (not base64-encoded bytes)."),
]
_STDIO = Path("-")


def register(app: typer.Typer) -> None:
    app.command("encrypt")(encrypt)
    app.command("decrypt")(decrypt)
    app.command("generate-data-key")(generate_data_key)


def _read(source: Path) -> bytes:
    if source == _STDIO:
        return sys.stdin.buffer.read()
    try:
        return source.read_bytes()
    except OSError as exc:
        fail("FileUnreadable", f"{source}: {exc.strerror}")


def _write(target: Path, data: bytes) -> None:
    if target == _STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        fail("FileUnwritable", f"{target}: {exc.strerror}")


def _context(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        fail("InvalidOption", "--context must be a JSON object of strings", '--context \'{"k":"v"}\'')
    return value


def encrypt(
    key: KeyOption,
    source: InFile = _STDIO,
    target: OutFile = _STDIO,
    context: Context = None,
    text: Text = False,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Encrypt a file or stdin (up to 4.5 KiB of binary data, 6 KiB of --text) and write the
    CiphertextBlob."""
    data = _read(source)
    if text:
        try:
            plaintext = data.decode("utf-8")
        except UnicodeDecodeError:
            fail("InvalidOption", "--text: the input is not UTF-8 text", "leave out --text for binary data")
    else:
        plaintext = base64.b64encode(data).decode("ascii")
    if len(plaintext.encode("utf-8")) > PLAINTEXT_LIMIT:
        fail(
            "PlaintextTooLarge",
            f"{len(data)} bytes to encrypt: Encrypt takes at most {PLAINTEXT_LIMIT} bytes of Plaintext "
            f"({PLAINTEXT_LIMIT * 3 // 4} bytes of binary data, sent base64-encoded)",
            "for more, encrypt locally under a data key from `openkms generate-data-key`",
        )
    kms = client(profile, endpoint, region, access_key_id)
    with requests():
        body = kms.call("Encrypt", KeyId=key, Plaintext=plaintext, EncryptionContext=_context(context))
    if as_json:
        _write(
            target, _document({name: body.get(name) for name in ("KeyId", "KeyVersionId", "CiphertextBlob")})
        )
    else:
        _write(target, str(body["CiphertextBlob"]).encode("ascii") + b"\n")


def decrypt(
    source: InFile = _STDIO,
    target: OutFile = _STDIO,
    context: Context = None,
    text: Text = False,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Decrypt a CiphertextBlob from a file or stdin and write the plaintext bytes."""
    blob = _read(source).decode("ascii", errors="replace").strip()
    if not blob:
        fail(
            "InvalidOption", "no ciphertext on the input", "give --in FILE, or pipe `openkms encrypt` into it"
        )
    kms = client(profile, endpoint, region, access_key_id)
    with requests():
        body = kms.call("Decrypt", CiphertextBlob=blob, EncryptionContext=_context(context))
    plaintext = str(body["Plaintext"])
    if as_json:
        _write(target, _document({name: body.get(name) for name in ("KeyId", "KeyVersionId", "Plaintext")}))
        return
    if text:
        _write(target, plaintext.encode("utf-8"))
        return
    try:
        _write(target, base64.b64decode(plaintext, validate=True))
    except binascii.Error:
        fail(
            "NotBase64",
            "the plaintext is not base64 (it was encrypted as text by another client)",
            "add --text",
        )


def generate_data_key(
    key: KeyOption,
    spec: Annotated[str | None, typer.Option("--spec", help="AES_256 (default) or AES_128.")] = None,
    number_of_bytes: Annotated[
        int | None, typer.Option("--bytes", min=1, max=1024, help="Key length in bytes, in place of --spec.")
    ] = None,
    context: Context = None,
    plaintext_out: Annotated[
        Path | None,
        typer.Option(
            "--plaintext-out", help="Write the data key's raw bytes here (mode 0600), not to stdout."
        ),
    ] = None,
    without_plaintext: Annotated[
        bool, typer.Option("--without-plaintext", help="Only the encrypted data key (no plaintext at all).")
    ] = False,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Make a data key: its CiphertextBlob, and its plaintext (base64) unless --without-plaintext."""
    if without_plaintext and plaintext_out is not None:
        fail("InvalidOption", "--plaintext-out and --without-plaintext exclude each other")
    kms = client(profile, endpoint, region, access_key_id)
    action = "GenerateDataKeyWithoutPlaintext" if without_plaintext else "GenerateDataKey"
    with requests():
        body = kms.call(
            action,
            KeyId=key,
            KeySpec=spec,
            NumberOfBytes=number_of_bytes,
            EncryptionContext=_context(context),
        )
    shown: dict[str, Any] = {name: body.get(name) for name in ("KeyId", "KeyVersionId", "CiphertextBlob")}
    if not without_plaintext:
        if plaintext_out is not None:
            _write(plaintext_out, base64.b64decode(str(body["Plaintext"])))
        else:
            shown["Plaintext"] = body["Plaintext"]
    if as_json:
        print_json(shown)
    else:
        print_fields(shown.items())


def _document(fields: dict[str, Any]) -> bytes:
    return (json.dumps(fields, indent=2) + "\n").encode("utf-8")

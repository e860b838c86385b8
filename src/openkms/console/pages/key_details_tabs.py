"""Console pages: the tabs of a key's details page. Key Versions (F6, F7): the versions, View Public
Key and its download, Generate CSR and Download CSR File, a new version. Key Material (F3.5, for keys
with External origin): the wrapping public key and import token, the import of wrapped material, its
deletion. Key Associations (F8.1): a detection run and what it found.

Each handler runs API actions through `Console.call` and answers a download, a redirect, or a `Shown`
(what the details page must show: a refusal in place, a dialog with an answer), which
`key_details.py` renders. Downloads of what the page already showed (the import token, the wrapping
public key) are checked before they are sent back, so they can only ever be a token or a public key.
"""

from __future__ import annotations

import base64
import binascii
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from openkms.api.wire_errors import WireError
from openkms.console.view import ActionFailed, Answer, Console

VERSIONS_PAGE_SIZE = 10
WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5")
WRAPPING_KEY_SPECS = ("RSA_2048",)
# The CSR dialog's subject fields (F7.1): (API parameter, label, required).
CSR_SUBJECT = (
    ("CommonName", "field.csr_cn", True),
    ("Organization", "field.csr_o", False),
    ("OrganizationalUnit", "field.csr_ou", False),
    ("Province", "field.csr_s", False),
    ("Locality", "field.csr_l", False),
    ("Country", "field.csr_c", False),
    ("Email", "field.csr_e", False),
)
CSR_FIELDS = tuple(name for name, _, _ in CSR_SUBJECT)
_MATERIAL_LIMIT = 1 << 20  # far above the largest envelope (an RSA_4096 private key)
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,4096}")
_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(slots=True)
class Shown:
    """What a render of the details page adds: a refusal in the section it belongs to (with the
    values typed), a dialog with what an action answered, the tab and the status to answer with."""

    section: str = ""
    wire: WireError | None = None
    form: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    tab: str | None = None
    status: int = 200


def key_path(key_id: str, suffix: str = "") -> str:
    return f"/keys/{quote(key_id, safe='')}{suffix}"


def text(form: FormData, name: str, limit: int = 2048) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def refused(
    section: str, failed: ActionFailed, tab: str, form: dict[str, str] | None = None, **extra: Any
) -> Shown:
    return Shown(section, failed.wire, form or {}, extra, tab, failed.wire.status)


async def attempt(
    console: Console, action: str, params: Mapping[str, str | None]
) -> tuple[Answer, WireError | None]:
    """A read the page can live without (a user may see a key but not its tags or policy): the
    answer, or the refusal to show in that section."""
    try:
        return await console.call(action, params), None
    except ActionFailed as failed:
        return {}, failed.wire


def download(body: str, filename: str, media_type: str) -> Response:
    safe = _FILE_NAME.sub("_", filename)
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{safe}"'}
    )


def _key_id(console: Console) -> str:
    return str(console.request.path_params["key_id"])


def _version_id(console: Console) -> str:
    return str(console.request.path_params["version_id"])


# --- what each tab shows ---------------------------------------------------------------------------


async def tab_values(console: Console, key: Mapping[str, Any], tab: str) -> dict[str, Any]:
    key_id = str(key["KeyId"])
    if tab == "associations":
        found, wire = await attempt(console, "DescribeKeyAssociations", {"KeyId": key_id})
        return {"associations": found, "associations_wire": wire}
    if tab == "material":
        return {"wrapping_algorithms": WRAPPING_ALGORITHMS, "wrapping_key_specs": WRAPPING_KEY_SPECS}
    return await _versions(console, key)


async def _versions(console: Console, key: Mapping[str, Any]) -> dict[str, Any]:
    key_id = str(key["KeyId"])
    query = console.request.query_params
    page_value = query.get("page", "")
    page_number = (
        int(page_value)
        if page_value.isascii() and page_value.isdigit() and 0 < int(page_value) < 1_000_000
        else 1
    )
    params = {"KeyId": key_id, "PageNumber": str(page_number), "PageSize": str(VERSIONS_PAGE_SIZE)}
    listed, wire = await attempt(console, "ListKeyVersions", params)
    spec = str(key["KeySpec"])
    values: dict[str, Any] = {
        "versions": listed.get("KeyVersions", {}).get("KeyVersion", []),
        "versions_total": listed.get("TotalCount", 0),
        "versions_page": page_number,
        "versions_page_size": VERSIONS_PAGE_SIZE,
        "versions_wire": wire,
        "key_pair": spec.startswith(("RSA_", "EC_")),
        "csr_algorithms": _csr_algorithms(spec),
        "csr_fields": CSR_SUBJECT,
        "can_sign": key.get("KeyUsage") == "SIGN/VERIFY",
    }
    shown_version = query.get("public_key")
    if shown_version:
        found, found_wire = await attempt(
            console, "GetPublicKey", {"KeyId": key_id, "KeyVersionId": shown_version[:128]}
        )
        values["public_key"] = {
            "version": shown_version[:128],
            "pem": found.get("PublicKey"),
            "wire": found_wire,
        }
    return values


def _csr_algorithms(spec: str) -> tuple[str, ...]:
    if spec.startswith("RSA_"):
        return ("RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256")
    if spec.startswith("EC_"):
        return ("ECDSA_SHA_256",)
    return ()


# --- Key Versions ----------------------------------------------------------------------------------


async def create_version(console: Console) -> Response | Shown:
    try:
        await console.call("CreateKeyVersion", {"KeyId": _key_id(console)})
    except ActionFailed as failed:
        return refused("versions", failed, "versions")
    return console.redirect(key_path(_key_id(console)), notice="notice.kd_version_created", tab="versions")


async def public_key_file(console: Console) -> Response:
    """Download a version's public key as `<keyid>-<version>.pem` (a refusal: the error page)."""
    key_id, version_id = _key_id(console), _version_id(console)
    found = await console.call("GetPublicKey", {"KeyId": key_id, "KeyVersionId": version_id})
    name = f"{found['KeyId']}-{found['KeyVersionId']}.pem"
    return download(str(found["PublicKey"]), name, "application/x-pem-file")


async def _subject(console: Console) -> dict[str, str]:
    form = await console.request.form()
    return {name: text(form, name, 256).strip() for name in (*CSR_FIELDS, "Algorithm")}


async def _csr(console: Console, typed: Mapping[str, str]) -> Answer:
    params = {name: value or None for name, value in typed.items()}
    return await console.call(
        "GenerateCertificateSigningRequest",
        {"KeyId": _key_id(console), "KeyVersionId": _version_id(console), **params},
    )


async def csr(console: Console) -> Shown:
    """Generate CSR: the CSR shown in the dialog with Download CSR File, or the refusal in it."""
    typed = await _subject(console)
    try:
        answer = await _csr(console, typed)
    except ActionFailed as failed:
        return refused("csr", failed, "versions", typed, csr_version=_version_id(console))
    return Shown(
        form=typed, extra={"csr": answer["Csr"], "csr_version": _version_id(console)}, tab="versions"
    )


async def csr_file(console: Console) -> Response | Shown:
    """Download CSR File as `<keyid>.csr`: the request made again from the same subject (a CSR is
    only a signed request; each one the key signs is as good as the one shown)."""
    typed = await _subject(console)
    try:
        answer = await _csr(console, typed)
    except ActionFailed as failed:
        return refused("csr", failed, "versions", typed, csr_version=_version_id(console))
    return download(str(answer["Csr"]), f"{answer['KeyId']}.csr", "application/pkcs10")


# --- Key Material ----------------------------------------------------------------------------------


def pem_of(der_base64: str) -> str:
    body = "\n".join(textwrap.wrap(der_base64, 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


async def import_parameters(console: Console) -> Response | Shown:
    """GetParametersForImport: the token, the wrapping public key (PEM) and their expiry, shown with
    their downloads and the import form filled with the token."""
    form = await console.request.form()
    typed = {"algorithm": text(form, "algorithm", 64), "spec": text(form, "spec", 64)}
    params = {
        "KeyId": _key_id(console),
        "WrappingAlgorithm": typed["algorithm"],
        "WrappingKeySpec": typed["spec"],
    }
    try:
        found = await console.call("GetParametersForImport", params)
    except ActionFailed as failed:
        return refused("parameters", failed, "material", typed)
    shown = {
        "token": found["ImportToken"],
        "public_key": pem_of(str(found["PublicKey"])),
        "expires": found["TokenExpireTime"],
    }
    return Shown(form=typed, extra={"parameters": shown}, tab="material")


async def import_token_file(console: Console) -> Response:
    form = await console.request.form()
    token = text(form, "token", 8192).strip()
    if not _TOKEN.fullmatch(token):
        return Response("Not an import token.", status_code=400, media_type="text/plain")
    return download(token + "\n", f"{_key_id(console)}-import-token.txt", "text/plain")


async def wrapping_key_file(console: Console) -> Response:
    form = await console.request.form()
    try:
        key = serialization.load_pem_public_key(text(form, "public_key", 8192).encode())
    except (ValueError, UnsupportedAlgorithm):
        return Response("Not a public key.", status_code=400, media_type="text/plain")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return download(pem.decode(), f"{_key_id(console)}-wrapping-public-key.pem", "application/x-pem-file")


def material_base64(raw: bytes) -> str:
    """An uploaded file of wrapped material as the API takes it (base64): the file's bytes, unless
    the file already is base64 text, as Alibaba's guide writes it."""
    stripped = b"".join(raw.split())
    try:
        if stripped:
            base64.b64decode(stripped, validate=True)
            return stripped.decode("ascii")
    except (binascii.Error, ValueError):
        pass
    return base64.b64encode(raw).decode("ascii")


async def _material(form: FormData) -> str:
    """EncryptedKeyMaterial: the uploaded file, else the base64 text typed (without whitespace)."""
    upload = form.get("material_file")
    if isinstance(upload, UploadFile) and upload.filename:
        return material_base64(await upload.read(_MATERIAL_LIMIT))
    return "".join(text(form, "material", _MATERIAL_LIMIT).split())


def material_expiry(typed: str) -> str | None:
    """A date (YYYY-MM-DD) as KeyMaterialExpireUnix (its midnight, UTC); anything else goes to the
    API as typed, which refuses it."""
    if not typed:
        return None
    try:
        return str(int(datetime.strptime(typed, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()))
    except ValueError:
        return typed


async def import_material(console: Console) -> Response | Shown:
    form = await console.request.form()
    typed = {"token": text(form, "token", 8192).strip(), "expires": text(form, "expires", 64).strip()}
    params = {
        "KeyId": _key_id(console),
        "ImportToken": typed["token"],
        "EncryptedKeyMaterial": await _material(form),
        "KeyMaterialExpireUnix": material_expiry(typed["expires"]),
    }
    try:
        await console.call("ImportKeyMaterial", params)
    except ActionFailed as failed:
        return refused("import", failed, "material", typed)
    return console.redirect(key_path(_key_id(console)), notice="notice.kd_material_imported", tab="material")


async def delete_material(console: Console) -> Response | Shown:
    try:
        await console.call("DeleteKeyMaterial", {"KeyId": _key_id(console)})
    except ActionFailed as failed:
        return refused("material", failed, "material")
    return console.redirect(key_path(_key_id(console)), notice="notice.kd_material_deleted", tab="material")


# --- Key Associations ------------------------------------------------------------------------------


async def detect(console: Console) -> Response | Shown:
    try:
        await console.call("StartKeyAssociationDetection", {"KeyId": _key_id(console)})
    except ActionFailed as failed:
        return refused("associations", failed, "associations")
    return console.redirect(
        key_path(_key_id(console)), notice="notice.kd_detection_started", tab="associations"
    )


async def associations(console: Console) -> Response:
    """The associations section alone, for the page's refresh while a detection runs (htmx)."""
    key_id = _key_id(console)
    found, wire = await attempt(console, "DescribeKeyAssociations", {"KeyId": key_id})
    return console.render(
        "key_details/_associations.html",
        key_id=key_id,
        associations=found,
        associations_wire=wire,
        shown=Shown(),
    )

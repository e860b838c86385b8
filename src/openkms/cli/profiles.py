"""Connection profiles of the everyday commands: where a server is (endpoint, region) and which access
key signs (its id, and its secret from `OPENKMS_ACCESS_KEY_SECRET` or the profile file).

The file is JSON at `$OPENKMS_PROFILES`, else `$XDG_CONFIG_HOME/openkms/profiles.json`, else
`~/.config/openkms/profiles.json`, written 0600 in a 0700 folder. A file that its group or others may
read or write is refused (it may hold a secret). A secret is never taken from a command-line flag and
never printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

PROFILES_ENV = "OPENKMS_PROFILES"
PROFILE_ENV = "OPENKMS_PROFILE"
SECRET_ENV = "OPENKMS_ACCESS_KEY_SECRET"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_PROFILE = "default"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class ProfileError(Exception):
    """A profile cannot be used; `code` and `hint` go on the error line."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    endpoint: str  # a URL: http(s)://host:port
    region: str
    access_key_id: str
    access_key_secret: str | None = None  # stored only when the user asked for it
    ca_file: str | None = None  # a private CA the server's certificate chains to

    def public(self) -> dict[str, object]:
        """Everything but the secret, and where the secret comes from."""
        document: dict[str, object] = {
            "Name": self.name,
            "Endpoint": self.endpoint,
            "Region": self.region,
            "AccessKeyId": self.access_key_id,
            "Secret": "in the profile file" if self.access_key_secret else f"${SECRET_ENV}",
        }
        if self.ca_file:
            document["CaFile"] = self.ca_file
        return document


@dataclass(frozen=True, slots=True)
class Connection:
    """What a client needs to sign and send: the profile's fields with the secret resolved."""

    endpoint: str
    region: str
    access_key_id: str
    access_key_secret: str
    ca_file: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.endpoint).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc


def profiles_path() -> Path:
    if os.environ.get(PROFILES_ENV):
        return Path(os.environ[PROFILES_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "openkms" / "profiles.json"


def normalise_endpoint(endpoint: str) -> str:
    """`host:port` or a URL; a bare loopback address is plain HTTP (the server's default), any other
    bare host HTTPS. Refuses what is not an http(s) URL with a host."""
    text = endpoint.strip().rstrip("/")
    if "://" not in text:
        host = text.rsplit(":", 1)[0] if text.count(":") == 1 or text.startswith("[") else text
        text = f"{'http' if host in _LOOPBACK else 'https'}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ProfileError(
            "InvalidEndpoint", f"{endpoint!r} is not an endpoint", "give http(s)://host:port or host:port"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _open_private(path: Path, code: str) -> bytes:
    """The bytes of a file only its owner may read or write; refused otherwise (it holds a secret)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ProfileError(code.replace("TooOpen", "Unreadable"), f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise ProfileError(
                code,
                f"{path} may be read or written by others (mode {mode:04o}) and may hold a secret",
                f"chmod 600 {path}",
            )
        return handle.read()


def read_credentials(path: Path) -> tuple[str, str]:
    """(AccessKeyId, AccessKeySecret) from a private JSON file such as root-credentials.json."""
    try:
        document = json.loads(_open_private(path, "CredentialsFileTooOpen"))
        return str(document["AccessKeyId"]), str(document["AccessKeySecret"])
    except (ValueError, KeyError, TypeError):
        raise ProfileError(
            "CredentialsFileDamaged", f"{path} has no AccessKeyId and AccessKeySecret", None
        ) from None


class ProfileFile:
    """The profiles on disk: read with the permission check, written atomically with mode 0600."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or profiles_path()

    def _read(self) -> dict[str, object]:
        if not self.path.exists():
            return {"default": None, "profiles": {}}
        raw = _open_private(self.path, "ProfileFileTooOpen")
        try:
            document = json.loads(raw)
        except ValueError:
            raise ProfileError(
                "ProfileFileDamaged", f"{self.path} is not JSON", "fix or remove the file"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("profiles"), dict):
            raise ProfileError("ProfileFileDamaged", f"{self.path} has no profiles object", None)
        return document

    def profiles(self) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        raw_profiles = self._read()["profiles"]
        assert isinstance(raw_profiles, dict)
        for name, fields in raw_profiles.items():
            try:
                found[name] = Profile(name=name, **fields)
            except TypeError:
                raise ProfileError(
                    "ProfileFileDamaged", f"profile {name!r} in {self.path} is damaged"
                ) from None
        return found

    def default_name(self) -> str | None:
        name = self._read().get("default")
        return name if isinstance(name, str) else None

    def save(self, profile: Profile, *, make_default: bool) -> None:
        document = self._read()
        profiles = document["profiles"]
        assert isinstance(profiles, dict)
        fields = asdict(profile)
        del fields["name"]
        profiles[profile.name] = {name: value for name, value in fields.items() if value is not None}
        if make_default or not document.get("default"):
            document["default"] = profile.name
        self._write(document)

    def _write(self, document: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=".profiles.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
            os.replace(name, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def resolve(
    name: str | None,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    file: ProfileFile | None = None,
) -> Connection:
    """The connection of profile `name` (else `$OPENKMS_PROFILE`, else the file's default), with any
    of endpoint, region and access key id given as flags in its place. The secret comes from
    `$OPENKMS_ACCESS_KEY_SECRET`, else the profile file."""
    file = file or ProfileFile()
    wanted = name or os.environ.get(PROFILE_ENV)
    profile: Profile | None = None
    if wanted or not (endpoint and access_key_id):
        profiles = file.profiles()
        chosen = wanted or file.default_name()
        if chosen is None:
            raise ProfileError(
                "NoProfile",
                "no connection profile",
                "add one with `openkms profile add NAME --endpoint ... --access-key-id ...`",
            )
        profile = profiles.get(chosen)
        if profile is None:
            raise ProfileError(
                "ProfileNotFound",
                f"no profile {chosen!r} in {file.path}",
                "`openkms profile list` shows them",
            )
    if profile is None:
        profile = Profile(name="-", endpoint="", region="cn-hangzhou", access_key_id="")
    profile = replace(
        profile,
        endpoint=endpoint or profile.endpoint,
        region=region or profile.region,
        access_key_id=access_key_id or profile.access_key_id,
    )
    secret = os.environ.get(SECRET_ENV) or profile.access_key_secret
    if not secret:
        raise ProfileError(
            "NoSecret",
            f"no secret for access key {profile.access_key_id}",
            f"set {SECRET_ENV}, or store it with `openkms profile add {profile.name} ... --secret-stdin`",
        )
    return Connection(
        endpoint=normalise_endpoint(profile.endpoint),
        region=profile.region,
        access_key_id=profile.access_key_id,
        access_key_secret=secret,
        ca_file=profile.ca_file,
    )

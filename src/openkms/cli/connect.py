"""The options every client command shares (profile, endpoint, region, access key id, --json) and the
one place a client command turns them into a signed SDK client, or refuses with one line.

Client commands talk to a running server over the Alibaba API. Commands of the same group that also
work as the operator on a store (`key create`, `key associations`) do so only when given
`--data-dir`, `--config` or `--database-url` (`operator_mode`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from openkms.cli.client import ApiError, KmsClient
from openkms.cli.output import fail
from openkms.cli.profiles import ProfileError, resolve

ProfileName = Annotated[
    str | None,
    typer.Option("--profile", help="Connection profile (default: $OPENKMS_PROFILE, else the default one)."),
]
Endpoint = Annotated[
    str | None,
    typer.Option("--endpoint", help="Server endpoint in place of the profile's (host:port or URL)."),
]
Region = Annotated[str | None, typer.Option("--region", help="Region in place of the profile's.")]
AccessKeyId = Annotated[
    str | None,
    typer.Option(
        "--access-key-id",
        help="Access key id in place of the profile's (its secret from $OPENKMS_ACCESS_KEY_SECRET).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def client(
    profile: str | None, endpoint: str | None, region: str | None, access_key_id: str | None
) -> KmsClient:
    """The signed client of the chosen profile; exit 1 with one line if there is none."""
    try:
        return KmsClient(resolve(profile, endpoint=endpoint, region=region, access_key_id=access_key_id))
    except ProfileError as exc:
        fail(exc.code, exc.message, exc.hint)


@contextmanager
def requests() -> Iterator[None]:
    """A block of requests; the first ApiError ends the command with its error line."""
    try:
        yield
    except ApiError as exc:
        message = exc.message if exc.request_id is None else f"{exc.message} (RequestId {exc.request_id})"
        fail(exc.code, message, exc.hint)


def operator_mode(data_dir: Path | None, config: Path | None, database_url: str | None) -> bool:
    """Whether a command that has both sides runs as the operator on a store (not over the API)."""
    return data_dir is not None or config is not None or database_url is not None

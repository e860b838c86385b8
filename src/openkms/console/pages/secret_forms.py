"""What the Secrets pages make of their forms and queries: the API parameters a choice stands for
(ListSecrets filters, Tags, the stages of a new version, the version a reveal reads) and the rows a
secret's rotation settings show. Pure: no I/O, no decision the API makes (it validates every value
again); never sees a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from openkms.domain.names import TAG_LIMIT
from openkms.domain.secrets import SecretType

CURRENT, PREVIOUS = "ACSCurrent", "ACSPrevious"
MAX_TAGS = TAG_LIMIT
_TAG_TEXT_LIMIT = 256
# The rotation fields of DescribeSecret, in the order shown, with their words.
ROTATION_FIELDS = (
    ("AutomaticRotation", "field.rotation"),
    ("RotationInterval", "field.rotation_period"),
    ("LastRotationDate", "sec.last_rotation"),
    ("NextRotationDate", "sec.next_rotation"),
)


def secret_url(name: str) -> str:
    """The details page of a secret (its name, which may hold `/`, in the query)."""
    return f"/secrets/details?{urlencode({'name': name})}"


def page_number(value: str | None) -> int:
    """A page number from the query; anything but a plausible positive number is the first page."""
    if value and value.isascii() and value.isdigit() and 0 < int(value) < 1_000_000:
        return int(value)
    return 1


def list_filters(search: str, instance_id: str) -> str | None:
    """ListSecrets `Filters` for the list's search (a secret name) and instance; None for neither."""
    filters = [
        {"Key": key, "Values": [value]}
        for key, value in (("SecretName", search), ("DKMSInstanceId", instance_id))
        if value
    ]
    return json.dumps(filters) if filters else None


def tags_of(keys: Sequence[str], values: Sequence[str]) -> list[tuple[str, str]]:
    """The tag rows of a form, without the empty ones; one past the limit is kept so that the API
    refuses too many rather than the console dropping some silently."""
    pairs = zip(keys, values, strict=False)
    return [(key[:_TAG_TEXT_LIMIT], value[:_TAG_TEXT_LIMIT]) for key, value in pairs if key or value][
        : MAX_TAGS + 1
    ]


def tags_param(tags: Sequence[tuple[str, str]]) -> str | None:
    """CreateSecret's `Tags` (the JSON list of TagKey/TagValue), or None when there are none."""
    return json.dumps([{"TagKey": key, "TagValue": value} for key, value in tags]) if tags else None


def stages_of(text: str) -> list[str]:
    """The stages typed for a new version, one per line or comma-separated, each once."""
    found: list[str] = []
    for stage in text.replace(",", "\n").splitlines():
        if stage.strip() and stage.strip() not in found:
            found.append(stage.strip())
    return found


def value_request(choice: str) -> dict[str, str]:
    """GetSecretValue's version parameters for the reveal dialog's choice: `id:<VersionId>` or
    `stage:<VersionStage>`; anything else reads ACSCurrent, as GetSecretValue does by default."""
    kind, _, value = choice.partition(":")
    if kind == "id" and value:
        return {"VersionId": value}
    return {"VersionStage": value if kind == "stage" and value else CURRENT}


def rotation_rows(described: Mapping[str, object]) -> list[tuple[str, str]]:
    """(term id, value) of the rotation settings DescribeSecret answered; those it left out (a
    generic secret has no interval or dates) are not shown."""
    return [(term, str(described[name])) for name, term in ROTATION_FIELDS if described.get(name)]


def is_managed(secret_type: object) -> bool:
    """A secret whose value OpenKMS rotates itself (a managed type; not Generic)."""
    try:
        return SecretType(str(secret_type)).managed
    except ValueError:
        return False

"""Parsing an RPC request into decoded parameters, and typed access to them.

Owns: turning the raw query string and an ``application/x-www-form-urlencoded`` body into one decoded
``name -> value`` mapping (form rules: ``+`` is a space, ``%XX`` escapes, strict UTF-8), rejecting repeated
names, and the typed accessors (`Params`) that the handlers use to read that mapping.

This is the only module where a dict of raw, unvalidated strings may live; everything past `Params` gets
typed values. It never verifies signatures (that is `api.signature`), never logs parameter values (they
can hold plaintext) and never decides what a parameter means for an action.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import unquote

import orjson

from openkms.errors import InvalidArgument, MissingParameter

__all__ = ["Params", "RpcRequest", "is_form", "parse_form", "parse_request"]

_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_INT = re.compile(r"-?[0-9]{1,18}").fullmatch
_INDEX = re.compile(r"[1-9][0-9]{0,5}").fullmatch
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})").search


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """One HTTP request as the RPC layer sees it. ``params`` is the decoded union of query and form body."""

    method: str
    """``"GET"`` or ``"POST"``, upper case."""
    path: str
    """The decoded path, usually ``"/"``."""
    raw_query: str
    """The query string as received, as UTF-8 text; not percent-decoded."""
    headers: Mapping[str, str]
    """Header names lower-cased, values decoded as latin-1 and stripped of surrounding whitespace (as
    the ACS3/ACS4 canonical headers read them); repeated headers joined with ``","``."""
    params: Mapping[str, str]
    """Decoded union of the query parameters and, for form bodies, the body parameters."""
    body: bytes


def _decode(piece: str) -> str:
    """Form-decode one name or value: ``+`` is a space, ``%XX`` a byte, the bytes strict UTF-8."""
    if "+" in piece:
        piece = piece.replace("+", " ")
    if "%" not in piece:
        return piece
    try:
        if piece.isascii() and "=" not in piece and _BAD_ESCAPE(piece) is None:
            # Speed: binascii's quoted-printable decoder is a C loop over "=XX" escapes. With no literal "="
            # and only well-formed "%XX" escapes, a2b_qp(piece with % -> =) is byte-for-byte unquote_to_bytes
            # (tests/unit/test_params.py checks this against urllib on generated input).
            return binascii.a2b_qp(piece.replace("%", "=")).decode("utf-8")
        return unquote(piece, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument("The request contains a parameter that is not valid UTF-8.") from None


def _duplicate(name: str) -> InvalidArgument:
    return InvalidArgument(f"The parameter {name} is given more than once.", parameter=name)


def parse_form(text: str, into: dict[str, str] | None = None) -> dict[str, str]:
    """Decode ``a=1&b=x+y`` with form rules into ``into`` (or a new dict).

    Empty pieces are skipped, a piece without ``=`` is a name with an empty value, empty values are kept.
    A name seen twice (including one already in ``into``) raises `InvalidArgument`.
    """
    out: dict[str, str] = {} if into is None else into
    if not text:
        return out
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        # Fast path: most names and many values need no decoding at all.
        if "%" in name or "+" in name:
            name = _decode(name)
        if "%" in value or "+" in value:
            value = _decode(value)
        if name in out:
            raise _duplicate(name)
        out[name] = value
    return out


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"The request {what} is not valid UTF-8.") from None


def is_form(headers: Mapping[str, str]) -> bool:
    """True when the request declares an ``application/x-www-form-urlencoded`` body."""
    return headers.get("content-type", "").lower().startswith(_FORM_CONTENT_TYPE)


def parse_request(
    method: str,
    path: str,
    raw_query: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
) -> RpcRequest:
    """Build an `RpcRequest` from the pieces an ASGI server hands over.

    Raises `InvalidArgument` for invalid UTF-8 and for a parameter name given more than once (in the query,
    in the body, or in both).
    """
    hdrs: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        # Stripped as the signature's canonical form strips them, so a signed header means one thing:
        # otherwise "nonce" and " nonce" (or a padded x-acs-action) verify alike but are read apart.
        value = raw_value.decode("latin-1").strip()
        previous = hdrs.get(name)
        hdrs[name] = value if previous is None else previous + "," + value
    query = _utf8(raw_query, "query string")
    params = parse_form(query)
    if body and is_form(hdrs):
        parse_form(_utf8(body, "body"), params)
    return RpcRequest(
        method=method.upper(),
        path=path,
        raw_query=query,
        headers=hdrs,
        params=params,
        body=body,
    )


def _invalid(name: str, rule: str) -> InvalidArgument:
    return InvalidArgument(f"The parameter {name} {rule}.", parameter=name)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _reject_constant(_: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


# The strict parser, built once (json.loads with hooks builds a decoder per call).
_STRICT = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)


def _load_json(name: str, text: str) -> Any:
    # Fast path for what SDKs send: text that is exactly orjson's compact form of what it parses to
    # holds no repeated key (it came out of a dict) and no NaN/Infinity (orjson writes neither), so
    # the strict parser would return the same value. Anything else takes the strict parser.
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        try:
            if orjson.dumps(value) == text.encode():
                return value
        except TypeError:  # nested deeper than orjson writes (255 levels; it reads 1024): parse strictly
            pass
    try:
        return _STRICT.decode(text)
    except (ValueError, RecursionError):
        raise _invalid(name, "is not valid JSON") from None


class Params:
    """Typed, validating read access to a request's decoded parameters."""

    __slots__ = ("_dotted", "_raw")

    def __init__(self, raw: Mapping[str, str], *, dotted: bool = True) -> None:
        """`dotted=False`: the caller knows no name has the `Name.<rest>` form (the dispatcher's
        parameter check tells), so flattened maps need not be looked for."""
        self._raw = raw
        self._dotted = dotted

    @property
    def raw(self) -> Mapping[str, str]:
        """The decoded ``name -> value`` mapping, unvalidated."""
        return self._raw

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __repr__(self) -> str:  # names only: values can hold plaintext
        return f"Params({sorted(self._raw)!r})"

    def required_str(self, name: str) -> str:
        """The value of ``name``; absent or empty raises `MissingParameter`."""
        value = self._raw.get(name)
        if not value:
            raise MissingParameter(name)
        return value

    @overload
    def optional_str(self, name: str, default: str) -> str: ...
    @overload
    def optional_str(self, name: str, default: None = None) -> str | None: ...
    def optional_str(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (an empty value is returned as ``""``), or ``default`` when absent."""
        value = self._raw.get(name)
        return default if value is None else value

    @overload
    def optional_bool(self, name: str, default: bool) -> bool: ...
    @overload
    def optional_bool(self, name: str, default: None = None) -> bool | None: ...
    def optional_bool(self, name: str, default: bool | None = None) -> bool | None:
        """``true``/``false`` in any letter case; absent or empty gives ``default``."""
        value = self._raw.get(name)
        if not value:
            return default
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise _invalid(name, "must be true or false")

    @overload
    def optional_int(self, name: str, default: int, *, minimum: int, maximum: int) -> int: ...
    @overload
    def optional_int(self, name: str, default: None, *, minimum: int, maximum: int) -> int | None: ...
    def optional_int(self, name: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        """A decimal integer in ``[minimum, maximum]``; absent or empty gives ``default`` (unchecked)."""
        value = self._raw.get(name)
        if not value:
            return default
        if not _INT(value):
            raise _invalid(name, "must be an integer")
        number = int(value)
        if number < minimum or number > maximum:
            raise _invalid(name, f"must be between {minimum} and {maximum}")
        return number

    def json_object(self, name: str) -> dict[str, str] | None:
        """A JSON object whose values are all strings (``EncryptionContext``); ``None`` when absent.

        Duplicate keys are rejected: the object may be used as authenticated data, so it must mean one thing.
        The same map may come flattened, as Alibaba's Node.js SDK sends it (``EncryptionContext.k1=v1&
        EncryptionContext.k2=v2``, see `flattened_map`); a request with both forms is refused.
        """
        value = self._raw.get(name)
        flattened = self.flattened_map(name)
        if flattened is not None:
            if value is not None:
                raise InvalidArgument(
                    f"The parameter {name} is given both as JSON and as {name}.<key> parameters; send one.",
                    parameter=name,
                )
            return flattened
        if value is None:
            return None
        parsed = _load_json(name, value)
        if not isinstance(parsed, dict):
            raise _invalid(name, "must be a JSON object")
        for item in parsed.values():
            if not isinstance(item, str):
                raise _invalid(name, "must be a JSON object whose values are strings")
        return parsed

    def flattened_map(self, name: str) -> dict[str, str] | None:
        """``name.<key>=<value>`` parameters as ``{key: value}`` (the key is everything after the first
        dot, dots included); ``None`` when there are none. A request names each parameter once, so a
        key cannot repeat."""
        if not self._dotted:
            return None
        start = name + "."
        skip = len(start)
        found: dict[str, str] | None = None
        for full, value in self._raw.items():
            if full.startswith(start):
                if len(full) == skip:
                    raise _invalid(full, "names no key")
                if found is None:
                    found = {}
                found[full[skip:]] = value
        return found

    def json_list(self, name: str) -> list[Any] | None:
        """A JSON array (``Tags=[{"TagKey":..}]``); ``None`` when absent."""
        value = self._raw.get(name)
        if value is None:
            return None
        parsed = _load_json(name, value)
        if not isinstance(parsed, list):
            raise _invalid(name, "must be a JSON array")
        return parsed

    def _indexed(self, prefix: str) -> dict[int, list[tuple[str, str, str]]]:
        """Group ``prefix.N[.rest]`` parameters by N: ``{N: [(full_name, rest, value)]}``."""
        start = prefix + "."
        skip = len(start)
        groups: dict[int, list[tuple[str, str, str]]] = {}
        for name, value in self._raw.items():
            if not name.startswith(start):
                continue
            index, dot, rest = name[skip:].partition(".")
            if not _INDEX(index):
                raise _invalid(name, "has an invalid index")
            if dot and not rest:
                raise _invalid(name, "is not a valid parameter name")
            groups.setdefault(int(index), []).append((name, rest if dot else "", value))
        for expected, found in enumerate(sorted(groups), start=1):
            if found != expected:
                raise _invalid(f"{prefix}.{expected}", "is missing: indexes must run 1, 2, 3, ...")
        return groups

    def repeat_list(self, prefix: str) -> list[str]:
        """``Prefix.1``, ``Prefix.2``, ... in index order; indexes must run 1..n without gaps."""
        groups = self._indexed(prefix)
        out: list[str] = []
        for index in range(1, len(groups) + 1):
            entries = groups[index]
            for name, rest, _ in entries:
                if rest:
                    raise _invalid(name, "is not a valid parameter name")
            out.append(entries[0][2])
        return out

    def repeat_records(self, prefix: str, fields: Sequence[str]) -> list[dict[str, str]]:
        """``Prefix.N.Field`` parameters as one dict per N, in index order.

        Only names in ``fields`` are allowed; a record holds the fields that were given (callers check which
        ones they require). Indexes must run 1..n without gaps.
        """
        allowed = frozenset(fields)
        groups = self._indexed(prefix)
        out: list[dict[str, str]] = []
        for index in range(1, len(groups) + 1):
            record: dict[str, str] = {}
            for name, rest, value in groups[index]:
                if rest not in allowed:
                    raise _invalid(name, "is not a valid parameter name")
                record[rest] = value
            out.append(record)
        return out

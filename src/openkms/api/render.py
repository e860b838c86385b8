"""Response bodies: JSON (default) or XML (`Format=XML`), for results and for errors.

Field names and list shapes are Alibaba's (`Keys: {Key: [...]}`); values are already wire-encoded
by the action handlers. Never renders anything it was not given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

import orjson

JSON_CONTENT_TYPE = b"application/json;charset=utf-8"
XML_CONTENT_TYPE = b"text/xml;charset=utf-8"

Body = Mapping[str, object]


def render_json(body: Body) -> bytes:
    return orjson.dumps(body)


def render_xml(root: str, body: Body) -> bytes:
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{root}>"]
    _xml_fields(body, parts)
    parts.append(f"</{root}>")
    return "".join(parts).encode()


def _xml_fields(body: Body, parts: list[str]) -> None:
    for name, value in body.items():
        _xml_value(name, value, parts)


def _xml_value(name: str, value: object, parts: list[str]) -> None:
    if isinstance(value, Mapping):
        parts.append(f"<{name}>")
        _xml_fields(value, parts)
        parts.append(f"</{name}>")
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        # Alibaba's XML-derived lists: {"Keys": {"Key": [a, b]}} is <Keys><Key>a</Key><Key>b</Key></Keys>.
        for item in value:
            _xml_value(name, item, parts)
    elif isinstance(value, bool):
        parts.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    elif value is None:
        parts.append(f"<{name}/>")
    else:
        parts.append(f"<{name}>{escape(str(value))}</{name}>")

"""The console's vocabulary: every visible word of the console, by id, in English and Chinese.

Owns the merge of the per-area catalogs in this package (`common.py`, `keys.py`, `key_details.py`, ...):
each module defines `TERMS: dict[str, tuple[str, str]]` mapping an id to (English, 中文), and every
module of the package is merged here at import, in name order, so an area adds its words without
touching this file. The merge refuses a duplicate id or an empty text (an import-time error), and
`translate` refuses an unknown id or language: a missing word is found by the tests, never shown to a
user as an id. Holds words only; never renders, never reads a request.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

LANGUAGES: Final = ("zh", "en")

# Position of each language in a catalog row (English, 中文).
_COLUMN: Final = {"en": 0, "zh": 1}


class TermCatalogError(Exception):
    """A catalog module is malformed: a duplicate id, an empty text or a missing TERMS table."""


def merge(catalogs: Iterable[tuple[str, Mapping[str, tuple[str, str]]]]) -> dict[str, tuple[str, str]]:
    """One table from (module name, TERMS) pairs; a duplicate id or an empty text is refused."""
    merged: dict[str, tuple[str, str]] = {}
    origin: dict[str, str] = {}
    for module_name, terms in catalogs:
        for term_id, texts in terms.items():
            if term_id in merged:
                raise TermCatalogError(
                    f"term {term_id!r} is defined twice: in {origin[term_id]} and in {module_name}"
                )
            if len(texts) != 2 or not all(isinstance(text, str) and text.strip() for text in texts):
                raise TermCatalogError(
                    f"term {term_id!r} in {module_name} needs a non-empty English and 中文"
                )
            merged[term_id] = texts
            origin[term_id] = module_name
    return merged


def _package_catalogs() -> Iterable[tuple[str, Mapping[str, tuple[str, str]]]]:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda found: found.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        terms = getattr(module, "TERMS", None)
        if not isinstance(terms, dict):
            raise TermCatalogError(f"{module.__name__} defines no TERMS dict")
        yield module.__name__, terms


TERMS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(merge(_package_catalogs()))


def translate(term_id: str, lang: str) -> str:
    """The text of `term_id` in `lang` ("en" or "zh"); an unknown id raises KeyError."""
    column = _COLUMN.get(lang)
    if column is None:
        raise ValueError(f"unknown console language {lang!r}; expected one of {LANGUAGES}")
    try:
        texts = TERMS[term_id]
    except KeyError:
        raise KeyError(f"no console term {term_id!r}") from None
    return texts[column]

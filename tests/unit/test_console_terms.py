"""The console's vocabulary holds the guide's words exactly (docs/console-terms.md), in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openkms.console import terms
from openkms.console.terms import LANGUAGES, TERMS, TermCatalogError, merge, translate

SPEC = Path(__file__).resolve().parents[2] / "docs" / "console-terms.md"
_STATE_VALUE = re.compile(r"^[A-Z][A-Za-z]+$")  # the states table is keyed by the API value


def spec_rows() -> list[tuple[str, str, str]]:
    """(id, English, 中文) of every table row of docs/console-terms.md; a state as `state.<API value>`."""
    rows = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or re.match(r"^\|\s*(-+|id|API value)\s*\|", line):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a row of {SPEC.name} has {len(cells)} cells: {line}"
        term_id, english, chinese = cells
        rows.append((f"state.{term_id}" if _STATE_VALUE.match(term_id) else term_id, english, chinese))
    return rows


def test_the_spec_is_parsed_whole() -> None:
    rows = spec_rows()
    table_lines = [line for line in SPEC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    assert len(rows) == len(table_lines) - 2 * 5  # five tables, each with a header and a rule
    assert ("state.PendingDeletion", "Pending Deletion", "待删除") in rows
    assert ("btn.create_key", "Create Key", "创建密钥") in rows
    assert len({term_id for term_id, _, _ in rows}) == len(rows), "an id is listed twice in the spec"


@pytest.mark.parametrize(("term_id", "english", "chinese"), spec_rows(), ids=lambda value: str(value))
def test_every_word_of_the_guide_is_in_the_catalog(term_id: str, english: str, chinese: str) -> None:
    assert TERMS.get(term_id) == (english, chinese)
    assert translate(term_id, "en") == english
    assert translate(term_id, "zh") == chinese


def test_no_translation_is_empty() -> None:
    empty = [term_id for term_id, texts in TERMS.items() if any(not text.strip() for text in texts)]
    assert empty == []


def test_the_chinese_column_is_chinese() -> None:
    # A copy-paste slip (the English text in both columns) shows as a Chinese text with no CJK in it.
    # Ids whose text is the same in both languages by nature (product names, acronyms) are listed.
    same_by_nature = {"nav.ram", "ram.access_keys"}  # Alibaba's console writes AccessKey in both
    slips = [
        term_id
        for term_id, (english, chinese) in TERMS.items()
        if term_id not in same_by_nature and not re.search(r"[\u4e00-\u9fff]", chinese)
    ]
    assert slips == []


def test_the_common_words_the_console_needs_are_there() -> None:
    expected = {
        "signin.title": ("Sign In", "登录"),
        "signin.name": ("Sign-in Name", "登录名称"),
        "signin.password": ("Password", "密码"),
        "signin.submit": ("Sign In", "登录"),
        "top.signout": ("Sign Out", "退出登录"),
        "nav.ram": ("RAM", "访问控制"),
        "nav.users": ("Users", "用户"),
        "nav.roles": ("Roles", "角色"),
        "nav.policies": ("Policies", "权限策略"),
        "nav.audit": ("Audit Log", "审计日志"),
    }
    for term_id, texts in expected.items():
        assert TERMS[term_id] == texts
    for term_id in (
        "signin.failed",
        "signin.busy",
        "top.language",
        "btn.save",
        "btn.close",
        "btn.search",
        "btn.submit",
        "btn.copy",
        "btn.copied",
        "paging.prev",
        "paging.next",
        "error.title",
        "error.access_denied",
        "col.key_id",
        "col.alias",
        "col.key_spec",
        "col.key_usage",
        "col.state",
        "col.protection_level",
        "col.created",
        "password.change",
    ):
        assert term_id in TERMS


def test_an_unknown_id_or_language_is_refused() -> None:
    with pytest.raises(KeyError, match=r"no\.such\.term"):
        translate("no.such.term", "en")
    with pytest.raises(ValueError, match="fr"):
        translate("btn.ok", "fr")
    assert LANGUAGES == ("zh", "en")


def test_the_merge_refuses_a_duplicate_id() -> None:
    with pytest.raises(TermCatalogError, match=r"'btn\.ok' is defined twice: in a and in b"):
        merge([("a", {"btn.ok": ("OK", "确定")}), ("b", {"btn.ok": ("Fine", "好")})])


@pytest.mark.parametrize("texts", [("", "确定"), ("OK", " "), ("OK",)])
def test_the_merge_refuses_an_empty_or_missing_text(texts: tuple[str, ...]) -> None:
    with pytest.raises(TermCatalogError, match="non-empty"):
        merge([("a", {"btn.ok": texts})])  # type: ignore[dict-item]


def test_every_area_module_is_merged() -> None:
    # Each module of the package contributes all of its ids (no area is silently left out).
    import importlib
    import pkgutil

    modules = [info.name for info in pkgutil.iter_modules(terms.__path__)]
    assert "common" in modules
    total = 0
    for name in modules:
        area = importlib.import_module(f"openkms.console.terms.{name}").TERMS
        assert all(TERMS[term_id] == texts for term_id, texts in area.items())
        total += len(area)
    assert total == len(TERMS)

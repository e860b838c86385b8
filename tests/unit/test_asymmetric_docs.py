"""docs/asymmetric.md shows the spec table exactly as domain/specs.py defines it."""

from __future__ import annotations

import re
from pathlib import Path

from openkms.domain.specs import SPEC_RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "asymmetric.md"


def test_spec_table_in_the_docs_matches_the_domain_table() -> None:
    block = re.search(r"<!-- spec-table -->\n(.*?)<!-- /spec-table -->", DOC.read_text(), re.S)
    assert block is not None
    rows = [line for line in block.group(1).splitlines() if line.startswith("| ") and "KeySpec" not in line]
    expected = []
    for rule in SPEC_RULES.values():
        if rule.symmetric:
            continue
        algorithms = "; ".join(
            f"{usage}: {', '.join(rule.algorithms(usage))}" for usage in sorted(rule.usages)
        )
        expected.append(f"| {rule.spec} | {', '.join(rule.usages)} | {algorithms} |")
    assert rows == expected

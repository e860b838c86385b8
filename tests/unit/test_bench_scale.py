"""The scale bench's own arithmetic: percentiles, the last page's number, and filler key ids."""

from __future__ import annotations

import pytest
from bench.scale import filler_key_id, last_page, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unordered
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0


@pytest.mark.parametrize(("total", "page"), [(0, 1), (1, 1), (100, 1), (101, 2), (1_000_000, 10_000)])
def test_last_page_holds_the_last_key(total: int, page: int) -> None:
    assert last_page(total, 100) == page


def test_filler_ids_look_like_the_template_and_never_repeat() -> None:
    instance_key = "key-hzz" + "a" * 21
    ids = {filler_key_id(instance_key, i) for i in range(1, 5001)}
    assert len(ids) == 5000
    assert all(i.startswith("key-hzzbench") and len(i) == len(instance_key) for i in ids)
    default = {filler_key_id("6f0e5d2c-1b7a-4c3d-9e8f-0a1b2c3d4e5f", i) for i in range(1, 5001)}
    assert len(default) == 5000 and all(len(i) == 36 for i in default)

"""Console pages: Resource > Keys (the Customer Master Keys and Default Keys tabs)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.console.auth import page
from openkms.console.view import Console

PAGE_SIZE = 20


async def key_list(console: Console) -> Response:
    page_number = _page(console.request.query_params.get("page"))
    listed = await console.call("ListKeys", {"PageNumber": str(page_number), "PageSize": str(PAGE_SIZE)})
    rows = []
    for entry in listed["Keys"]["Key"]:
        described = await console.call("DescribeKey", {"KeyId": entry["KeyId"]})
        rows.append(described["KeyMetadata"])
    return console.render(
        "keys/list.html",
        section="keys",
        keys=rows,
        page_number=page_number,
        page_size=PAGE_SIZE,
        total=listed["TotalCount"],
    )


def _page(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 1_000_000 else 1


ROUTES: list[BaseRoute] = [Route("/keys", page(key_list), methods=["GET"])]

"""The Instances page shows each instance's kind in words and, for hardware and external instances,
its backend's last health check as GetKmsInstance answers it (F1.3, F1.4); software instances have
none. Rendered from the console's own templates with answers made by GetKmsInstance's own shaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from openkms.api.actions.account import _instance
from openkms.console.pages.instances import _Row
from openkms.console.state import PREFIX, templates
from openkms.console.terms import translate
from openkms.domain.instance import Instance, InstanceHealth
from openkms.types import AccountId, InstanceId, InstanceKind, RegionId

CHECKED = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
# What GetKmsInstance's shaping reads of the services: the quotas it states.
_SERVICES = SimpleNamespace(
    instances=SimpleNamespace(spec=2000),
    keys=SimpleNamespace(quota=100_000),
    secrets=SimpleNamespace(quota=1000),
)


def _made(instance_id: str, kind: InstanceKind, health: InstanceHealth | None) -> Instance:
    return Instance(
        InstanceId(instance_id),
        AccountId("1234567890123456"),
        RegionId("cn-hangzhou"),
        kind,
        instance_id,
        CHECKED,
        0,
        health=health,
    )


def _page(lang: str, *instances: Instance) -> str:
    request = Request(
        {"type": "http", "method": "GET", "path": f"{PREFIX}/instances", "query_string": b"", "headers": []}
    )
    console = SimpleNamespace(
        request=request,
        csrf_token="token",
        here=f"{PREFIX}/instances",
        region="cn-hangzhou",
        sign_in_name="root",
        state=SimpleNamespace(settings=SimpleNamespace(regions=["cn-hangzhou"])),
    )
    rows = []
    for instance in instances:
        answer = _instance(instance, _SERVICES, 0, 10)["KmsInstance"]
        assert isinstance(answer, dict)
        rows.append(_Row(answer, None, None))
    return (
        templates()
        .get_template("instances/list.html")
        .render(
            console=console,
            t=lambda term: translate(term, lang),
            lang=lang,
            prefix=PREFIX,
            section="instances",
            rows=rows,
            shared_with_me=[],
            wire=None,
        )
    )


def _cells(html: str, instance_id: str) -> list[str]:
    row = re.search(rf"<tr>\s*<td><code>{instance_id}</code>.*?</tr>", html, re.S)
    assert row is not None, f"no row for {instance_id}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_kind_and_health_of_each_instance(lang: str) -> None:
    html = _page(
        lang,
        _made("kst-soft", InstanceKind.SOFTWARE, None),
        _made("kst-hsm", InstanceKind.HARDWARE, InstanceHealth(True, "token L reachable", CHECKED)),
        _made(
            "kst-xks", InstanceKind.EXTERNAL, InstanceHealth(False, "proxy refused the connection", CHECKED)
        ),
    )

    def t(term: str) -> str:
        return translate(term, lang)

    software = _cells(html, "kst-soft")
    assert software[1:3] == [t("inst.kind.openkms_software"), "-"]

    hardware = _cells(html, "kst-hsm")
    assert hardware[1] == t("inst.kind.openkms_hardware")
    assert hardware[2].startswith(t("inst.health.Healthy") + " token L reachable")
    assert hardware[2].endswith(f"({t('inst.health.checked')} 2026-12-04T18:30:00Z )")

    external = _cells(html, "kst-xks")
    assert external[1] == t("inst.kind.openkms_external")
    assert external[2].startswith(t("inst.health.Unavailable") + " proxy refused the connection")
    assert t("inst.health.checked") in external[2]


def test_a_check_without_detail_shows_only_when() -> None:
    html = _page("en", _made("kst-hsm", InstanceKind.HARDWARE, InstanceHealth(True, "", CHECKED)))
    health = _cells(html, "kst-hsm")[2]
    assert health == "Available (checked 2026-12-04T18:30:00Z )"

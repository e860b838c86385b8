"""Key association detection (F8), OpenKMS extension actions (Alibaba has no public action for it):
StartKeyAssociationDetection and DescribeKeyAssociations."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

_KEY_ID = frozenset({"KeyId"})


def start_detection(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    associations = services.associations
    started = associations.start(ctx, params.required_str("KeyId"))
    run = started.value
    # The run finishes after one flush interval, so every worker's recent calls are counted.
    timer = threading.Timer(
        associations.settle_seconds, associations.complete, (run.key_id, run.detection_id)
    )
    timer.daemon = True
    timer.start()
    return started.map(lambda _: {"KeyId": run.key_id, "DetectionId": run.detection_id, "Status": run.status})


def describe_associations(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    described = services.associations.describe(ctx, params.required_str("KeyId"))
    row, found = described.value
    if row is None:
        key_id = None if described.resource is None else described.resource.key_id
        return described.map(
            lambda _: {"KeyId": key_id, "Status": "NotStarted", "Associations": {"Association": []}}
        )
    answer: dict[str, object] = {
        "KeyId": row.key_id,
        "DetectionId": row.detection_id,
        "Status": row.status,
        "StartTime": iso_utc(row.started_at),
        "Associations": {
            "Association": [
                {
                    "Service": item.service,
                    "Principal": item.principal,
                    "LastCallTime": iso_utc(item.last_call),
                    "CallCount": item.calls,
                }
                for item in found
            ]
        },
    }
    if row.finished_at is not None:
        answer["FinishTime"] = iso_utc(row.finished_at)
    return described.map(lambda _: answer)


ACTIONS = (
    Action("StartKeyAssociationDetection", start_detection, _KEY_ID),
    Action("DescribeKeyAssociations", describe_associations, _KEY_ID),
)

"""Account, region and instance actions: DescribeRegions, DescribeAccountKmsStatus, OpenKmsService,
ListKmsInstances, GetKmsInstance."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, page_params
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.instance import Instance
from openkms.errors import UnsupportedOperation
from openkms.resource import Resource
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def describe_regions(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    regions = services.instances.regions(ctx)
    return {"Regions": {"Region": [{"RegionId": region} for region in regions]}}


def describe_account_kms_status(
    params: Params, ctx: RequestContext, services: Services
) -> Mapping[str, object]:
    return {"AccountStatus": services.instances.account_status(ctx)}


def open_kms_service(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.instances.open_service(ctx)
    return {}


def list_kms_instances(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    if params.optional_str("Filters"):
        raise UnsupportedOperation("ListKmsInstances Filters are not supported yet.")
    page_number, page_size = page_params(params)
    rows, total = services.instances.list_instances(ctx, page_number, page_size)
    return {
        "KmsInstances": {
            "KmsInstance": [{"KmsInstanceId": row.instance_id, "KmsInstanceArn": row.arn} for row in rows]
        },
        "TotalCount": total,
        "PageNumber": page_number,
        "PageSize": page_size,
    }


def get_kms_instance(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    row = services.instances.get_instance(ctx, params.required_str("KmsInstanceId"))
    secret_num = services.secrets.count(row.account_id, row.region_id, row.instance_id)
    answer = _instance(row, secret_num)
    # The deployment's CA, which issues the TLS certificate clients verify (service/instance_ca.py).
    answer["KmsInstance"]["CaCertificateChainPem"] = services.instance_ca.chain_pem()
    return Outcome(answer, Resource(row.arn))


def _instance(row: Instance, secret_num: int) -> dict[str, dict[str, object]]:
    return {
        "KmsInstance": {
            "InstanceId": row.instance_id,
            "InstanceName": row.name,
            "Status": _status(row),
            "ProductType": f"openkms_{row.kind.value}",
            "KeyNum": row.key_count,
            "SecretNum": secret_num,
            "VpcNum": 0,
            "CreateTime": iso_utc(row.created_at),
            "StartDate": iso_utc(row.created_at),
            "BindVpcs": {"BindVpc": []},
            # OpenKMS extensions: the kind of key store and its backend's last health check.
            "OpenKMSKeyStoreKind": row.kind.value,
            **(
                {}
                if row.health is None
                else {
                    "OpenKMSHealth": "Healthy" if row.health.ok else "Unavailable",
                    "OpenKMSHealthDetail": row.health.detail,
                    "OpenKMSHealthCheckedAt": iso_utc(row.health.checked_at),
                }
            ),
        }
    }


def _status(row: Instance) -> str:
    """Software instances are always Connected; others as their backend's last health check said."""
    if row.health is None or row.health.ok:
        return "Connected"
    return "Disconnected"


ACTIONS = (
    Action("DescribeRegions", describe_regions),
    Action("DescribeAccountKmsStatus", describe_account_kms_status),
    Action("OpenKmsService", open_kms_service),
    Action("ListKmsInstances", list_kms_instances, frozenset({"Filters", "PageNumber", "PageSize"})),
    Action("GetKmsInstance", get_kms_instance, frozenset({"KmsInstanceId"})),
)

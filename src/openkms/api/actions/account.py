"""Account, region and instance actions: DescribeRegions, DescribeAccountKmsStatus, OpenKmsService,
ListKmsInstances, GetKmsInstance, GetKmsInstanceQuotaInfos, GetDefaultKmsInstance."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, page_params, parse_filters
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.instance import Instance
from openkms.errors import InvalidArgument
from openkms.resource import Resource
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

# The instance generation whose API OpenKMS speaks (Alibaba's KMS 3.0 instances report "3").
PRODUCT_VERSION = "3"


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
    page_number, page_size = page_params(params, default_size=20)  # Alibaba's default for this action
    wanted = _instance_filters(params)
    rows, total = services.instances.list_instances(
        ctx, page_number, page_size, lambda row: all(_value_of(row, key) in values for key, values in wanted)
    )
    return {
        "KmsInstances": {
            "KmsInstance": [{"KmsInstanceId": row.instance_id, "KmsInstanceArn": row.arn} for row in rows]
        },
        "TotalCount": total,
        "PageNumber": page_number,
        "PageSize": page_size,
    }


# ListKmsInstances Filters: the SDK carries the parameter (a string) but Alibaba documents no keys;
# OpenKMS takes ListKeys' shape, `[{"Key": ..., "Values": [...]}]`, on these fields of GetKmsInstance.
# Values of one filter are OR-ed, filters AND-ed.
_INSTANCE_FILTER_KEYS = ("KmsInstanceId", "InstanceName", "ProductType", "Status")


def _instance_filters(params: Params) -> list[tuple[str, frozenset[str]]]:
    return [(key, frozenset(values)) for key, values in parse_filters(params, _INSTANCE_FILTER_KEYS)]


def _value_of(row: Instance, key: str) -> str:
    if key == "KmsInstanceId":
        return row.instance_id
    if key == "InstanceName":
        return row.name
    if key == "ProductType":
        return _product_type(row)
    return _status(row)


def _product_type(row: Instance) -> str:
    return f"openkms_{row.kind.value}"


def get_kms_instance(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    row = services.instances.get_instance(ctx, params.required_str("KmsInstanceId"))
    secret_count = services.secrets.count(row.account_id, row.region_id, row.instance_id)
    access_quota, _, _ = services.access.usage(row.instance_id)
    answer = _instance(row, services, secret_count, access_quota)
    # The deployment's CA, which issues the TLS certificate clients verify (service/instance_ca.py).
    answer["KmsInstance"]["CaCertificateChainPem"] = services.instance_ca.chain_pem()
    return Outcome(answer, Resource(row.arn))


def _instance(
    row: Instance, services: Services, secret_count: int, access_quota: int
) -> dict[str, dict[str, object]]:
    """GetKmsInstance's KmsInstance with the SDK's field types (SecretNum is a string there). The
    numbers are quotas, as Alibaba's are: KeyNum `key_quota`, SecretNum `secret_quota`, VpcNum the
    access quota (other accounts the instance's keys may serve, F4.3), Spec the crypto requests per
    second an account may make (`rate_crypto_per_account`). What is in use: GetKmsInstanceQuotaInfos,
    and the OpenKMS extensions OpenKMSKeyCount and OpenKMSSecretCount."""
    return {
        "KmsInstance": {
            "InstanceId": row.instance_id,
            "InstanceName": row.name,
            "Status": _status(row),
            "ProductType": _product_type(row),
            "ProductVersion": PRODUCT_VERSION,
            "Spec": services.instances.spec,
            "KeyNum": services.keys.quota,
            "SecretNum": str(services.secrets.quota),
            "VpcNum": access_quota,
            "CreateTime": iso_utc(row.created_at),
            "StartDate": iso_utc(row.created_at),
            "Log": 1,  # every request is in the audit log, always
            # The API cannot release an instance: only the operator removes one.
            "DeletionProtection": True,
            "DeletionProtectionDescription": "OpenKMS instances are not released through the API.",
            "BindVpcs": {"BindVpc": []},
            # OpenKMS extensions: what is in use, the kind of key store and its backend's last health check.
            "OpenKMSKeyCount": row.key_count,
            "OpenKMSSecretCount": secret_count,
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


QUOTA_TYPES = ("key", "secret", "vpc", "qps")


def get_kms_instance_quota_infos(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    """Each quota of the instance with what is in use: keys (pending deletion included), secrets
    (waiting for deletion included), vpc (the access quota: other accounts holding a unit, F4.3) and
    qps (the per-account crypto rate; its use is not kept, so it has no UsedQuantity)."""
    row = services.instances.get_quota_infos(ctx, params.required_str("KmsInstanceId"))
    wanted = params.optional_str("ResourceType") or None
    if wanted is not None and wanted not in QUOTA_TYPES:
        raise InvalidArgument(
            f"ResourceType must be one of {', '.join(QUOTA_TYPES)}.", parameter="ResourceType"
        )
    infos: list[dict[str, object]] = []
    for kind in QUOTA_TYPES:
        if wanted is not None and kind != wanted:
            continue
        if kind == "key":
            infos.append(_quota(kind, services.keys.quota, row.key_count))
        elif kind == "secret":
            used = services.secrets.count(row.account_id, row.region_id, row.instance_id)
            infos.append(_quota(kind, services.secrets.quota, used))
        elif kind == "vpc":
            quota, held, _ = services.access.usage(row.instance_id)
            infos.append(_quota(kind, quota, len(held)))
        else:
            infos.append({"ResourceType": kind, "ResourceQuota": services.instances.spec})
    return Outcome({"KmsInstanceId": row.instance_id, "KmsInstanceQuotaInfos": infos}, Resource(row.arn))


def _quota(kind: str, quota: int, used: int) -> dict[str, object]:
    return {"ResourceType": kind, "ResourceQuota": quota, "UsedQuantity": used}


def get_default_kms_instance(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    """The account's default instance in the region: its first software instance (the one made with
    the account), or "" when it has none."""
    found = services.instances.default_instance(ctx)
    return {"DefaultKmsInstanceId": "" if found is None else found.instance_id}


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
    Action(
        "GetKmsInstanceQuotaInfos", get_kms_instance_quota_infos, frozenset({"KmsInstanceId", "ResourceType"})
    ),
    Action("GetDefaultKmsInstance", get_default_kms_instance),
)

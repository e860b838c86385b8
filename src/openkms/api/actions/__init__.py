"""The action table: Action name -> handler. One module per action group; each handler turns
Params into a service call and the result into Alibaba's response fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openkms.api.actions import (
    access_points,
    account,
    aliases,
    associations,
    asymmetric,
    client_keys,
    crypto,
    data_key_export,
    dev,
    key_import,
    key_policy,
    keys,
    lifecycle,
    ram,
    secret_rotation,
    secrets,
    sts,
    tags,
)
from openkms.api.actions.base import Action
from openkms.policy.actions import USAGE_ACTIONS

KMS_VERSION = "2016-01-20"

# The KMS actions (2016-01-20).
ACTIONS: dict[str, Action] = {
    action.name: action
    for group in (
        keys,
        crypto,
        account,
        asymmetric,
        data_key_export,
        key_policy,
        key_import,
        lifecycle,
        aliases,
        tags,
        dev,
        associations,
        access_points,
        client_keys,
        secrets,
        secret_rotation,
    )
    for action in group.ACTIONS
}


@dataclass(frozen=True, slots=True)
class Product:
    """One API served on the RPC endpoint: its Version, its policy prefix, its actions."""

    prefix: str  # "kms", "ram", "sts": authorization actions are "<prefix>:<Action>"
    actions: Mapping[str, Action]


PRODUCTS: Mapping[str, Product] = {
    KMS_VERSION: Product("kms", ACTIONS),
    ram.API_VERSION: Product("ram", {action.name: action for action in ram.ACTIONS}),
    sts.API_VERSION: Product("sts", {action.name: action for action in sts.ACTIONS}),
}

__all__ = ["ACTIONS", "KMS_VERSION", "PRODUCTS", "USAGE_ACTIONS", "Action", "Product"]

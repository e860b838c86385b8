"""The action table: Action name -> handler. One module per action group; each handler turns
Params into a service call and the result into Alibaba's response fields."""

from __future__ import annotations

from openkms.api.actions import account, aliases, crypto, dev, keys, lifecycle, tags
from openkms.api.actions.base import Action

ACTIONS: dict[str, Action] = {
    action.name: action
    for group in (keys, crypto, account, lifecycle, aliases, tags, dev)
    for action in group.ACTIONS
}

__all__ = ["ACTIONS", "Action"]

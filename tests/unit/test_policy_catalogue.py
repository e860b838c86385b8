"""Every action the API serves is in the policy catalogue, so policies can name it."""

from __future__ import annotations

from openkms.api.actions import ACTIONS
from openkms.policy.actions import KMS_ACTIONS


def test_every_served_action_is_in_the_catalogue() -> None:
    assert {f"kms:{name}" for name in ACTIONS} == set(KMS_ACTIONS)

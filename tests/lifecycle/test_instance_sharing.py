"""Instance sharing by a signed-in principal (`service/instance_sharing.py`, the console's Instances
page): the owner's root or a RAM principal allowed kms:ShareKmsInstance shares; nobody else, and an
instance of another account is as missing as one that does not exist."""

from __future__ import annotations

import json
import uuid

import pytest

from openkms.errors import AccessDenied, InstanceNotFound, InvalidArgument
from openkms.policy.document import PolicyKind, parse_policy
from openkms.service.bootstrap import create_account
from openkms.service.context import Principal, RequestContext
from tests.lifecycle.conftest import REGION, Stack

SHARER = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["kms:ShareKmsInstance", "kms:GetKmsInstance"], "Resource": "*"}
        ],
    }
)


def _ctx(account: str, name: str = "root", policy: str | None = None) -> RequestContext:
    policies = () if policy is None else (parse_policy(policy, PolicyKind.IDENTITY),)
    return RequestContext(str(uuid.uuid4()), Principal(account, name, policies), REGION)  # type: ignore[arg-type]


def test_the_owner_shares_and_unshares_and_the_guest_sees_it(stack: Stack) -> None:
    services = stack.services
    guest = create_account(services.db, services.keystore, stack.clock, (REGION,)).account_id
    sharing = services.instance_sharing
    owner = _ctx(stack.account_id)

    assert sharing.shared_with_me(_ctx(guest)) == []
    outcome = sharing.share(owner, stack.instance_id, guest)
    assert outcome.value is True and outcome.resource is not None
    assert outcome.resource.arn.endswith(f":{stack.account_id}:keystore/{stack.instance_id}")
    assert sharing.share(owner, stack.instance_id, guest).value is False  # already shared

    view = sharing.sharing(owner, stack.instance_id).value
    assert [s.account_id for s in view.shared_with] == [guest]
    assert view.quota == 10 and view.used == 0
    assert [i.instance_id for i in sharing.shared_with_me(_ctx(guest))] == [stack.instance_id]

    assert sharing.unshare(owner, stack.instance_id, guest).value is True
    assert sharing.sharing(owner, stack.instance_id).value.shared_with == ()
    assert sharing.shared_with_me(_ctx(guest)) == []


def test_only_the_owner_account_may_share(stack: Stack) -> None:
    services = stack.services
    guest = create_account(services.db, services.keystore, stack.clock, (REGION,)).account_id
    sharing = services.instance_sharing

    # Another account's root: the instance is as missing as one that does not exist.
    for instance in (stack.instance_id, "kst-hzz0000000000000000000"):
        with pytest.raises(InstanceNotFound) as missing:
            sharing.share(_ctx(guest), instance, guest)
        assert stack.account_id not in missing.value.message
    # A RAM user of the owner's account without the permission, then with it.
    with pytest.raises(AccessDenied) as denied:
        sharing.share(_ctx(stack.account_id, "user/ops"), stack.instance_id, guest)
    assert denied.value.detail is not None and denied.value.detail["AuthAction"] == "kms:ShareKmsInstance"
    with pytest.raises(AccessDenied):
        sharing.unshare(_ctx(stack.account_id, "user/ops", SHARER), stack.instance_id, guest)
    assert sharing.share(_ctx(stack.account_id, "user/ops", SHARER), stack.instance_id, guest).value is True


def test_sharing_with_a_bad_account_is_refused(stack: Stack) -> None:
    sharing = stack.services.instance_sharing
    owner = _ctx(stack.account_id)
    for account in ("123", "x" * 16, "9999999999999999", stack.account_id):
        with pytest.raises(InvalidArgument):
            sharing.share(owner, stack.instance_id, account)

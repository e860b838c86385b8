"""The modules other code builds on (plugin authors, the next front doors) export exactly what is
pinned here: a change to a public surface is a deliberate edit of this file."""

from __future__ import annotations

import importlib
import re

import pytest

from openkms import errors

SURFACES = {
    "openkms.resource": ["Resource"],
    "openkms.providers.base": [
        "EXPORT_WRAPPING",
        "HEALTH_CHECK",
        "KEY_PAIRS",
        "MATERIAL_CACHE",
        "MATERIAL_DESTRUCTION",
        "MATERIAL_IMPORT",
        "SYMMETRIC",
        "Capability",
        "ExportWrapping",
        "HealthCheck",
        "ImportRequest",
        "Invocation",
        "KeyPairs",
        "MaterialCache",
        "MaterialDestruction",
        "MaterialImport",
        "MaterialRef",
        "NewVersion",
        "SymmetricCipher",
        "random_bytes",
    ],
    "openkms.providers.registry": ["ProviderFactory", "ProviderRegistry", "SecretSource", "close_provider"],
    "openkms.providers.pkix": ["DigestSigner", "certificate_signing_request", "subject_name"],
    "openkms.service.key_ops": [
        "ANY_KEY_PAIR",
        "ENCRYPTION_KEY_PAIR",
        "SIGNING_KEY_PAIR",
        "SYMMETRIC_KEY",
        "KeyOperations",
        "Need",
        "Target",
        "end_dry_run",
    ],
    "openkms.policy.actions": ["INSTANCE_USAGE_ACTIONS", "KMS_ACTIONS", "USAGE_ACTIONS", "KmsAction"],
    "openkms.service.outcome": ["Outcome", "acting_on"],
    "openkms.service.runner": ["Attempt", "ErrorCode", "Runner", "SpentNonce"],
    "openkms.service.offload": ["cold_path_threads", "note_lapsed_entry", "run_without_blocking"],
    "openkms.repository.blocking": ["WouldBlock", "call_on_loop", "ensure_may_block"],
    "openkms.domain.audit_heads": ["FileLink", "Head", "HeadStore"],
    "openkms.server.runtime": [
        "AUDIT_CHAIN_SECRET",
        "WORKER_SLOT_ENV",
        "Runtime",
        "audit_path",
        "audit_sink",
        "build_runtime",
        "build_store",
        "describe_error",
        "head_store",
        "key_audit_chain",
        "open_runtime",
        "tenant_limits",
        "upgrade_schema",
        "worker_slot",
    ],
    "openkms.node.rate_limits": [
        "RATE_FILE",
        "Limits",
        "Rate",
        "RateClass",
        "SharedRateLimiter",
        "next_arrival",
    ],
    "openkms.testing.audit": ["FailingAuditSink", "MemoryAuditSink"],
    "openkms.testing.clock": ["FrozenClock"],
    "openkms.testing.keyring": ["MemoryKeyringStore", "StaticRoot"],
    "openkms.testing.jobs": [
        "delete_due_keys",
        "expire_due_material",
        "job_scheduler",
        "rotate_due_keys",
        "runner_for",
    ],
}


@pytest.mark.parametrize("module_name", sorted(SURFACES))
def test_the_public_surface_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(SURFACES[module_name])
    for name in module.__all__:
        assert hasattr(module, name), name


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def _drawn_parents(tree: str) -> dict[str, str]:
    """Each class drawn in the tree -> the class it is drawn under (by indentation)."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = [(-1, "OpenKMSError")]
    for match in re.finditer(r"^(\s*(?:[│ ]   )*)[├└]── (\w+)", tree, re.M):
        depth, name = len(match.group(1)), match.group(2)
        while stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_error_tree_in_the_docstring_draws_every_class_under_its_parent() -> None:
    drawn = _drawn_parents(errors.__doc__ or "")
    classes = {cls for cls in _subclasses(errors.OpenKMSError) if cls.__module__ == "openkms.errors"}
    assert {cls.__name__: cls.__mro__[1].__name__ for cls in classes} == drawn

"""`openkms service-key create`: make a service's key in the root account, as a request of the
integrated service through the runner (audited like an API call)."""

from __future__ import annotations

from openkms.config import Settings
from openkms.server.runtime import open_runtime
from openkms.service.context import Door, RequestContext, service_principal
from openkms.service.ids import new_request_id
from openkms.service.outcome import Outcome
from openkms.types import RegionId


def create_service_key(settings: Settings, service: str, region: str) -> tuple[str, bool]:
    if region not in settings.regions:
        raise ValueError(f"region {region!r} is not one of {', '.join(settings.regions)}")
    with open_runtime(settings) as runtime:
        services = runtime.services
        account = services.instances.root_account()
        ctx = RequestContext(
            new_request_id(),
            service_principal(account, service),
            RegionId(region),
            door=Door.CLI,
            received_at=runtime.clock.timestamp(),
        )

        def use_case() -> Outcome[tuple[str, bool]]:
            made = services.service_keys.ensure(ctx, service)
            return made.map(lambda key: (key.key_id, made.acted))

        import asyncio

        return asyncio.run(runtime.runner.run(ctx, "CreateKey", use_case))

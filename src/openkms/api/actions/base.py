"""What an action is: a name, a handler, and whether it may block on the database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from openkms.api.params import Params
from openkms.errors import InvalidArgument, UnsupportedOperation
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

# A handler answers the action's response fields, with the resource it acted on (an Outcome).
Handler = Callable[[Params, RequestContext, Services], "Outcome[Mapping[str, object]] | Mapping[str, object]"]


# JSON-object parameters that Alibaba's Node.js SDK sends flattened as `Name.<key>=<value>`.
MAP_PARAMETERS = frozenset({"EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext"})

# Parameters every RPC request may carry besides its action's own (signing, format, region).
COMMON_PARAMETERS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Signature",
        "Timestamp",
        "RegionId",
        "SecurityToken",
    }
)


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    handler: Handler
    parameters: frozenset[str] = frozenset()
    # Blocking handlers run in a worker thread. Hot-path crypto runs on the event loop: its steady
    # state touches only the caches.
    blocking: bool = True
    _accepted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_accepted", self.parameters | COMMON_PARAMETERS)

    def check_parameters(self, given: Iterable[str]) -> bool:
        """Refuse a parameter this action does not take, before anything runs. A declared `Name.N`
        admits the repeat-list forms `Name.1`, `Name.2.Key`, ...; a declared map parameter its
        flattened form `Name.<key>`. False when every name was a plain one (then `Params` need not
        look for flattened maps), True otherwise."""
        if self._accepted.issuperset(given):
            return False  # the usual case, decided by one C-level set operation
        for name in given:
            if name not in self.parameters and name not in COMMON_PARAMETERS:
                if "." in name:
                    head = name.split(".", 1)[0]
                    if head + ".N" in self.parameters:
                        continue
                    if head in MAP_PARAMETERS and head in self.parameters:
                        continue  # a map sent flattened, `EncryptionContext.<key>` (Params.flattened_map)
                raise InvalidArgument(f"{self.name} takes no parameter {name}.", parameter=name)
        return True


def take_dry_run(params: Params, ctx: RequestContext) -> None:
    """`DryRun=true` (the actions whose SDK models carry it): the use case runs every check and stops
    before acting, answering `DryRunOperation` (`errors.DryRunPassed`) if all passed. Read before the
    use case runs, so its audit record says it was a dry run whatever the result."""
    ctx.dry_run = params.optional_bool("DryRun", False)


def refuse_recipient(params: Params) -> None:
    """`Recipient` (SDK 3.3.1: Decrypt, GenerateDataKey, AsymmetricDecrypt) asks for the result
    encrypted to an attested enclave's key (`CiphertextForRecipient`) instead of in the clear. OpenKMS
    verifies no attestation, so it refuses the parameter by name rather than ignoring it (which would
    answer the plaintext the caller asked not to receive)."""
    if params.optional_str("Recipient"):
        raise UnsupportedOperation(
            "Recipient is not supported: OpenKMS verifies no attestation documents, so it cannot return "
            "a result bound to an attested recipient (CiphertextForRecipient). Call without Recipient."
        )


def empty(done: Outcome[object]) -> Outcome[Mapping[str, object]]:
    """The answer of an action whose response carries no fields of its own."""
    return done.map(lambda _: {})


def parse_filters(params: Params, keys: Iterable[str]) -> list[tuple[str, list[str]]]:
    """`Filters` as ListKeys takes it: a JSON array of at most 10 `{"Key": ..., "Values": [...]}`, each
    key one of `keys`, each with 1 to 10 string values; in the order given."""
    raw = params.json_list("Filters")
    if raw is None:
        return []
    if len(raw) > 10:
        raise InvalidArgument("Filters takes at most 10 key-value pairs.", parameter="Filters")
    allowed = tuple(keys)
    chosen: list[tuple[str, list[str]]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"Key", "Values"}:
            raise InvalidArgument('Each filter is {"Key": ..., "Values": [...]}.', parameter="Filters")
        key, values = item["Key"], item["Values"]
        if not isinstance(key, str) or key not in allowed:
            raise InvalidArgument(
                f"Filter key {key!r} is not one of {', '.join(allowed)}.", parameter="Filters"
            )
        if (
            not isinstance(values, list)
            or not 1 <= len(values) <= 10
            or not all(isinstance(value, str) for value in values)
        ):
            raise InvalidArgument("Filter Values is a list of 1 to 10 strings.", parameter="Filters")
        chosen.append((key, values))
    return chosen


def page_params(params: Params, default_size: int = 10) -> tuple[int, int]:
    """PageNumber (from 1) and PageSize (1 to 100; Alibaba's default is 10 for most lists, 20 for some)."""
    page_number = params.optional_int("PageNumber", 1, minimum=1, maximum=1_000_000)
    page_size = params.optional_int("PageSize", default_size, minimum=1, maximum=100)
    return page_number, page_size

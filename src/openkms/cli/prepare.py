"""What `serve` does before the workers start: schema migration, bootstrap, root access key."""

from __future__ import annotations

import time

from rich.console import Console

from openkms.audit.wal import recover_directory
from openkms.clock import DEV_CLOCK_FILE, SystemClock, advance_offset_file
from openkms.config import Settings
from openkms.errors import AuditUnavailable
from openkms.node.nonces import SharedNonceStore
from openkms.server.file_modes import tighten_data_dir
from openkms.server.runtime import build_store, upgrade_schema
from openkms.server.tls import write_instance_tls_files
from openkms.service.bootstrap import bootstrap_store, describe_root_credentials, ensure_root_access_key
from openkms.service.instance_ca import InstanceCa
from openkms.service.replay import NONCE_FILE, node_memory_dir, rebuild_replay_cache
from openkms.service.seal import root_of_trust


def prepare_replay_cache(settings: Settings, console: Console) -> None:
    """Create the node's replay cache before any worker serves; after a reboot, refill it from the
    audit log so requests seen before the reboot cannot be replayed."""
    path = node_memory_dir(settings.data_dir) / NONCE_FILE
    fresh = not path.exists()
    with SharedNonceStore(path, slots=settings.replay_cache_slots) as store:
        if fresh:
            rebuilt = rebuild_replay_cache(
                store, settings.data_dir / "audit", time.time(), settings.timestamp_window_seconds
            )
            if rebuilt.nonces:
                console.print(
                    f"replay cache rebuilt: {rebuilt.nonces} nonces from {rebuilt.files} audit files"
                )


def prepare_audit_logs(settings: Settings, console: Console) -> None:
    """Before any worker serves (and before the replay cache is rebuilt from the logs): copy into
    each audit log the acknowledged records that only its ring holds, after a crash or power loss."""
    unapplied = []
    for recovered in recover_directory(settings.data_dir / "audit"):
        if recovered.complete:
            console.print(
                f"audit log {recovered.log.name}: {recovered.records} records restored from its ring"
            )
        else:
            unapplied.append(recovered.log.name)
    if unapplied:
        # Fail closed: acknowledged records that only a ring holds would be missing from the log,
        # and from the replay cache that is rebuilt from it.
        raise AuditUnavailable(
            f"The ring of audit log(s) {', '.join(unapplied)} could not be applied (the reason is "
            "logged above); both files are kept. Inspect them before serving."
        )


def prepare_store(settings: Settings, console: Console) -> None:
    tighten_data_dir(settings.data_dir)  # 0700 folders, 0600 files, whoever made them before
    prepare_audit_logs(settings, console)
    prepare_replay_cache(settings, console)
    store = build_store(settings, clock=SystemClock(), cache_ttl=0.0)
    db, keystore, clock = store.db, store.keystore, store.clock
    try:
        upgrade_schema(store)
        account = bootstrap_store(db, settings.regions, clock)
        root = root_of_trust(settings, passphrase=settings.unseal_passphrase)
        if root is None:
            console.print("the key store is sealed: run `openkms unseal` once the server is up")
            return
        keystore.unseal(root)
        created = ensure_root_access_key(db, keystore, clock, settings.data_dir, settings.root_access_key)
        prepare_instance_ca(settings, InstanceCa(db, keystore, clock), console)
        keystore.seal()
        if created is not None:
            console.print(f"root account {account}: {describe_root_credentials(created)}")
    finally:
        db.dispose()


def prepare_instance_ca(settings: Settings, ca: InstanceCa, console: Console) -> None:
    """Make the deployment's CA on first start; with `tls_instance_ca`, issue this start's server
    certificate for `tls_names` and write it where uvicorn reads it."""
    ca.certificate_pem()
    if settings.tls_instance_ca:
        issued = ca.issue_server_certificate(settings.tls_names)
        write_instance_tls_files(settings, issued.chain_pem, issued.private_key_pem)
        console.print(
            f"TLS certificate for {', '.join(settings.tls_names)} issued by the instance CA "
            "(`openkms instance ca --out ca.pem` writes the CA for clients)"
        )


def prepare_dev_clock(settings: Settings, console: Console) -> None:
    """The dev clock's offset file exists exactly while the server runs with --dev-clock (the CLI's
    `dev advance` refuses otherwise). A restart with --dev-clock keeps the offset: time never goes back."""
    path = settings.data_dir / "run" / DEV_CLOCK_FILE
    if settings.dev_clock:
        if not path.exists():
            advance_offset_file(path, 0.0)
        console.print("[yellow]development clock ON[/yellow]: `openkms dev advance 30d` moves time forward")
    else:
        path.unlink(missing_ok=True)

"""Reaching a PKCS#11 token (an HSM; SoftHSM2 in development and tests): its settings and PIN source
(`config`), and a bounded pool of logged-in sessions that reopens after token errors (`sessions`).
Used by the hardware provider and by `openkms xks-proxy`."""

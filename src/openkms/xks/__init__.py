"""External keys over the XKS proxy API v1 (AWS's published External Key Store proxy specification).

Owns the wire of that API and nothing of OpenKMS's own: SigV4 signing and verification (`sigv4`), the
client OpenKMS's external provider calls (`client`) and OpenKMS's own proxy in front of a PKCS#11
token (`proxy`, run as `openkms xks-proxy`). OpenKMS speaks XKS proxy API v1; it does not claim
compatibility with any other vendor's external key interface.
"""

"""Crypto providers: the only code that touches key material (software today; PKCS#11 and external later)."""

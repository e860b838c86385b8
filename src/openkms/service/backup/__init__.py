"""Backup and restore of a whole store: `take.py` writes an archive, `restore.py` brings one up as a
fresh node, `archive.py` owns the encrypted format, `roots.py` the root key each is made under.

Only the holder of the root of trust reads or restores an archive; the root itself is never in one.
"""

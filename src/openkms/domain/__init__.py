"""The pure core: keys, their lifecycle, the spec table, the ciphertext and context formats. No I/O."""

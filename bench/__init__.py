"""Throughput/latency benchmark of a live OpenKMS server against the bare stack's ceiling (`make bench`).

Not a test: nothing here asserts a number. See bench/README.md.
"""

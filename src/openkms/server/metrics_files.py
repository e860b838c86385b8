"""Where the worker processes of a node keep their Prometheus values, emptied when `serve` starts.

Imports nothing of prometheus_client: the variable it sets must be in place before the first import.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from openkms.service.replay import node_memory_dir

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(data_dir: Path) -> Path:
    """Empty the node's metrics folder (values of a previous run) and point prometheus_client at it,
    for this process and the workers it starts."""
    directory = node_memory_dir(data_dir) / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory

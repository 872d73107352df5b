"""The metric layer stands alone: importing it loads neither Lightning nor the datamodules (its package rule)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_LOADED = """
import json, sys
import {module}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


@pytest.mark.parametrize("module", ["gan_lightning.metrics", "gan_lightning.metrics.mnist",
                                    "gan_lightning.metrics.modes", "gan_lightning.data_io", "gan_lightning.files"])
def test_metric_layer_imports_no_lightning_nor_datamodules(module: str) -> None:
    # A fresh interpreter: this test process has imported everything already.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", _LOADED.format(module=module)], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert not loaded & {"lightning", "pytorch_lightning", "lightning_fabric", "datamodules"}, module

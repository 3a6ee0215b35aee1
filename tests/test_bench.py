"""bench/run.py's --separate mode: each library timed in a worker process of its own, the
repeats alternated, the same result fields as the one-process mode."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import torch_or_skip

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def test_separate_workers_time_both_libraries():
    torch_or_skip()
    out = subprocess.run([sys.executable, str(RUN), "-w", "micro", "--separate", "--repeats",
                          "2", "--min-time", "0.05", "--warmup-time", "0.1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])["results"][0]
    assert result["workload"] == "micro" and result["separate"] is True
    assert len(result["framework_ms_all"]) == 2 and len(result["torch_ms_all"]) == 2
    assert result["framework_ms"] > 0 and result["torch_ms"] > 0
    assert abs(result["ratio"] - result["framework_ms"] / result["torch_ms"]) < 1e-9

"""bench/run.py's modes: by default each library timed in a worker process of its own, the
repeats alternated; --same-process times both in one process. Both give the same result
fields."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import torch_or_skip

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


@pytest.mark.parametrize("flags, separate", [([], True), (["--same-process"], False)])
def test_bench_times_both_libraries(flags, separate):
    torch_or_skip()
    out = subprocess.run([sys.executable, str(RUN), "-w", "micro", *flags, "--repeats", "2",
                          "--min-time", "0.05", "--warmup-time", "0.1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])["results"][0]
    assert result["workload"] == "micro" and result.get("separate", False) is separate
    assert len(result["framework_ms_all"]) == 2 and len(result["torch_ms_all"]) == 2
    assert result["framework_ms"] > 0 and result["torch_ms"] > 0
    assert abs(result["ratio"] - result["framework_ms"] / result["torch_ms"]) < 1e-9

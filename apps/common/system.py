"""What machine a run happened on: one line for logs, reports and benchmark tables."""
from __future__ import annotations

import os
import platform

__all__ = ["cpu_name", "blas_name", "machine_line"]


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_name() -> str:
    """NumPy's BLAS library and version, as threadpoolctl reports it ("" when unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return f"{lib.get('internal_api')} {lib.get('version')}"
    return ""


def machine_line(device: str = "cpu") -> str:
    """'<cpu>; <n> cores, <t> threads; Python x, numpy y (BLAS), device'."""
    import numpy as np

    import framework as fw
    blas = blas_name()
    line = (f"{cpu_name()}; {os.cpu_count()} cores, {fw.get_num_threads()} thread(s); Python "
            f"{platform.python_version()}, numpy {np.__version__}"
            + (f" ({blas})" if blas else ""))
    if device.startswith("cuda"):
        try:
            import cupy as cp
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            line += f"; GPU {props['name'].decode()}, CuPy {cp.__version__}"
        except Exception as exc:  # noqa: BLE001 - the line reports, it never fails
            line += f"; GPU unavailable ({type(exc).__name__})"
    return line

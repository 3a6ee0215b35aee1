"""Time training-step workloads on Lantern and, where installed, on PyTorch, in one run.

    python bench/run.py                       # every workload, Lantern vs torch, 1 thread
    python bench/run.py -w micro mlp --threads 2 --repeats 9
    python bench/run.py --memory              # peak memory of a 20-layer MLP backward
    python bench/run.py --device cuda -w cnn  # GPU (CuPy vs torch CUDA)
    python bench/run.py --device cuda -w resnet18 transformer_gpu --gpu-memory
                                              # GPU-sized workloads, peak GPU memory too
    python bench/run.py -w vision --rss       # LeNet-5, its predict throughput, ResNet-18
                                              # (CIFAR stem); peak RSS of each library
    python bench/run.py -w text --threads 2   # TextCNN tokens/s, MiniLM sentences/s (torch
                                              # side: transformers)
    python bench/run.py -w unet --threads 2 --same-process
                                              # both libraries in this process

Method: build each library's workload, warm up, then alternate the two libraries repeat by
repeat (so a slow spell of the machine hits both), each repeat running enough steps for
about --min-time seconds. Prints the median ms/step of each, the ratio Lantern / torch (below 1
means Lantern is faster) and a machine line. Speed lives here, never in a timed test.

Each library runs in a worker process of its own (PyTorch not loaded beside Lantern: the
process a user runs), the repeats still alternated between the two. --same-process runs both
in this process instead; that slows Lantern's convolutions: beside PyTorch, numba would share
PyTorch's OpenMP runtime, so Lantern keeps its OpenMP kernels off (see framework/_jit.py).
--rss measures a fresh process per library either way; --gpu-memory measures in this one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


def machine_line(threads: int) -> str:
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info
        info = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        if info:
            blas = f", BLAS {info[0].get('internal_api')} {info[0].get('version')} " \
                   f"({info[0].get('architecture')})"
    except ImportError:
        pass
    try:
        import torch
        tv = f", torch {torch.__version__}"
    except ImportError:
        tv = ", torch not installed"
    return (f"{cpu}; {os.cpu_count()} cores, {threads} thread(s); Python "
            f"{platform.python_version()}, numpy {np.__version__}{blas}{tv}")


def gpu_line() -> str:
    """The GPU, driver, CUDA, CuPy and cuDNN versions (and torch's view of the GPU)."""
    parts = []
    try:
        import cupy as cp
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        parts.append(f"{name} ({props['totalGlobalMem'] / 2 ** 30:.0f} GiB, "
                     f"sm_{props['major']}{props['minor']})")
        parts.append(f"driver {cp.cuda.runtime.driverGetVersion()}, "
                     f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, cupy {cp.__version__}")
    except Exception as exc:
        parts.append(f"CuPy/GPU unavailable ({type(exc).__name__}: {exc})")
    try:
        from framework import _cudnn
        parts.append(_cudnn.describe())
    except Exception as exc:
        parts.append(f"cuDNN check failed: {exc}")
    try:
        import torch
        parts.append(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn "
                     f"{torch.backends.cudnn.version()}")
    except Exception:
        pass
    return "; ".join(parts)


def _sync(lib, device):
    if device != "cpu" and hasattr(lib, "cuda"):
        lib.cuda.synchronize()


def _time_steps(step, lib, device, n):
    _sync(lib, device)
    t = time.perf_counter()
    for _ in range(n):
        step()
    _sync(lib, device)
    return (time.perf_counter() - t) / n


def bench_workload(name, libs, device, repeats, min_time, warmup_time):
    import workloads
    steps, per = {}, {}
    for lib_name, lib in list(libs.items()):
        try:
            step, desc = workloads.WORKLOADS[name](lib, device)
        except ImportError as exc:  # e.g. transformers, the MiniLM oracle, not installed
            if lib_name == "framework":
                raise
            print(f"{name}: {lib_name} side not timed ({exc})", file=sys.stderr)
            libs = {k: v for k, v in libs.items() if k != lib_name}
            continue
        steps[lib_name] = step
        per[lib_name] = _warm_up(step, lib, device, warmup_time)
    counts = {k: max(1, int(min_time / v)) for k, v in per.items()}
    times = {k: [] for k in libs}
    for _ in range(repeats):
        for lib_name, lib in libs.items():
            times[lib_name].append(_time_steps(steps[lib_name], lib, device, counts[lib_name]))
    return _result(name, desc, device, times, getattr(steps["framework"], "rate", None))


def _warm_up(step, lib, device, warmup_time):
    """Run the step for warmup_time seconds (3 steps at least); seconds per step."""
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < warmup_time or n < 3:
        step()
        n += 1
    _sync(lib, device)
    return max((time.perf_counter() - t0) / n, 1e-6)


def _result(name, desc, device, times, rate):
    """The result record of one workload from each library's seconds per step per repeat;
    rate: (items per step, unit) of Lantern's step, for throughput besides the step time."""
    res = {"workload": name, "description": desc, "device": device}
    if rate is not None:
        res["unit"] = rate[1]
        for k, v in times.items():
            res[f"{k}_per_s"] = rate[0] / statistics.median(v)
    for k, v in times.items():
        res[f"{k}_ms"] = statistics.median(v) * 1e3
        res[f"{k}_ms_all"] = [x * 1e3 for x in v]
    if "torch" in times:
        res["ratio"] = res["framework_ms"] / res["torch_ms"]
    return res


def _worker(lib_name, name, device, threads, warmup_time, ftz):
    """--separate's worker: build the workload on one library, warm it up, report the warm-up
    step time as a JSON line, then answer each "run N" on stdin with the seconds per step of N
    steps, until "quit"."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    lib = __import__(lib_name)
    import workloads
    try:
        from threadpoolctl import threadpool_limits
        _limits = threadpool_limits(threads, user_api="blas")  # noqa: F841
    except ImportError:
        pass
    lib.set_num_threads(threads)
    if ftz:
        lib.set_flush_denormal(True)
    step, desc = workloads.WORKLOADS[name](lib, device)
    print(json.dumps({"description": desc, "per_step": _warm_up(step, lib, device, warmup_time),
                      "rate": getattr(step, "rate", None)}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] != "run":
            break
        print(_time_steps(step, lib, device, int(cmd[1])), flush=True)


def bench_workload_separate(name, lib_names, args):
    """bench_workload with each library in a worker process of its own (see _worker)."""
    procs, info = {}, {}
    try:
        for lib_name in lib_names:
            procs[lib_name] = p = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", lib_name, name,
                 args.device, str(args.threads), str(args.warmup_time), str(int(args.ftz))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            first = p.stdout.readline()
            if not first:
                if lib_name == "framework":
                    raise RuntimeError(f"the framework worker for {name} failed (see above)")
                print(f"{name}: {lib_name} side not timed (its worker failed)", file=sys.stderr)
                procs.pop(lib_name)
                continue
            info[lib_name] = json.loads(first)
        counts = {k: max(1, int(args.min_time / v["per_step"])) for k, v in info.items()}
        times = {k: [] for k in info}
        for _ in range(args.repeats):
            for lib_name, p in procs.items():
                p.stdin.write(f"run {counts[lib_name]}\n")
                p.stdin.flush()
                times[lib_name].append(float(p.stdout.readline()))
    finally:
        for p in procs.values():
            try:
                p.stdin.write("quit\n")
                p.stdin.close()
            except OSError:
                pass
            p.wait(timeout=60)
    res = _result(name, info["framework"]["description"], args.device, times,
                  info["framework"]["rate"])
    res["separate"] = True
    return res


_MEMORY_CHILD = r"""
import resource, sys
lib_name, depth, width, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import numpy as np
lib = __import__(lib_name)
nn = lib.nn
lib.manual_seed(0)
layers = []
for _ in range(depth):
    layers += [nn.Linear(width, width), nn.ReLU()]
model = nn.Sequential(*layers)
x = lib.tensor(np.random.default_rng(0).standard_normal((batch, width), dtype=np.float32))
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
base = rss()  # model and input built; the step's activations and gradients come on top
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
loss = model(x).sum()
loss.backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if before > base + 1024:
    print("warning: an earlier transient peak hides part of the step", file=sys.stderr)
print(peak - base)
"""


def bench_gpu_memory(name, libs, device, steps=2):
    """Peak GPU memory of one training step of workload `name` (after `steps` warm-up steps
    that create the optimizer state), per library: the peak of bytes held by live arrays
    during the step above what was held before it (CuPy's pool for Lantern, PyTorch's
    caching allocator for torch), in MiB."""
    import workloads
    out = {}
    for lib_name, lib in libs.items():
        step, _ = workloads.WORKLOADS[name](lib, device)
        for _ in range(steps):
            step()
        lib.cuda.synchronize()
        base = lib.cuda.memory_allocated()
        lib.cuda.reset_peak_memory_stats()
        step()
        lib.cuda.synchronize()
        out[lib_name] = (lib.cuda.max_memory_allocated() - base) / 2 ** 20
        if hasattr(lib.cuda, "track_peak_memory"):
            lib.cuda.track_peak_memory(False)  # the hook slows allocations: off for timing
        del step
        if lib_name == "torch":
            lib.cuda.empty_cache()
        else:
            import gc
            gc.collect()
            lib.cuda.empty_cache()
    if "torch" in out and out["torch"] > 0:
        out["ratio"] = out["framework"] / out["torch"]
    return out


# The peak is read from VmHWM: ru_maxrss keeps the parent's high-water mark across exec.
_RSS_CHILD = r"""
import sys
sys.path[:0] = sys.argv[4:]
lib_name, workload, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
lib = __import__(lib_name)
lib.set_num_threads(1)
import workloads
step, _ = workloads.WORKLOADS[workload](lib, "cpu")
for _ in range(steps):
    step()
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")))
"""


def bench_rss(name, steps=20):
    """Peak resident memory (MiB) of a fresh process per library that imports it, builds
    workload `name` and runs `steps` steps: what a user's process costs, library included."""
    out = {}
    for lib in ("framework", "torch"):
        try:
            r = subprocess.run([sys.executable, "-c", _RSS_CHILD, lib, name, str(steps), HERE,
                                os.path.dirname(HERE)], capture_output=True, text=True,
                               check=True)
            out[lib] = int(r.stdout.strip().splitlines()[-1]) / 1024.0
        except subprocess.CalledProcessError as exc:
            out[lib] = f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
    if all(isinstance(v, float) for v in out.values()):
        out["ratio"] = out["framework"] / out["torch"]
    return out


def bench_memory(depth=20, width=1024, batch=256):
    out = {}
    for lib in ("framework", "torch"):
        try:
            r = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, lib, str(depth), str(width),
                                str(batch)], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
            out[lib] = int(r.stdout.strip().splitlines()[-1]) / 1024.0
        except subprocess.CalledProcessError as exc:
            out[lib] = f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-w", "--workloads", nargs="*", default=["micro", "mlp", "dqn", "cnn",
                                                             "transformer", "unet"],
                    help="micro mlp dqn cnn transformer unet (or W1..W6); vision = lenet5 "
                         "lenet5_predict resnet18_cifar; text = textcnn minilm_short "
                         "minilm_128 (the torch side of minilm needs transformers)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per repeat")
    ap.add_argument("--warmup-time", type=float, default=1.0)
    ap.add_argument("--no-torch", action="store_true", help="time Lantern only")
    ap.add_argument("--ftz", action="store_true", help="flush denormals to zero in both libraries")
    ap.add_argument("--memory", action="store_true", help="peak memory of a 20-layer MLP backward")
    ap.add_argument("--gpu-memory", action="store_true",
                    help="with --device cuda: peak GPU memory of one step of each workload")
    ap.add_argument("--tf32", action="store_true",
                    help="with --device cuda: allow TF32 tensor cores for float32 matmul and "
                         "convolutions in both libraries (default: full float32 in both)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="with --device cuda: time cuDNN's algorithms per shape in both")
    ap.add_argument("--rss", action="store_true",
                    help="also the peak RSS of a fresh process per library and workload")
    ap.add_argument("--same-process", dest="separate", action="store_false",
                    help="run both libraries in this process (default: each in a worker "
                         "process of its own; see above)")
    ap.add_argument("--separate", action="store_true", help=argparse.SUPPRESS)  # the default
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    cuda = args.device.startswith("cuda")
    if cuda:  # read at import by CuPy / Lantern's cuDNN wrapper: set before importing them
        os.environ["CUPY_TF32"] = "1" if args.tf32 else "0"
        os.environ["LANTERN_ALLOW_TF32"] = "1" if args.tf32 else "0"
        os.environ["LANTERN_CUDNN_BENCHMARK"] = "1" if args.cudnn_benchmark else "0"
    import framework
    import workloads
    groups = {"vision": workloads.VISION_WORKLOADS, "text": workloads.TEXT_WORKLOADS}
    args.workloads = [x for w in args.workloads for x in groups.get(w, [w])]

    try:
        from threadpoolctl import threadpool_limits
        _limits = threadpool_limits(args.threads, user_api="blas")  # noqa: F841
    except ImportError:
        pass
    framework.set_num_threads(args.threads)
    libs = {"framework": framework}
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            libs["torch"] = torch
            if cuda:
                torch.backends.cudnn.allow_tf32 = args.tf32
                torch.backends.cuda.matmul.allow_tf32 = args.tf32
                torch.backends.cudnn.benchmark = args.cudnn_benchmark
        except ImportError:
            print("torch is not installed: timing Lantern only", file=sys.stderr)
    if args.ftz:
        framework.set_flush_denormal(True)
        if "torch" in libs:
            libs["torch"].set_flush_denormal(True)
    print("machine:", machine_line(args.threads))
    if cuda:
        print("gpu:", gpu_line(), f"; tf32 {'on' if args.tf32 else 'off'}, cudnn benchmark "
              f"{'on' if args.cudnn_benchmark else 'off'}", flush=True)
    results = []
    if args.memory:
        mem = bench_memory()
        print(f"peak memory of a 20-layer 1024-wide MLP's first forward+backward, batch 256 "
              f"(MiB of peak RSS above the built model and input; weights are 80 MiB, so their "
              f"gradients alone take 80): framework {mem['framework']}, torch {mem['torch']}"
              + (f", ratio {mem['framework'] / mem['torch']:.2f}"
                 if all(isinstance(v, float) for v in mem.values()) else ""))
        results.append({"memory_mib": mem})
    for w in args.workloads:
        name = workloads.ALIASES.get(w, w)
        try:
            if args.separate:
                r = bench_workload_separate(name, list(libs), args)
            else:
                r = bench_workload(name, libs, args.device, args.repeats, args.min_time,
                                   args.warmup_time)
        except Exception as exc:  # one failing workload must not hide the others
            print(f"{name:12s} FAILED: {type(exc).__name__}: {exc}", flush=True)
            results.append({"workload": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        results.append(r)
        line = f"{name:12s} framework {r['framework_ms']:9.3f} ms/step"
        if "torch_ms" in r:
            line += f"   torch {r['torch_ms']:9.3f} ms/step   ratio {r['ratio']:.2f}x"
        if "unit" in r:
            line += f"   ({r['framework_per_s']:,.0f} {r['unit']}/s"
            if "torch_per_s" in r:
                line += f" vs {r['torch_per_s']:,.0f}"
            line += ")"
        print(line, flush=True)
        if args.rss and not cuda:
            r["peak_rss_mib"] = mem = bench_rss(name)
            print(f"{'':12s} peak RSS of a process running it: " + ", ".join(
                f"{k} {v}" if not isinstance(v, float) else f"ratio {v:.2f}x" if k == "ratio"
                else f"{k} {v:.0f} MiB" for k, v in mem.items()), flush=True)
        if cuda and args.gpu_memory:
            try:
                mem = bench_gpu_memory(name, libs, args.device)
                r["gpu_peak_mib"] = mem
                print(f"{'':12s} peak GPU memory of a step: " + ", ".join(
                    f"{k} {v:.1f} MiB" if k != "ratio" else f"ratio {v:.2f}x"
                    for k, v in mem.items()), flush=True)
            except Exception as exc:
                print(f"{'':12s} GPU memory measurement FAILED: {type(exc).__name__}: {exc}",
                      flush=True)
    if args.json:
        print(json.dumps({"machine": machine_line(args.threads), "results": results}))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        lib_name, name, device, threads, warmup, ftz = sys.argv[2:8]
        sys.exit(_worker(lib_name, name, device, int(threads), float(warmup), ftz == "1"))
    sys.exit(main())

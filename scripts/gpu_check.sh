#!/usr/bin/env bash
# The GPU check, in one run on a machine with an NVIDIA GPU, CuPy and PyTorch (CUDA) already
# installed and no network. From the repository root:
#
#     OUT=/some/dir bash scripts/gpu_check.sh        # logs go to $OUT (default ./gpu_check_out)
#
# Parts, in order, each under its own `timeout` so that one slow part cannot eat the others'
# time: the whole run keeps to BUDGET seconds (default 540); each part may use what is left
# after the shares of the parts after it are set aside (so time a part leaves unused goes to
# the later ones), and at most its own cap:
#   0. versions: nvidia-smi, CuPy/CUDA/cuDNN, torch; a cuDNN self-test in a child process
#      (if it fails or crashes, LANTERN_CUDNN=0 for the rest, so conv falls back to im2col)
#   1. tests/test_cuda_kernels.py           fused kernels, cuDNN, devices, streams, memory
#   2. tests/test_cuda_agreement.py         CPU-vs-GPU agreement over the op tables + training
#   3. pytest --device cuda on the core suites (only the tests that take the `device`
#      fixture or carry the `cuda` mark: the rest would just rerun on the CPU)
#   4. scripts/dist_check.py with backend nccl, one rank per GPU under the distributed
#      extra's mpiexec (collectives against NumPy, DDP against whole-batch steps); skipped
#      with a line saying why when mpi4py/mpiexec are not installed
#   5. bench/run.py --device cuda: resnet18 resnet18_amp transformer_gpu unet3d, Lantern vs
#      torch, with the peak GPU memory of a step of each (--gpu-memory)
# The last lines printed are a summary of every part (also in $OUT/summary.txt).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
BUDGET="${BUDGET:-540}"          # seconds for the whole run
# shares kept for the later parts (seconds): kernel tests, agreement, --device cuda, bench
S_KERNEL=70 S_AGREE=110 S_SUITE=140 S_BENCH="${S_BENCH:-180}"
PY="${PYTHON:-python}"
START=$SECONDS
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

note() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $(( BUDGET - (SECONDS - START) )); }
# cap for a part: min(its own cap, what is left after keeping `reserve` for later parts)
cap() {
    local want=$1 reserve=$2 l
    l=$(( $(left) - reserve ))
    (( l < want )) && want=$l
    (( want < 10 )) && want=10
    echo "$want"
}
# run NAME SECONDS CMD...: SIGINT at the limit (pytest then prints what it has), kill 15 s on
run() {
    local name=$1 secs=$2; shift 2
    local t0=$SECONDS rc
    echo "=== $name (limit ${secs}s): $*" | tee -a "$OUT/$name.log"
    timeout -s INT -k 15 "$secs" "$@" >> "$OUT/$name.log" 2>&1
    rc=$?
    local status="rc=$rc"
    (( rc == 124 || rc == 130 || rc == 137 )) && status="rc=$rc (TIMED OUT at ${secs}s)"
    note "--- $name: $status, $(( SECONDS - t0 ))s"
    # pytest's closing line, or the last lines of other tools
    grep -E "^(=+ )?[0-9]+ (passed|failed|error|skipped|deselected)|(passed|failed).* in [0-9.]+s" \
        "$OUT/$name.log" | tail -1 | sed 's/^/    /' | tee -a "$SUMMARY"
    local nf
    nf=$(grep -cE "^(FAILED|ERROR) " "$OUT/$name.log")
    if (( nf > 0 )); then
        note "    $nf failed/erroring tests (first 25; full list in $name.log):"
        grep -E "^(FAILED|ERROR) " "$OUT/$name.log" | head -25 | cut -c1-220 \
            | sed 's/^/      /' | tee -a "$SUMMARY"
    fi
    return 0
}

# ---------------------------------------------------------------------------- 0. versions
{
    echo "date: $(date -u)"
    nvidia-smi || echo "nvidia-smi failed"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv || true
    "$PY" - <<'EOF'
import platform, sys
print("python", platform.python_version(), sys.executable)
try:
    import cupy as cp
    print("cupy", cp.__version__, "| CUDA runtime", cp.cuda.runtime.runtimeGetVersion(),
          "| driver", cp.cuda.runtime.driverGetVersion(), "| devices",
          cp.cuda.runtime.getDeviceCount())
    try:
        from cupy.cuda import nvrtc
        print("nvrtc", nvrtc.getVersion())
    except Exception as exc:
        print("nvrtc unavailable:", exc)
except Exception as exc:
    print("cupy unavailable:", type(exc).__name__, exc)
try:
    import torch
    print("torch", torch.__version__, "| cuda", torch.version.cuda, "| cudnn",
          torch.backends.cudnn.version(), "| gpus", torch.cuda.device_count())
except Exception as exc:
    print("torch unavailable:", exc)
import framework
from framework import _cudnn
print("framework.cuda.is_available():", framework.cuda.is_available(),
      "| device_count:", framework.cuda.device_count())
print("cudnn:", _cudnn.describe())
EOF
} > "$OUT/versions.log" 2>&1
cat "$OUT/versions.log"
note "=== GPU check, budget ${BUDGET}s; logs in $OUT"
grep -E "^(cupy|torch|cudnn|framework)" "$OUT/versions.log" | tee -a "$SUMMARY"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    | sed 's/^/gpu: /' | tee -a "$SUMMARY"

run cudnn_selftest "$(cap 40 $((S_KERNEL + S_AGREE + S_SUITE + S_BENCH)))" \
    "$PY" -c "from framework import _cudnn; print(_cudnn.selftest())"
if ! grep -q -- "-D/g1 ok" "$OUT/cudnn_selftest.log"; then
    export LANTERN_CUDNN=0
    note "    cuDNN self-test did not pass: LANTERN_CUDNN=0 for the rest (im2col convolutions)"
else
    tail -1 "$OUT/cudnn_selftest.log" | sed 's/^/    /' | tee -a "$SUMMARY"
fi

# ---------------------------------------------------------------------------- 1-2. new tests
PYTEST=("$PY" -m pytest -p no:cacheprovider -q -rfE)
run kernel_tests "$(cap 150 $((S_AGREE + S_SUITE + S_BENCH)))" \
    "${PYTEST[@]}" tests/test_cuda_kernels.py
run agreement_tests "$(cap 250 $((S_SUITE + S_BENCH)))" \
    "${PYTEST[@]}" tests/test_cuda_agreement.py

# ---------------------------------------------------------------------------- 3. --device cuda
# A throwaway plugin that keeps only the tests that take the `device` fixture (or carry the
# `cuda` mark), so the CPU-only tests of these files are not run again here.
PLUG="$OUT/plugin"
mkdir -p "$PLUG"
cat > "$PLUG/lantern_device_only.py" <<'EOF'
def pytest_collection_modifyitems(config, items):
    if config.getoption("--device") != "cuda":
        return
    keep, drop = [], []
    for it in items:
        uses = "device" in getattr(it, "fixturenames", ()) or it.get_closest_marker("cuda")
        (keep if uses else drop).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
EOF
CORE=(tests/test_ops.py tests/test_nn_modules.py tests/test_optim.py tests/test_functional.py
      tests/test_autograd.py tests/test_tensor.py tests/test_amp.py tests/test_serialization.py
      tests/test_data.py)
OLD_PYTHONPATH="${PYTHONPATH:-}"
export PYTHONPATH="$PLUG${OLD_PYTHONPATH:+:$OLD_PYTHONPATH}"
run cuda_suite "$(cap 400 "$S_BENCH")" \
    "${PYTEST[@]}" -p lantern_device_only --device cuda "${CORE[@]}"
export PYTHONPATH="$OLD_PYTHONPATH"

# ---------------------------------------------------------------------------- 4. NCCL
MPIEXEC="$(dirname "$(command -v "$PY")")/mpiexec"
[[ -x "$MPIEXEC" ]] || MPIEXEC="$(command -v mpiexec || true)"
NGPU=$("$PY" -c "import framework; print(framework.cuda.device_count())" 2>/dev/null || echo 0)
if [[ -n "$MPIEXEC" ]] && "$PY" -c "import mpi4py" 2>/dev/null && (( NGPU > 0 )); then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
        run nccl "$(cap 90 "$S_BENCH")" "$MPIEXEC" -n "$NGPU" --oversubscribe \
        "$PY" scripts/dist_check.py --backend nccl --device cuda
    grep -E "^rank|dist check ok|Error" "$OUT/nccl.log" | head -8 | sed 's/^/    /' \
        | tee -a "$SUMMARY"
else
    note "--- nccl: skipped (needs mpi4py and mpiexec: pip install -e '.[distributed]'; GPUs: $NGPU)"
fi

# ---------------------------------------------------------------------------- 5. benchmark
run bench "$(cap 600 5)" \
    "$PY" bench/run.py --device cuda -w resnet18 resnet18_amp transformer_gpu unet3d \
    --repeats 5 --min-time 0.3 --warmup-time 1.0 --gpu-memory
grep -E "^(gpu|machine):|ms/step|FAILED|peak GPU memory" "$OUT/bench.log" \
    | sed 's/^/    /' | tee -a "$SUMMARY"

note "=== done in $(( SECONDS - START ))s"
echo
echo "================ SUMMARY ================"
cat "$SUMMARY"

"""`lantern demo`: Lantern's main job. Each application trains and evaluates briefly on its
embedded data (vision: scikit-learn's digits; text: rotten-tomatoes; rl: CartPole; mri: the
MNI152 brain template, from DICOM to DICOM SEG), through the same commands a user types; then
a summary table, and a self-contained HTML report with the curves, confusion matrices, sample
predictions, a GIF of the trained agent and MRI segmentation overlays in the output folder.

    lantern demo                      # a few minutes on 2 CPU cores
    lantern demo --quick              # CI-sized: fewer epochs
    lantern demo --only vision --out runs/demo --device cuda
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from apps.common.cli import HelpFormatter, check_device, run_command


class RawHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The description's example lines as written, and the flags' defaults."""
from apps.common.files import write_json
from apps.common.system import machine_line

from .report import write_report
from .stages import STAGES, Context, StageError, StageSkipped

__all__ = ["add_parser", "run_demo", "main"]


def add_parser(sub, name: str = "demo", help_: str = "") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=__doc__, formatter_class=RawHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer epochs (CI-sized)")
    p.add_argument("--only", nargs="+", choices=list(STAGES), metavar="APP",
                   help=f"run only these stages ({', '.join(STAGES)})")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed for every RNG")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(func=run_demo)
    return p


def run_demo(args) -> int:
    from apps.cli import main as lantern
    device = check_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, args.quick, device, args.seed, lantern)
    names = args.only or list(STAGES)
    results, failures, skipped = [], [], []
    t0 = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}: {STAGES[name].__doc__.splitlines()[0]}", flush=True)
        try:
            r = STAGES[name](ctx)
        except StageError as exc:   # the other stages still run; the exit code says it
            failures.append(f"{name}: {exc}")
            print(f"[{i}/{len(names)}] {name} FAILED: {exc}", file=sys.stderr, flush=True)
            continue
        except StageSkipped as exc:
            skipped.append(f"{name}: {exc}")
            print(f"[{i}/{len(names)}] {name} skipped: {exc}", file=sys.stderr, flush=True)
            continue
        results.append(r)
        print(f"[{i}/{len(names)}] {name}: {r.metric} {r.value:.4g} ({r.seconds:.1f} s)",
              flush=True)
    wall = time.perf_counter() - t0
    machine = machine_line(device)
    report = write_report(out / "report.html", results, machine=machine, wall_seconds=wall,
                          failures=failures, skipped=skipped)
    write_json(out / "metrics.json", {
        "stages": {r.app: {"model": r.model, "data": r.data, r.metric.lower().replace(" ", "_"):
                           r.value, "seconds": round(r.seconds, 2)} for r in results},
        "failures": failures, "skipped": skipped, "seconds": round(wall, 2), "machine": machine})
    width = max(len(r.app) for r in results) if results else 5
    print(f"\n{'app':<{width}}  {'model':<14} {'metric':<15} {'value':>7} {'time':>8}")
    for r in results:
        print(f"{r.app:<{width}}  {r.model:<14} {r.metric:<15} {r.value:>7.4g} "
              f"{r.seconds:>7.1f}s")
    print(f"\nwall time {wall:.1f} s on {machine}\nreport: {report}")
    return 1 if failures else 0


def main(argv=None) -> int:
    """The `lantern-demo` script: `lantern demo` on its own."""
    parser = argparse.ArgumentParser(prog="lantern-demo")
    sub = parser.add_subparsers(dest="group")
    add_parser(sub)
    args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())

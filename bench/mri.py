"""Sliding-window inference of one whole MRI volume: Lantern's `models.mri.
sliding_window_inference` next to MONAI's `sliding_window_inference` with PyTorch, on the same
3D U-Net with the same weights and settings, each in its own process (MONAI lives in another
environment: it is a comparison, never a dependency).

    python bench/mri.py --monai-python /path/to/venv-with-monai/bin/python --threads 2

The volume is the MNI ICBM152 T1 at 1 mm (197x233x189, the hub's mni152 source), normalised
as `lantern mri` does. Reported: seconds per case (median of --repeats), peak RSS of each
process, and the largest difference between the two blended outputs (the same network and
Gaussian blending should agree to float32 rounding).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def build_unet3d(lib, channels=(8, 16, 32, 64), classes=2):
    """A 3D U-Net written once against the torch API (two 3^3 conv + instance norm + leaky
    ReLU per level, max pool 2, transposed-conv upsampling, skip concatenations)."""
    nn = lib.nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True),
                             nn.LeakyReLU(0.01), nn.Conv3d(cout, cout, 3, padding=1),
                             nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = channels
            self.down = nn.ModuleList([block(1 if i == 0 else c[i - 1], c[i])
                                       for i in range(len(c))])
            self.pool = nn.MaxPool3d(2)
            self.up = nn.ModuleList([nn.ConvTranspose3d(c[i], c[i - 1], 2, stride=2)
                                     for i in range(len(c) - 1, 0, -1)])
            self.dec = nn.ModuleList([block(2 * c[i - 1], c[i - 1])
                                      for i in range(len(c) - 1, 0, -1)])
            self.head = nn.Conv3d(c[0], classes, 1)

        def forward(self, x):
            skips = []
            for i, blk in enumerate(self.down):
                x = blk(x if i == 0 else self.pool(x))
                skips.append(x)
            for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
                x = dec(lib.cat([up(x), skip], dim=1))
            return self.head(x)
    return UNet()


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _time_runs(run, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    return times, out


def run_lantern(work: Path, args) -> dict:
    import framework as fw
    from models.mri import sliding_window_inference
    fw.set_num_threads(args.threads)
    fw.manual_seed(0)
    net = build_unet3d(fw, tuple(args.channels)).eval()
    np.savez(work / "weights.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    image = np.load(work / "image.npy")
    x = fw.tensor(image[None, None])
    with fw.no_grad():
        sliding_window_inference(x[..., :64, :64, :64], args.roi, args.sw_batch_size, net,
                                 overlap=args.overlap, mode="gaussian")   # warm-up
        times, out = _time_runs(lambda: sliding_window_inference(
            x, args.roi, args.sw_batch_size, net, overlap=args.overlap, mode="gaussian"),
            args.repeats)
    np.save(work / "lantern_out.npy", out.numpy())
    return {"seconds": times, "peak_rss_mib": _peak_rss_mib(), "version": fw.__version__}


def run_monai(work: Path, args) -> dict:
    import monai
    import torch
    from monai.inferers import sliding_window_inference
    torch.set_num_threads(args.threads)
    net = build_unet3d(torch, tuple(args.channels)).eval()
    weights = np.load(work / "weights.npz")
    net.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
    x = torch.from_numpy(np.load(work / "image.npy")[None, None])
    with torch.no_grad():
        sliding_window_inference(x[..., :64, :64, :64], args.roi, args.sw_batch_size, net,
                                 overlap=args.overlap, mode="gaussian")
        times, out = _time_runs(lambda: sliding_window_inference(
            x, args.roi, args.sw_batch_size, net, overlap=args.overlap, mode="gaussian"),
            args.repeats)
    np.save(work / "monai_out.npy", out.numpy())
    return {"seconds": times, "peak_rss_mib": _peak_rss_mib(),
            "version": f"monai {monai.__version__}, torch {torch.__version__}"}


def prepare(work: Path, crop: int | None) -> tuple[int, ...]:
    from datasets.mri import load_tissue_template
    from datasets.mri.transforms import NormalizeIntensity
    template = load_tissue_template(None)                     # 1 mm, as shipped
    image = template.image.array[None].astype(np.float32)
    image = NormalizeIntensity((0.5, 99.5), nonzero=True)({"image": image})["image"][0]
    if crop:   # a centred cube, for a quick run
        image = image[tuple(slice(max(0, (s - crop) // 2), max(0, (s - crop) // 2) + crop)
                            for s in image.shape)]
    np.save(work / "image.npy", np.ascontiguousarray(image, dtype=np.float32))
    return image.shape


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--monai-python", help="a Python with monai and torch installed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--roi", type=int, nargs=3, default=[64, 64, 64])
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--sw-batch-size", type=int, default=4)
    ap.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--crop", type=int, help="a centred cube of this size instead of the whole "
                                             "volume (a quick check)")
    ap.add_argument("--role", choices=("lantern", "monai"), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role:
        work = Path(args.work)
        result = (run_lantern if args.role == "lantern" else run_monai)(work, args)
        (work / f"{args.role}.json").write_text(json.dumps(result))
        return 0

    sys.path.insert(0, str(HERE))
    from run import machine_line   # noqa: E402 - bench/ is not a package
    # OPENBLAS_THREAD_TIMEOUT: what `import framework` sets (framework/_runtime.py), given
    # to the torch workers too so that both libraries run with the same OpenBLAS setting
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT", "16"),
           "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["--threads", str(args.threads), "--roi", *map(str, args.roi), "--overlap",
              str(args.overlap), "--sw-batch-size", str(args.sw_batch_size), "--channels",
              *map(str, args.channels), "--repeats", str(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shape = prepare(work, args.crop)
        print("machine:", machine_line(args.threads))
        print(f"volume {'x'.join(map(str, shape))} (MNI152 T1, 1 mm{', cropped' if args.crop else ''}); U-Net channels "
              f"{args.channels}; roi {args.roi}, overlap {args.overlap}, Gaussian blending, "
              f"{args.sw_batch_size} windows per batch", flush=True)
        results = {}
        roles = [("lantern", sys.executable)] + ([("monai", args.monai_python)]
                                                 if args.monai_python else [])
        for role, python in roles:
            subprocess.run([python, __file__, "--role", role, "--work", tmp, *common], env=env,
                           check=True)
            results[role] = json.loads((work / f"{role}.json").read_text())
            r = results[role]
            print(f"{role:8s} {np.median(r['seconds']):7.2f} s per case (runs "
                  f"{', '.join(f'{t:.2f}' for t in r['seconds'])}), peak RSS "
                  f"{r['peak_rss_mib']:.0f} MiB; {r['version']}", flush=True)
        if "monai" in results:
            a, b = np.load(work / "lantern_out.npy"), np.load(work / "monai_out.npy")
            ratio = np.median(results["lantern"]["seconds"]) / np.median(results["monai"]["seconds"])
            brain = np.load(work / "image.npy") != 0
            diff = np.abs(a - b)[0].max(axis=0)
            same = (a.argmax(1) == b.argmax(1))[0]
            print(f"ratio Lantern / MONAI: {ratio:.2f}x time, "
                  f"{results['lantern']['peak_rss_mib'] / results['monai']['peak_rss_mib']:.2f}x "
                  f"peak RSS; outputs differ by at most {diff[brain].max():.2e} inside the "
                  f"brain and {diff.max():.2e} anywhere (logits up to {np.abs(b).max():.2f}); "
                  f"the labels agree on {same[brain].mean():.4%} of the brain's voxels and "
                  f"{same.mean():.4%} of all")
            # Outside the head a window can be all zeros: instance norm of a constant
            # divides rounding noise by sqrt(eps), so the two libraries' logits part there
            # (the application segments only the nonzero region's bounding box).
    return 0


if __name__ == "__main__":
    sys.exit(main())

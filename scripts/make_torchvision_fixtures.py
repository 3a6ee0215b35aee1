"""Write tests/fixtures/torchvision_transforms.npz: torchvision's functional image ops on small
deterministic images, so tests/vision/test_vision_transforms.py can check Lantern's kernels
without torchvision.

Run with an interpreter that has torch + torchvision (nothing from this project is imported):

    /path/to/venv/bin/python scripts/make_torchvision_fixtures.py   # writes into tests/fixtures/

The archive holds
  in/<name>        the input images (HWC or HW uint8; CHW float32 for the tensor ops)
  out/<case>       torchvision's output for each case (PIL results as uint8 arrays, tensors as
                   float32 arrays)
  cases            a JSON string: [{"name", "op", "input", "args"}, ...] where `op` is the name of
                   the torchvision.transforms.functional function and `args` its keyword arguments
                   (interpolation as its string value, tensors as nested lists)
  versions         a JSON string with the torch / torchvision / Pillow versions used
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torchvision_transforms.npz"


def make_inputs() -> dict[str, np.ndarray]:
    """A 23x31 RGB image with gradients, a checkerboard and a diagonal stripe (so flips,
    rotations and hue shifts are all visible), its luma as a grayscale image, and a portrait
    (31x23) copy for the shorter-side resize rule."""
    y, x = np.mgrid[0:23, 0:31]
    r = (x * 255 // 30).astype(np.uint8)
    g = (y * 255 // 22).astype(np.uint8)
    b = np.where((x // 4 + y // 4) % 2 == 0, 40, 210).astype(np.uint8)
    b[np.abs(x - y - 4) <= 1] = 255
    rgb = np.stack([r, g, b], axis=-1)
    gray = ((x * 7 + y * 5) % 256).astype(np.uint8)
    gray[5:9, 10:20] = 250
    return {"rgb": rgb, "gray": gray, "tall": np.ascontiguousarray(rgb.transpose(1, 0, 2))}


def cases() -> list[dict]:
    c: list[dict] = []

    def add(name, op, inp, **args):
        c.append({"name": name, "op": op, "input": inp, "args": args})

    for mode in ("nearest", "bilinear", "bicubic"):
        for inp in ("rgb", "gray", "tall"):
            add(f"resize_short15_{mode}_{inp}", "resize", inp, size=15, interpolation=mode)
        add(f"resize_up40_{mode}_rgb", "resize", "rgb", size=40, interpolation=mode)
        add(f"resize_hw_{mode}_rgb", "resize", "rgb", size=[10, 17], interpolation=mode)
    add("resize_maxsize_rgb", "resize", "rgb", size=[15], max_size=18, interpolation="bilinear")
    add("resize_same_rgb", "resize", "rgb", size=23, interpolation="bilinear")
    add("resize_box_rgb", "resize", "rgb", size=[9, 13], interpolation="box")
    add("resize_lanczos_gray", "resize", "gray", size=[30, 50], interpolation="lanczos")
    for hw in ([11, 13], [23, 31], [30, 40], [25, 20], [10, 36]):
        for inp in ("rgb", "gray"):
            add(f"center_crop_{hw[0]}x{hw[1]}_{inp}", "center_crop", inp, output_size=hw)
    add("center_crop_int_rgb", "center_crop", "rgb", output_size=12)
    add("crop_inside_rgb", "crop", "rgb", top=2, left=3, height=10, width=12)
    add("crop_outside_rgb", "crop", "rgb", top=-2, left=-3, height=10, width=40)
    add("pad_const_rgb", "pad", "rgb", padding=3, fill=7, padding_mode="constant")
    add("pad_const_tuplefill_rgb", "pad", "rgb", padding=[1, 2, 3, 4], fill=[10, 20, 30])
    add("pad_edge_rgb", "pad", "rgb", padding=[2, 5], padding_mode="edge")
    add("pad_reflect_rgb", "pad", "rgb", padding=[1, 2, 3, 4], padding_mode="reflect")
    add("pad_symmetric_gray", "pad", "gray", padding=[4, 3, 2, 1], padding_mode="symmetric")
    add("pad_negative_edge_rgb", "pad", "rgb", padding=[-2, 1, 3, -1], padding_mode="edge")
    add("pad_const_gray", "pad", "gray", padding=[2], fill=99)
    for inp in ("rgb", "gray"):
        add(f"hflip_{inp}", "hflip", inp)
        add(f"vflip_{inp}", "vflip", inp)
    add("rotate_30_nearest_rgb", "rotate", "rgb", angle=30.0)
    add("rotate_30_bilinear_expand_rgb", "rotate", "rgb", angle=30.0, interpolation="bilinear",
        expand=True)
    add("rotate_m45_center_fill_rgb", "rotate", "rgb", angle=-45.0, interpolation="bilinear",
        center=[5, 7], fill=[10, 20, 30])
    add("rotate_90_expand_gray", "rotate", "gray", angle=90.0, expand=True)
    add("rotate_17_bicubic_gray", "rotate", "gray", angle=17.0, interpolation="bicubic", fill=200)
    add("affine_nearest_rgb", "affine", "rgb", angle=20.0, translate=[2, -3], scale=0.9,
        shear=[10.0, 5.0])
    add("affine_bilinear_fill_rgb", "affine", "rgb", angle=-33.0, translate=[-4, 1], scale=1.2,
        shear=[-7.0, 12.0], interpolation="bilinear", fill=[255, 0, 128])
    add("affine_shear_only_gray", "affine", "gray", angle=0.0, translate=[0, 0], scale=1.0,
        shear=[25.0, 0.0], interpolation="bilinear", fill=50)
    add("affine_center_gray", "affine", "gray", angle=45.0, translate=[1, 2], scale=0.8,
        shear=[0.0, 0.0], center=[3, 4])
    for f in (0.0, 0.5, 1.7):
        add(f"brightness_{f}_rgb", "adjust_brightness", "rgb", brightness_factor=f)
    add("brightness_1.3_gray", "adjust_brightness", "gray", brightness_factor=1.3)
    for f in (0.0, 0.3, 1.8):
        add(f"contrast_{f}_rgb", "adjust_contrast", "rgb", contrast_factor=f)
    add("contrast_0.6_gray", "adjust_contrast", "gray", contrast_factor=0.6)
    for f in (0.0, 0.5, 2.0):
        add(f"saturation_{f}_rgb", "adjust_saturation", "rgb", saturation_factor=f)
    add("saturation_0.5_gray", "adjust_saturation", "gray", saturation_factor=0.5)
    for f in (-0.5, -0.3, 0.1, 0.45):
        add(f"hue_{f}_rgb", "adjust_hue", "rgb", hue_factor=f)
    add("hue_0.2_gray", "adjust_hue", "gray", hue_factor=0.2)
    add("grayscale1_rgb", "rgb_to_grayscale", "rgb", num_output_channels=1)
    add("grayscale3_rgb", "rgb_to_grayscale", "rgb", num_output_channels=3)
    add("blur_5_rgb", "gaussian_blur", "rgb", kernel_size=[5, 5], sigma=[1.2, 1.2])
    add("blur_3x7_rgb", "gaussian_blur", "rgb", kernel_size=[3, 7], sigma=[0.8, 1.5])
    add("blur_default_sigma_gray", "gaussian_blur", "gray", kernel_size=[9, 9])
    add("to_tensor_rgb", "to_tensor", "rgb")
    add("to_tensor_gray", "to_tensor", "gray")
    add("normalize_rgb", "normalize", "rgb_chw", mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225])
    add("normalize_gray", "normalize", "gray_chw", mean=[0.1307], std=[0.3081])
    add("erase_vector_rgb", "erase", "rgb_chw", i=2, j=3, h=5, w=7, v=[[[0.1]], [[0.2]], [[0.3]]])
    add("erase_scalar_rgb", "erase", "rgb_chw", i=10, j=20, h=13, w=11, v=[[[0.0]]])
    add("resized_crop_bilinear_rgb", "resized_crop", "rgb", top=3, left=4, height=12, width=15,
        size=[20, 20], interpolation="bilinear")
    add("resized_crop_bicubic_gray", "resized_crop", "gray", top=0, left=5, height=23, width=17,
        size=[8], interpolation="bicubic")
    return c


def run_case(case: dict, inputs: dict[str, np.ndarray]) -> np.ndarray:
    args = dict(case["args"])
    if "interpolation" in args:
        args["interpolation"] = InterpolationMode(args["interpolation"])
    x = inputs[case["input"]]
    if case["op"] in ("normalize", "erase"):
        if "v" in args:
            args["v"] = torch.tensor(args["v"], dtype=torch.float32)
        return getattr(TF, case["op"])(torch.from_numpy(x.copy()), **args).numpy()
    out = getattr(TF, case["op"])(Image.fromarray(x), **args)
    return out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)


def main() -> None:
    inputs = make_inputs()
    for name in ("rgb", "gray"):
        inputs[f"{name}_chw"] = TF.to_tensor(Image.fromarray(inputs[name])).numpy()
    arrays = {f"in/{k}": v for k, v in inputs.items()}
    all_cases = cases()
    for case in all_cases:
        arrays[f"out/{case['name']}"] = run_case(case, inputs)
    arrays["cases"] = np.array(json.dumps(all_cases))
    arrays["versions"] = np.array(json.dumps({"torch": torch.__version__,
                                              "torchvision": torchvision.__version__,
                                              "Pillow": PIL.__version__}))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(all_cases)} cases)")


if __name__ == "__main__":
    main()

"""Digits: what closes the SNN-vs-FP32 gap at T = 8? QCFS levels L x bias calibration.

  python benchmarks/digits_ablation.py --out runs/ablation_digits

Trains the digits QCFS CNN for each L (same recipe as configs/digits_qcfs.toml
otherwise) and its FP32 twin once, converts, optionally bias-calibrates on 512
training images, and reports SNN accuracy at t = 1..8 on the test set.
"""

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from sia import run_main
from sia.convert import convert
from sia.convert.calibrate import calibrate_bias
from sia.data.registry import load_split
from sia.snn import simulate
from sia.train import evaluate, load_config, train


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ablation_digits"))
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--config-dir", type=Path, default=Path("configs"))
    args = ap.parse_args()
    x, y = load_split("digits", "test")
    xt, _ = load_split("digits", "train")
    cal = xt[torch.randperm(len(xt), generator=torch.Generator().manual_seed(0))[:512]]
    fp32 = train(load_config(args.config_dir / "digits_fp32.toml"), args.out / "fp32", progress=False)
    rows = {"fp32_dnn": evaluate(fp32.model, x, y), "runs": []}
    base = load_config(args.config_dir / "digits_qcfs.toml")
    for L in args.levels:
        cfg = dataclasses.replace(base, levels=L)
        q = train(cfg, args.out / f"qcfs_L{L}", progress=False)
        prog = convert(q.model, (1, 8, 8), name=f"digits_L{L}", timesteps=8)
        for cal_n, p in ((0, prog), (512, calibrate_bias(prog, cal, 8, progress=False))):
            acc = simulate(p, x, y, T=8).accuracy
            rows["runs"].append({"levels": L, "calibration_images": cal_n,
                                 "ann": evaluate(q.model, x, y), "snn": acc})
            print(f"L={L} calib={cal_n:3d}: ANN {100 * rows['runs'][-1]['ann']:.2f} | SNN t1..8 "
                  + " ".join(f"{100 * a:.2f}" for a in acc))
    print(f"FP32 DNN {100 * rows['fp32_dnn']:.2f}")
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    run_main(main, "digits_ablation.py")

"""Paper-scale rows on one GPU inside a fixed wall-clock budget (the `device` lease).

Runs the four full-width CIFAR-10 rows at once, one process each, on one GPU:
{VGG-11, ResNet-18} x {FP32 DNN, reduced-precision QCFS ANN}, from the committed
configs (configs/cifar10_{arch}_{fp32,qcfs}.toml) with the short-schedule overrides
below. Each row trains two epochs while the others run too, times the second, then
picks the largest epoch count that fits its share of the budget - the same for the
FP32 and QCFS twins of one network, the fewer of the two - and resumes (the count is
recorded: a shortened run, not the configs' 300-epoch recipe); or --epochs
fixes the counts. Each QCFS row is converted to an integer SNN program; the SNN is
evaluated afterwards by the golden simulator (benchmarks/cifar_snn_eval.py --program).
With --finetune-s S a QCFS row keeps S seconds of its budget for spike-aware
fine-tuning of the converted program on the GPU (sia/convert/finetune.py, distilled
from its FP32 twin when that finished), in the two stages that worked on the CPU
(docs/results.md section 2): half the time at T = 8 with the loss at t = 4 and 8, then
half at T = 4 with the loss at t = 4 and thresholds and v_init trained too. Each
stage's step count is whatever fits its half after a 10-step probe, and
OUT/<arch>_program_ft.safetensors is returned beside the converted program.

  python benchmarks/gpu_reproduce.py --data-dir DIR --out OUT --budget 450
The recorded H100 run (docs/results.md) fixed the counts from the epoch times of an
earlier attempt: --budget 190 --grace 15
  --epochs vgg11_fp32=55,vgg11_qcfs=38,resnet18_fp32=38,resnet18_qcfs=16
Next GPU session (recommended): --budget 480 --finetune-s 120.
Writes OUT/results.json, OUT/<arch>_program[_ft].safetensors and a one-line summary per row.
Run directories (checkpoints, float weights) go to --work (default /tmp/sia_gpu_runs).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROWS = ("vgg11_fp32", "vgg11_qcfs", "resnet18_fp32", "resnet18_qcfs")
# Short-schedule overrides (every other hyper-parameter comes from the config file).
SHORT = {"batch_size": 512, "lr": 0.2, "fold_lr": 0.005, "warmup_epochs": 1.0,
         "num_threads": 2}
SAFETY = 0.85            # fraction of the remaining budget the predicted epochs may use
MEASURE_EPOCHS = 2       # epochs timed before the length is fixed (budget mode)
FOLD_FRACTION = 0.1      # stage-2 (folded BN) share of the epochs, at least 1


def _cfg(row: str, data_dir: str, device: str, overrides: dict):
    """The row's committed config with the overrides, checked like any config file."""
    from sia.train.config import from_dict, load_config
    arch, kind = row.split("_")
    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "configs" / f"cifar10_{arch}_{kind}.toml")
    return from_dict({**cfg.to_dict(), **SHORT, **overrides, "data_dir": data_dir,
                      "device": device})


def _epochs(spec: str) -> dict:
    """--epochs: N (every row) or row=N,... -> {row: N}; 0 = fit the budget."""
    try:
        if "=" not in spec:
            return dict.fromkeys(ROWS, int(spec))
        out = {k.strip(): int(v) for k, v in (kv.split("=") for kv in spec.split(","))}
    except ValueError:
        raise SystemExit(f"--epochs {spec!r}: expected N or row=N,... (e.g. vgg11_qcfs=38)")
    bad = set(out) - set(ROWS)
    if bad:
        raise SystemExit(f"--epochs: unknown row {sorted(bad)[0]!r}; rows: {', '.join(ROWS)}")
    return out


def _agree(work: Path, row: str, twin: str, total: int, timeout: float = 300) -> int:
    """Publish this row's affordable epoch count and take min(own, twin's)."""
    tmp = work / f"{row}.total.tmp"
    tmp.write_text(str(total))
    tmp.replace(work / f"{row}.total")
    t0 = time.time()
    while not (work / f"{twin}.total").is_file():
        if time.time() - t0 > timeout:
            return total      # the twin failed or was not started: keep ours
        time.sleep(0.5)
    return min(total, int((work / f"{twin}.total").read_text()))


def child(args):
    """One row: choose the epoch count, train, convert (QCFS)."""
    import torch

    from sia.convert import convert
    from sia.program import save_program
    from sia.train import train

    t_start = time.time()
    torch.backends.cudnn.benchmark = True
    over = json.loads(args.set or "{}")
    cfg = _cfg(args.row, args.data_dir, args.device, over)
    total = _epochs(args.epochs).get(args.row, 0)
    run_dir = Path(args.work) / args.row
    measured = None
    if total <= 0:
        # Time MEASURE_EPOCHS real epochs while every row runs (epoch 1 is the LR warmup,
        # whose schedule does not depend on the length), then fix the length and resume:
        # the trainer re-derives the cosine schedule for it (metrics: schedule_changes).
        # A short probe before training under-estimated the shared GPU's epoch 2-3x.
        cfg.epochs, cfg.fold_epochs, cfg.eval_every = 10_000, 1, 10_000
        first = train(cfg, run_dir, progress=False, stop_after=MEASURE_EPOCHS)
        measured = first.metrics["epochs"][-1]["train_time_s"]
        left = args.budget - args.finetune_s * (cfg.act == "qcfs") - (time.time() - t_start)
        # less 2 epochs' time for the ~7 test evaluations (4 in training, 2 at the fold, 1 last)
        total = MEASURE_EPOCHS + int((SAFETY * left) // measured) - 2
        if args.twin:   # FP32 and QCFS twins train the same epochs: the fewer of the two
            total = _agree(Path(args.work), args.row, args.twin, total)
    if total < max(2, MEASURE_EPOCHS + 1 if measured else 2):
        raise SystemExit(f"{args.row}: no time for the epochs (measured {measured} s/epoch)")
    cfg.fold_epochs = max(1, round(FOLD_FRACTION * total))
    cfg.epochs = total - cfg.fold_epochs
    cfg.eval_every = max(1, total // 4)
    print(f"{args.row}: {cfg.epochs} + {cfg.fold_epochs} epochs"
          + (f" ({measured:.1f} s/epoch measured)" if measured else ""), flush=True)
    res = train(cfg, run_dir, progress=False, resume=measured is not None)
    m = res.metrics
    out = {"row": args.row, "measured_epoch_s": measured, "epochs": cfg.epochs,
           "fold_epochs": cfg.fold_epochs, "overrides": {**SHORT, **over}, "metrics": m,
           "wall_s": round(time.time() - t_start, 1),
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
           "torch": torch.__version__}
    if cfg.act == "qcfs":
        t0 = time.time()
        prog = convert(res.model, (3, 32, 32), name=f"{cfg.arch}_cifar10", timesteps=8, t_max=16,
                       meta={"dataset": "cifar10", "arch": cfg.arch, "width": cfg.width,
                             "levels": cfg.levels})
        path = Path(args.out) / f"{cfg.arch}_program.safetensors"
        save_program(prog, path)
        out["program"] = path.name
        out["convert_s"] = round(time.time() - t0, 1)
        if args.finetune_s > 0:
            out["finetune"] = _finetune(args, prog, cfg.arch, t_start)
    (Path(args.work) / f"{args.row}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.row}: test acc {m['test_acc']:.4f} after {cfg.epochs}+{cfg.fold_epochs} epochs, "
          f"{m['train_time_s']:.0f} s training", flush=True)


def _finetune(args, prog, arch: str, t_start: float) -> dict:
    """Spike-aware fine-tuning inside what is left of the row's budget (see the top)."""
    from sia.convert.finetune import finetune
    from sia.data.registry import load_split
    from sia.program import save_program
    from sia.train import load_trained

    teacher, twin_dir = None, Path(args.work) / (args.twin or "")
    if args.twin:   # the FP32 twin trains the same epochs faster: normally done already
        t0 = time.time()
        while not (twin_dir / "model.safetensors").is_file() and time.time() - t0 < 60:
            time.sleep(1)
        if (twin_dir / "model.safetensors").is_file():
            teacher = load_trained(twin_dir)[0]
    x, y = load_split("cifar10", "train", args.data_dir)
    common = dict(lr=0.01, teacher=teacher, device=args.device, progress=False)
    stages = [dict(T=8, loss_steps=(4, 8), **common),
              dict(T=4, loss_steps=(4,), neurons=True, **common)]
    per_step = []
    for kw in stages:                                   # probe: seconds per step
        t0 = time.time()
        finetune(prog, x, y, steps=10, **kw)
        per_step.append((time.time() - t0) / 10)
    left = args.budget - (time.time() - t_start)
    steps = [int(SAFETY * left / len(stages) / s) for s in per_step]
    if min(steps) < 20:
        return {"skipped": f"{left:.0f} s left, {', '.join(f'{s:.2f}' for s in per_step)} s/step"}
    t0, ft, acc = time.time(), prog, []
    for kw, n in zip(stages, steps):
        ft, hist = finetune(ft, x, y, steps=n, **kw)
        acc.append(sum(hist["acc"][-50:]) / len(hist["acc"][-50:]))
    path = Path(args.out) / f"{arch}_program_ft.safetensors"
    save_program(ft, path)
    return {"program": path.name, "steps": steps, "seconds": round(time.time() - t0, 1),
            "stages": [{k: v for k, v in kw.items() if k in ("T", "loss_steps", "neurons")}
                       for kw in stages],
            "distilled_from": str(twin_dir) if teacher is not None else None,
            "train_acc_last50": acc}


def parent(args):
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    rows = args.rows.split(",")
    bad = [r for r in rows if r not in ROWS]
    if bad:
        raise SystemExit(f"unknown row {bad[0]!r}; choose from {', '.join(ROWS)}")
    _epochs(args.epochs)
    t0 = time.time()
    procs = {}
    for row in rows:
        for f in (work / f"{row}.json", work / f"{row}.total"):
            f.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--row", row, "--budget", str(args.budget),
               "--data-dir", args.data_dir, "--out", str(out), "--work", str(work),
               "--device", args.device, "--epochs", str(args.epochs),
               "--finetune-s", str(args.finetune_s)]
        if args.set:
            cmd += ["--set", args.set]
        arch, kind = row.split("_")
        twin = f"{arch}_{'fp32' if kind == 'qcfs' else 'qcfs'}"
        if twin in rows:
            cmd += ["--twin", twin]
        procs[row] = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = t0 + args.budget + args.grace
    for row, p in procs.items():
        try:
            p.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            print(f"{row}: killed at the hard deadline ({args.budget + args.grace:.0f} s)")
    rows = {}
    for row, p in procs.items():
        f = work / f"{row}.json"
        if f.is_file():
            rows[row] = json.loads(f.read_text())
        else:  # keep what the killed or failed run had written per epoch
            m = work / row / "metrics.json"
            rows[row] = {"row": row, "returncode": p.returncode, "failed": True,
                         "metrics": json.loads(m.read_text()) if m.is_file() else None}
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "wall_s": round(time.time() - t0, 1), "budget_s": args.budget, "rows": rows,
           "commit": os.environ.get("SIA_COMMIT") or subprocess.run(
               ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
               cwd=Path(__file__).parent).stdout.strip() or None}
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"done in {res['wall_s']} s: " + ", ".join(
        f"{r} {v['metrics']['test_acc']:.4f}" if not v.get("failed") else f"{r} FAILED"
        for r, v in rows.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/sia_gpu_runs")
    ap.add_argument("--budget", type=float, default=450, help="seconds per row, all at once")
    ap.add_argument("--grace", type=float, default=60, help="seconds past the budget before a kill")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", default="0",
                    help="fixed epoch count, or row=N,... per row (0 = fit the budget)")
    ap.add_argument("--set", default="", help="JSON object of extra config overrides")
    ap.add_argument("--finetune-s", type=float, default=0,
                    help="seconds of each QCFS row's budget kept for spike-aware fine-tuning")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--twin", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from sia import SiaError
    try:
        (child if args.row else parent)(args)
    except SiaError as e:   # a user mistake (missing data, bad config): one line
        raise SystemExit(f"{args.row or 'gpu_reproduce'}: {e}")


if __name__ == "__main__":
    main()

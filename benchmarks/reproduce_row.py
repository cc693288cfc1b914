"""One command per reproduction row: FP32 twin -> reduced-precision ANN -> SNN program.

    python benchmarks/reproduce_row.py configs/cifar10_resnet18_w050_qcfs_warm_kd_e20.toml \
        [--data-dir D] [--eval-out runs/eval/NAME] [--dry-run]

The QCFS config's [snn] table holds the row's recipe after training (the options of
benchmarks/cifar_snn_eval.py: bias calibration, spike-aware fine-tuning, evaluation);
`snn.twin` names the FP32 twin's config. The steps, each skipped when its result exists
(so an interrupted row resumes at the step it was in):

1. the twin: `sia train TWIN.toml --out TWIN_RUN [--set (snn.twin_set) ...]`, TWIN_RUN =
   the config's `init` / `distill.teacher` (they must agree), else runs/cifar/<twin name>;
2. the reduced-precision ANN: `sia train CONFIG.toml --out runs/cifar/<config name>`;
3. conversion, calibration, fine-tuning and the golden simulator on the whole test set:
   `python benchmarks/cifar_snn_eval.py ...` into runs/eval/<config name> (eval.json,
   program.safetensors, plots);
4. each further fine-tuning stage ([[snn.stages]]) from the previous stage's program,
   into runs/eval/<config name>_stage<k>: the last one is the row's result. A stage (or
   [snn] itself) with `signed = true` gives the program signed IF neurons first
   (`--signed`; they run on the golden simulator and on SIA builds with
   `signed_count_bits` > 0).

With `holdout = N` in the config (and the same in the twin's), every step keeps those N
training images out, and the row also ends with its gaps on them (`val_gaps`): the numbers
to look at when choosing a further stage, instead of the test set. `snn.select_T = t`
makes that choice part of the row: its program is the stage with the best held-out
accuracy at timestep t (`selected` in reproduce.json), not the last one.

Every command is printed before it runs and recorded in the last step's directory
(reproduce.json, with each T's gap to the twin; a rerun that finds every step done only
prints the result and leaves that record as it was). "Done" means the step's output file
exists, whatever recipe made it: after changing a recipe, delete that step's directory
and the later ones.
"""

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from sia import SiaError, run_main
from sia.data.holdout import check_same_holdout
from sia.provenance import git_commit
from sia.train.config import load_config
from sia.zoo import gap_points

ROOT = Path(__file__).resolve().parents[1]


def plan(config: Path, data_dir: str | None = None, eval_out: Path | None = None) -> list[dict]:
    """The row's steps: [{name, done_when (a file), command (argv)}], from its config."""
    cfg = load_config(config)        # a missing or malformed file: a one-line error
    config = config.resolve()
    if not cfg.snn:
        raise SiaError(f"{config} has no [snn] table (the row's conversion and fine-tuning "
                       "recipe): it is not a reproduction row")
    snn = cfg.snn
    twin_cfg = _abs(Path(snn["twin"]))
    if not twin_cfg.is_file():
        raise SiaError(f"snn.twin: no such config file: {twin_cfg}")
    twin = load_config(twin_cfg, snn.get("twin_set", []))
    if twin.act != "relu":
        raise SiaError(f"snn.twin {twin_cfg} is not an FP32 (act = \"relu\") config")
    check_same_holdout(cfg.holdout, twin.holdout, "snn.twin", twin_cfg)
    refs = {cfg.init, cfg.distill.get("teacher", "")} - {""}
    if len(refs) > 1:
        raise SiaError(f"{config}: 'init' and 'distill.teacher' name different runs "
                       f"({', '.join(sorted(refs))}); the row has one FP32 twin")
    twin_run = Path(refs.pop()) if refs else Path("runs/cifar") / twin_cfg.stem
    qann_run = Path("runs/cifar") / config.stem
    out = eval_out or Path("runs/eval") / config.stem
    data = ["--data-dir", data_dir] if data_dir else []
    ev = [sys.executable, "benchmarks/cifar_snn_eval.py", "--qcfs", str(qann_run),
          "--fp32", str(twin_run), *data]
    evals = [{"name": "SNN program", "done_when": str(out / "eval.json"),
              "command": ev + ["--out", str(out), "--calibrate", str(snn.get("calibrate", 0))]
              + _stage_args(snn)}]
    for i, st in enumerate(snn.get("stages", []), 2):
        prev = Path(evals[-1]["done_when"]).parent
        o = out.with_name(f"{out.name}_stage{i}")
        evals.append({"name": f"fine-tuning stage {i}", "done_when": str(o / "eval.json"),
                      "command": ev + ["--program", str(prev / "program.safetensors"),
                                       "--out", str(o)] + _stage_args(st)})
    sia = [sys.executable, "-m", "sia.cli"]
    return [
        {"name": "fp32 twin", "done_when": str(twin_run / "model.safetensors"),
         "command": sia + ["train", _rel(twin_cfg), "--out", str(twin_run), *data]
         + [x for kv in snn.get("twin_set", []) for x in ("--set", kv)]},
        {"name": "reduced-precision ANN", "done_when": str(qann_run / "model.safetensors"),
         "command": sia + ["train", _rel(config), "--out", str(qann_run), *data]},
    ] + evals


def _stage_args(d: dict) -> list[str]:
    """cifar_snn_eval.py's options for one stage ([snn] itself or one of its stages)."""
    args = ["--T", str(d.get("T", 8)), "--finetune", str(d.get("finetune", 0)),
            "--batch-size", str(d.get("eval_batch", 64)), "--threads", str(d.get("threads", 2))]
    if d.get("finetune", 0):
        args += ["--ft-lr", str(d.get("ft_lr", 0.01)),
                 "--ft-loss-steps", ",".join(map(str, d.get("ft_loss_steps", [4, 8]))),
                 "--ft-batch", str(d.get("ft_batch", 64))]
        if "ft_T" in d:
            args += ["--ft-T", str(d["ft_T"])]
        args += [flag for key, flag in (("ft_distill", "--ft-distill"),
                                        ("ft_neurons", "--ft-neurons"),
                                        ("ft_compile", "--ft-compile")) if d.get(key)]
    if d.get("signed"):
        args.append("--signed")
    return args


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="a QCFS config with an [snn] table")
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 directory (else $SIA_CIFAR10_DIR)")
    ap.add_argument("--eval-out", type=Path, default=None,
                    help="output of step 3 (default runs/eval/<config name>)")
    ap.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    a = ap.parse_args(argv)
    steps = plan(a.config, a.data_dir, a.eval_out)
    out = _abs(Path(steps[-1]["done_when"]).parent)
    log = {"command": shlex.join(["python", "benchmarks/reproduce_row.py",
                                  *(sys.argv[1:] if argv is None else argv)]),
           "config": str(a.config), "commit": git_commit(),
           "started": time.strftime("%Y-%m-%d %H:%M"), "steps": []}
    for i, st in enumerate(steps, 1):
        done = _abs(Path(st["done_when"])).is_file()
        line = shlex.join(["python" if c == sys.executable else c for c in st["command"]])
        print(f"[{i}/{len(steps)}] {st['name']}: "
              + (f"done ({st['done_when']})" if done else line), flush=True)
        if a.dry_run or done:
            log["steps"].append({**st, "command": line, "skipped": "done" if done else "dry run"})
            continue
        t0 = time.time()
        if subprocess.run(st["command"], cwd=ROOT).returncode != 0:
            raise SiaError(f"step {i} ({st['name']}) failed; its output is above")
        log["steps"].append({**st, "command": line, "seconds": round(time.time() - t0, 1)})
    if a.dry_run:
        return
    chosen = out
    sel = load_config(a.config).snn.get("select_T")
    if sel:   # the row's program: the stage best on the held-out images, not the last one
        chosen, log["selected"] = select_stage(
            [_abs(Path(st["done_when"]).parent) for st in steps[2:]], sel)
        print(f"selected on {log['selected']['held_out_images']} held-out training images at "
              f"T={sel}: {chosen.name} (" + ", ".join(
                  f"{k}: {100 * v:.2f} %" for k, v in log["selected"]["held_out_acc"].items())
              + ")")
    res = json.loads((chosen / "eval.json").read_text())
    acc = {int(t): v for t, v in res.get("snn", {}).items()}
    log["gaps"] = gaps(acc, res["fp32_dnn"])
    val = res.get("val")    # a row with a holdout: the same gaps on the held-out images
    if val:
        log["val_gaps"] = gaps({int(t): v for t, v in val["snn"].items()}, val["fp32_dnn"])
    if any("seconds" in st for st in log["steps"]):   # a finished row's log stays as it ran
        (out / "reproduce.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"{a.config.stem}: FP32 {100 * res['fp32_dnn']:.2f} %, reduced-precision ANN "
          f"{100 * res['reduced_precision_ann']:.2f} %, SNN "
          + ", ".join(f"T={t} {100 * acc[t]:.2f} % ({g['gap']:+.2f}, target >= "
                      f"{g['target']:+.1f}: {'met' if g['met'] else 'not met'})"
                      for t, g in log["gaps"].items()) + f" -> {chosen}")
    if val:
        print(f"  on the {val['images']} held-out training images: FP32 "
              f"{100 * val['fp32_dnn']:.2f} %, SNN " + ", ".join(
                  f"T={t} ({g['gap']:+.2f}: {'met' if g['met'] else 'not met'})"
                  for t, g in log["val_gaps"].items()))


def select_stage(dirs: list[Path], t: int) -> tuple[Path, dict]:
    """(directory, record) of the stage whose SNN is best at timestep t on the held-out
    training images (ties: the earliest stage); never looks at the test set."""
    held = {}
    for d in dirs:
        val = json.loads((d / "eval.json").read_text()).get("val")
        if not val:
            raise SiaError(f"{d}/eval.json has no held-out accuracies: snn.select_T needs "
                           "a row trained with 'holdout'")
        held[d] = val["snn"][str(t)]
    best = max(dirs, key=lambda d: (held[d], -dirs.index(d)))
    return best, {"T": t, "held_out_images": val["images"], "stage": best.name,
                  "held_out_acc": {d.name: a for d, a in held.items()}}


# Issue 5's targets: the SNN within 1.5 points of its FP32 twin at T = 4, 0.5 at T = 8
TARGET_GAPS = {4: -1.5, 8: -0.5}


def gaps(snn_acc: dict, fp32_acc: float) -> dict:
    """{T: {gap (points, SNN - FP32), target, met}} for the T of TARGET_GAPS measured."""
    out = {}
    for t, target in TARGET_GAPS.items():
        if t in snn_acc:
            g = gap_points(snn_acc[t], fp32_acc)    # the verdict on the number printed
            out[t] = {"gap": g, "target": target, "met": g >= target}
    return out


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _abs(p: Path) -> Path:
    """Paths in configs and commands are relative to the repository root."""
    return p if p.is_absolute() else ROOT / p


if __name__ == "__main__":
    run_main(main, "reproduce_row.py")

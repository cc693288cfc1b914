"""Add evaluated programs to the model zoo (sia/zoo/).

Each argument is an evaluation directory written by benchmarks/cifar_snn_eval.py
(program.safetensors + eval.json) or by `sia demo` (digits_snn.safetensors +
demo.json). The entry records the measured accuracies and provenance, plus the
accuracy on the first 1000 test images, which tests/test_zoo.py re-measures.

  python benchmarks/make_zoo.py NAME=runs/eval/vgg11_w025 [NAME=DIR ...] [--data-dir D]

A program made from a zoo entry by the CLI (`sia finetune`, then `sia eval --out J` on
the full test set) is added as a further stage of that entry:

  python benchmarks/make_zoo.py NAME=PROGRAM --parent ENTRY --golden J \
      --stage-command "sia finetune ENTRY ... && sia eval ..." --stage-commit C
"""

import argparse
import json
from pathlib import Path

from sia import SiaError, run_main
from sia.data.registry import load_split
from sia.program import load_program
from sia.provenance import git_commit
from sia.snn import simulate
from sia.zoo import add_entry, index, neurons

CHECK_IMAGES = 1000


def _train_command(ev: dict) -> str:
    """How the entry's two runs were trained: one `sia train` per run when each run
    followed its config from start to end (the FP32 twin first when it is the QCFS
    run's distillation teacher); the session-1 runs were cut and resumed, which
    benchmarks/cifar_train.sh replays exactly."""
    cmds = []
    keys = ("qcfs_run", "fp32_run")
    if ev.get("config", {}).get("distill"):
        keys = keys[::-1]
    for key in keys:
        run = Path(ev[key])
        metrics = run / "metrics.json"
        cut = (not metrics.is_file() or
               json.loads(metrics.read_text()).get("schedule_changes"))
        if cut or not (Path("configs") / f"{run.name}.toml").is_file():
            return ("SIA_CIFAR10_DIR=... benchmarks/cifar_train.sh "
                    f"(run {Path(ev['qcfs_run']).name})")
        cmds.append(f"sia train configs/{run.name}.toml --out {run}")
    return "SIA_CIFAR10_DIR=... " + " && ".join(cmds)


def _stage_flags(ev: dict) -> str:
    """The cifar_snn_eval options (after --out) that reproduce an evaluation's stage."""
    ft = ev.get("finetune")
    return ((f" --T {ev['T']}" if ev.get("T", 8) != 8 else "")
            + (" --signed" if ev.get("signed") else "")
            + (f" --calibrate {ev['calibration_images']}" if ev.get("calibration_images") else "")
            + (f" --finetune {ft['steps']} --ft-lr {ft['lr']} --ft-loss-steps "
               f"{','.join(map(str, ft['loss_steps']))} --ft-batch {ft['batch']}"
               + (f" --ft-T {ft['T']}" if ft.get("T", ev.get("T", 8)) != ev.get("T", 8) else "")
               + (f" --ft-seed {ft['seed']}" if ft.get("seed") else "")
               + (" --ft-distill" if ft.get("distill") else "")
               + (f" --ft-self-distill {ft['self_distill_T']}" if ft.get("self_distill_T") else "")
               + (f" --ft-rate-teacher {ft['rate_teacher']['dir']}" if ft.get("rate_teacher") else "")
               + (" --ft-neurons" if ft.get("neurons") else "")
               + (" --ft-compile" if ft.get("compiled") else "") if ft else ""))


def _teacher_command(rt: dict) -> str:
    """The `sia teacher` command that grew a rate teacher (eval.json's record of it)."""
    return (f"sia teacher {rt['from']} --out {rt['dir']} --steps {rt['steps']} --batch {rt['batch']} "
            f"--lr {rt['lr']} --seed {rt['seed']} --label-smoothing {rt['label_smoothing']}"
            + (" --bf16" if rt.get("bf16") else "") + (" --compile" if rt.get("compiled") else "")
            + ("" if rt.get("augment", True) else " --no-augment"))


def _stage_chain(d: Path, ev: dict) -> str:
    """The cifar_snn_eval command(s) of an evaluation directory: its own stage, after the
    stages of the evaluation directory its start program came from (if any)."""
    prog = ev.get("program")
    stage = ("python benchmarks/cifar_snn_eval.py " + (f"--program {prog} " if prog else "")
             + f"--qcfs {ev['qcfs_run']} --fp32 {ev['fp32_run']} --out {d}" + _stage_flags(ev))
    rt = (ev.get("finetune") or {}).get("rate_teacher")
    if rt:   # the teacher is grown first (`sia teacher`, its recipe from teacher.json)
        stage = _teacher_command(rt) + " && " + stage
    prev = Path(prog).parent if prog else None
    if prev is not None and (prev / "eval.json").is_file():
        return _stage_chain(prev, json.loads((prev / "eval.json").read_text())) + " && " + stage
    return stage


def _reproduce_command(rep_file: Path) -> str:
    """The one command of benchmarks/reproduce_row.py that made this row (its log)."""
    rep = json.loads(rep_file.read_text())
    if "command" in rep:
        return rep["command"]
    config = Path(rep["config"])
    first = Path(rep["steps"][2]["done_when"]).parent       # the first SNN step's output
    extra = "" if first == Path("runs/eval") / config.stem else f" --eval-out {first}"
    return f"python benchmarks/reproduce_row.py {config}{extra}"


def _cli_stage(prog_file: Path, args) -> dict:
    """The manifest of a program that continues zoo entry --parent through the CLI: its
    references and training are the parent's, its SNN accuracies come from the `sia eval`
    JSON (--golden, the full test set), its integer ANN is measured here."""
    from sia.snn.ann import ann_predict
    missing = [o for o in ("parent", "golden", "stage_command", "stage_commit")
               if not getattr(args, o)]
    if missing:
        raise SiaError(f"{prog_file} is a program file: give --"
                         + missing[0].replace("_", "-"))
    parent = index().get(args.parent)
    if parent is None or parent.get("dataset") != "cifar10":
        raise SiaError(f"--parent {args.parent}: not a CIFAR-10 zoo entry")
    golden = json.loads(Path(args.golden).read_text())
    prog = load_program(prog_file)
    x, y = load_split("cifar10", "test", args.data_dir)
    if golden.get("data") != parent["data"] or golden.get("images") != len(y):
        raise SiaError(f"--golden {args.golden}: not the full {parent['data']} "
                         f"test set ({golden.get('images')} images of {golden.get('data')})")
    if golden.get("program") != prog.name:
        raise SiaError(f"--golden {args.golden} evaluated {golden.get('program')!r}, "
                         f"not {prog.name!r}")
    info = {k: parent[k] for k in ("epochs", "fold_epochs", "train_command", "qcfs_state",
                                   "fp32_state", "ann_measured_on") if k in parent}
    info.update(data=parent["data"], fp32_acc=parent["fp32_acc"],
                reduced_precision_ann_acc=parent["reduced_precision_ann_acc"],
                integer_ann_acc=float((ann_predict(prog, x) == y).float().mean()),
                snn_acc={str(t + 1): a for t, a in enumerate(golden["accuracy"])},
                test_images=len(y), commit=args.stage_commit, parent_entry=args.parent,
                references_from=f"zoo manifest of {args.parent} (measured at commit "
                                f"{parent['commit']})",
                eval_command=f"{parent['eval_command']} && {args.stage_command}")
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("entries", nargs="+", help="NAME=EVAL_DIR")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--xz", action="store_true",
                    help="store the entry xz-compressed (.safetensors.xz, ~3x smaller)")
    ap.add_argument("--train-command", default="",
                    help="for a GPU-trained program: how it was made (recorded as given)")
    ap.add_argument("--parent", help="NAME=PROGRAM: the zoo entry it continues from")
    ap.add_argument("--golden", type=Path, help="NAME=PROGRAM: its `sia eval --out` JSON")
    ap.add_argument("--stage-command", help="NAME=PROGRAM: the commands that made it from "
                                            "--parent and evaluated it (recorded as given)")
    ap.add_argument("--stage-commit", help="NAME=PROGRAM: the commit those commands ran")
    args = ap.parse_args()
    commit = git_commit()
    for item in args.entries:
        if "=" not in item:
            raise SystemExit(f"make_zoo.py: {item!r}: give NAME=EVAL_DIR")
        name, d = item.split("=", 1)
        d = Path(d)
        ev = json.loads((d / "eval.json").read_text()) if (d / "eval.json").is_file() else None
        if d.is_file():      # a program made from a zoo entry by the CLI
            prog_file, dataset, info = d, "cifar10", _cli_stage(d, args)
        elif ev is None:     # a digits demo directory (sia demo)
            ev = json.loads((d / "demo.json").read_text())
            prog_file, dataset = d / "digits_snn.safetensors", "digits"
            info = {"data": ev["dataset"], "fp32_acc": ev["accuracy"]["fp32_dnn"],
                    "reduced_precision_ann_acc": ev["accuracy"]["reduced_precision_ann"],
                    "integer_ann_acc": ev["accuracy"]["integer_ann"],
                    "snn_acc": ev["accuracy"]["snn"], "test_images": ev["test_images"],
                    "train_command": "sia demo", "commit": commit}
        else:                # a CIFAR-10 evaluation (benchmarks/cifar_snn_eval.py)
            prog_file, dataset = d / "program.safetensors", "cifar10"
            info = {"data": ev["data"], "fp32_acc": ev["fp32_dnn"],
                    "reduced_precision_ann_acc": ev["reduced_precision_ann"],
                    # the entry's own integer ANN (older evaluations: the start program's)
                    "integer_ann_acc": ev.get("integer_ann_written", ev["integer_ann"]),
                    "snn_acc": ev["snn"], "test_images": ev["test_images"],
                    "commit": ev["commit"]}
            if "val" in ev:   # trained with a holdout: the held-out training images' numbers
                info["holdout"] = {k: ev["val"][k] for k in ("images", "fp32_dnn",
                                                              "reduced_precision_ann", "snn")}
            if "gpu_results" in ev:
                if not args.train_command:
                    raise SystemExit(f"{d}: a GPU-trained program: give --train-command (the "
                                     "gpu_reproduce command(s) that made it)")
                info.update(ann_measured_on=ev["ann_measured_on"], epochs=ev["epochs"],
                            train_command=args.train_command,
                            eval_command=f"python benchmarks/cifar_snn_eval.py --program {ev['program']} "
                                         f"--gpu-results {ev['gpu_results']} --out {d}")
            elif "parent_entry" in ev:
                # a further stage from a zoo entry: its training and earlier stages are the
                # parent's, recorded in the parent's manifest
                parent = index()[ev["parent_entry"]]
                info.update({k: parent[k] for k in ("epochs", "fold_epochs", "train_command",
                                                    "qcfs_state", "fp32_state") if k in parent})
                info.update(references_from=ev["references_from"], parent_entry=ev["parent_entry"],
                            eval_command=f"{parent['eval_command']} && python benchmarks/cifar_snn_eval.py "
                                         f"--program {ev['program']} --out {d}" + _stage_flags(ev))
            else:
                stage = _stage_chain(d, ev)
                parent = index().get(ev.get("program") or "")
                if parent:   # a further stage from a zoo entry (references from the runs)
                    stage = f"{parent['eval_command']} && {stage}"
                    info.update(parent_entry=ev["program"])
                info.update(epochs=ev["config"]["epochs"], fold_epochs=ev["config"]["fold_epochs"],
                            train_command=_train_command(ev),
                            qcfs_state=ev.get("qcfs_state"), fp32_state=ev.get("fp32_state"),
                            eval_command=stage)
                if (d / "reproduce.json").is_file():
                    info.update(reproduce_command=_reproduce_command(d / "reproduce.json"))
        prog = load_program(prog_file)
        x, y = load_split(dataset, "test", args.data_dir)
        n = min(CHECK_IMAGES, len(y))
        check = simulate(prog, x[:n], y[:n], T=prog.timesteps).accuracy
        info.update(dataset=dataset, check={"images": n, "T": prog.timesteps, "accuracy": check},
                    neurons=neurons(prog), zoo_commit=commit)
        dest = add_entry(name, prog_file, info, xz=args.xz)
        print(f"zoo: {name} -> {dest.name} ({dest.stat().st_size / 1e6:.2f} MB), "
              f"SNN@T{prog.timesteps} {info['snn_acc'][str(prog.timesteps)]:.4f} (JSON keys are strings)")


if __name__ == "__main__":
    run_main(main, "make_zoo.py")

"""CIFAR-10: FP32 DNN vs reduced-precision ANN vs SNN at T = 1..8 (golden simulator).

For each QCFS training run (and its FP32 twin), convert to an integer program,
optionally bias-calibrate it on training images, simulate the whole test set at
T = 8 (accuracy after every t comes from the same run: prediction at t does not
depend on later steps) and write JSON + program files.

  python benchmarks/cifar_snn_eval.py --qcfs runs/cifar/cifar10_vgg11_w025_qcfs \
      --fp32 runs/cifar/cifar10_vgg11_w025_fp32 --out runs/eval/vgg11_w025 [--calibrate 512] \
      [--finetune 1000]

--signed gives the program signed IF neurons before anything else (`sia signed`;
docs/semantics.md): the golden simulator runs it, the SIA does not.

--finetune N trains the (calibrated) program's integers through its own spikes for N
batches of training images (`sia finetune`) before the test-set evaluation.

--ft-distill learns from the --fp32 twin as well as the labels; --ft-self-distill T from
the starting program at T steps; --ft-rate-teacher DIR from a float teacher grown from
the program by `sia teacher` (no twin needed; eval.json records its recipe).

--program P --qcfs R --fp32 F continues from an existing program (file or zoo name; e.g.
a second fine-tuning stage) with R and F as the reference accuracies and teacher.

With a QANN trained with `holdout = N` (config key; its twin must hold out the same
images), calibration and fine-tuning draw only from the other training images, and the
golden simulator also runs the N held-out ones: eval.json's "val" block gives the SNN per
t and both references on them, for choices the test set must not make.

--program ZOO_NAME alone continues from a zoo entry whose training runs are not on this
machine: its FP32 and reduced-precision ANN accuracies are read from the entry's manifest
(same data copy required), and fine-tuning learns from labels only (no teacher).

A program converted elsewhere (benchmarks/gpu_reproduce.py on a GPU machine, which
returns programs, not float weights) is evaluated with --program; its FP32 and
reduced-precision ANN accuracies are then read from that run's results.json:
  python benchmarks/cifar_snn_eval.py --program runs/gpu_h100/vgg11_program.safetensors \
      --gpu-results runs/gpu_h100/results.json --out runs/eval/vgg11_gpu
"""

import argparse
import json
import time
from pathlib import Path

import torch

from sia import SiaError, int_list, run_main
from sia.convert import convert
from sia.convert.calibrate import calibrate_bias
from sia.convert.signed import signed_program
from sia.convert.finetune import ProgramTeacher, finetune, plot_history
from sia.convert.rate_teacher import load_teacher
from sia.data.holdout import check_same_holdout, split_training
from sia.data.registry import data_copy, load_split
from sia.program import save_program
from sia.program.resolve import resolve_program
from sia.provenance import git_commit
from sia.snn import simulate
from sia.snn.ann import ann_predict
from sia.models import build_model, fold_all_bn
from sia.train import evaluate, load_trained
from sia.train.config import from_dict


def load_run(run: Path):
    """(model, cfg, note): the final model, or (a run stopped early for lack of CPU
    time) the last epoch checkpoint, folded - and the note says which."""
    if (run / "model.safetensors").is_file():
        model, cfg = load_trained(run)
        return model, cfg, "final"
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    cfg = from_dict(ck["config"])
    model = build_model(cfg.arch, **cfg.model_kwargs())
    if ck["folded"]:
        fold_all_bn(model)
    model.load_state_dict(ck["model"])
    fold_all_bn(model)
    return model.eval(), cfg, f"checkpoint after epoch {ck['epoch']} of {cfg.epochs}+{cfg.fold_epochs}"


def _gpu_reference(path, prog) -> dict:
    """FP32 / reduced-precision ANN accuracies of the GPU rows a program came from."""
    rows = json.loads(Path(path).read_text())["rows"]
    arch = prog.meta.get("arch")
    fp32, qcfs = rows.get(f"{arch}_fp32", {}), rows.get(f"{arch}_qcfs", {})
    if qcfs.get("failed") or fp32.get("failed") or not qcfs or not fp32:
        raise SystemExit(f"{path}: no finished {arch}_fp32 and {arch}_qcfs rows")
    return {"gpu_results": str(path), "config": qcfs["metrics"]["config"],
            "epochs": {r: rows[r]["epochs"] + rows[r]["fold_epochs"] for r in (f"{arch}_fp32",
                                                                             f"{arch}_qcfs")},
            "fp32_dnn": fp32["metrics"]["test_acc"],
            "reduced_precision_ann": qcfs["metrics"]["test_acc"],
            "ann_measured_on": f"{qcfs['gpu']} (fp32 evaluation, PyTorch {qcfs['torch']})",
            "qcfs_warm_started_from_fp32": "warm_start" in qcfs["metrics"],
            "qcfs_distilled": bool(qcfs["metrics"]["config"].get("distill"))}


def _zoo_reference(name: str, data: str) -> dict:
    """FP32 / reduced-precision ANN accuracies of the zoo entry a program continues from,
    as its manifest recorded them (the float runs that measured them need not be here)."""
    from sia.zoo import index
    entry = index().get(name)
    if entry is None or entry.get("dataset") != "cifar10":
        raise SiaError(f"--program {name}: give --qcfs/--fp32 or --gpu-results for the "
                         "reference accuracies (only a CIFAR-10 zoo entry carries its own)")
    if entry["data"] != data:
        raise SiaError(f"--program {name}: its references were measured on {entry['data']}, "
                         f"this evaluation reads {data}")
    ref = {"parent_entry": name, "fp32_dnn": entry["fp32_acc"],
           "reduced_precision_ann": entry["reduced_precision_ann_acc"],
           "references_from": f"zoo manifest of {name} (measured at commit {entry['commit']})"}
    if "holdout" in entry:   # its row held training images out: keep them out here too
        ref["holdout"] = entry["holdout"]
    return ref


def plot(out: Path, name: str, res: dict) -> Path:
    """accuracy_vs_timestep.png beside eval.json: the SNN per t and the ANN references."""
    from sia.demo import accuracy_plot
    refs = {k: res[key] for k, key in (("FP32 DNN", "fp32_dnn"),
                                        ("reduced-precision ANN", "reduced_precision_ann"),
                                        ("integer ANN", "integer_ann_written"
                                         if "integer_ann_written" in res else "integer_ann"))
            if res.get(key) == res.get(key)}            # NaN: not measured
    snn = [res["snn"][t] for t in sorted(res["snn"], key=int)]
    title = f"{name} on {res['data']} ({res['test_images']} test images)"
    path = out / "accuracy_vs_timestep.png"
    accuracy_plot(path, title, snn, refs)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qcfs", type=Path)
    ap.add_argument("--fp32", type=Path)
    ap.add_argument("--program", help="evaluate (and fine-tune) this program file or zoo name "
                    "instead of converting; with --qcfs/--fp32 their runs give the references")
    ap.add_argument("--gpu-results", type=Path, help="with --program: gpu_reproduce results.json")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw OUT/accuracy_vs_timestep.png from OUT/eval.json")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--images", type=int, default=0, help="first N test images (0 = all)")
    ap.add_argument("--calibrate", type=int, default=0, help="bias-calibrate on N train images")
    ap.add_argument("--signed", action="store_true",
                    help="give the program signed IF neurons first (sia signed)")
    ap.add_argument("--finetune", type=int, default=0,
                    help="then spike-aware fine-tuning for N batches (sia/convert/finetune.py)")
    ap.add_argument("--ft-lr", type=float, default=0.01, help="fine-tuning Adam step (codes)")
    ap.add_argument("--ft-T", type=int, default=None,
                    help="fine-tuning: timesteps simulated (default --T; e.g. 4 with "
                         "--ft-loss-steps 4 trains for T = 4 and still evaluates up to --T)")
    ap.add_argument("--ft-loss-steps", default="4,8", help="fine-tuning: t in the loss")
    ap.add_argument("--ft-batch", type=int, default=64, help="fine-tuning: images per batch")
    ap.add_argument("--ft-seed", type=int, default=0,
                    help="fine-tuning: seed of the batch order (another draw of the same recipe)")
    ap.add_argument("--ft-distill", action="store_true",
                    help="fine-tuning: also distil from the --fp32 twin (alpha 0.5, T 4)")
    ap.add_argument("--ft-self-distill", type=int, default=0, metavar="T",
                    help="fine-tuning: distil from the starting program itself, frozen, "
                         "at T steps (no twin needed; e.g. 8 teaching --ft-T 4)")
    ap.add_argument("--ft-rate-teacher", type=Path, default=None, metavar="DIR",
                    help="fine-tuning: distil from a rate teacher grown from the program "
                         "(`sia teacher P --out DIR`; no twin needed)")
    ap.add_argument("--ft-neurons", action="store_true",
                    help="fine-tuning: also train thresholds and v_init")
    ap.add_argument("--ft-compile", action="store_true",
                    help="fine-tuning: torch.compile the forward (1.3x per step on CPU)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch CPU threads (1 leaves a core to other work beside it)")
    ap.add_argument("--batch-size", type=int, default=256,
                    help="images per golden-simulator batch (memory: ResNet-18 w0.5 at 256 "
                         "needs ~16 GB; the results do not depend on it)")
    args = ap.parse_args()
    if args.replot:
        f = args.out / "eval.json"
        if not f.is_file():
            raise SystemExit(f"--replot: no {f}")
        print(plot(args.out, args.out.name, json.loads(f.read_text())))
        return
    if args.ft_distill and not args.fp32:
        ap.error("--ft-distill needs --fp32 (the teacher)")
    if sum(map(bool, (args.ft_distill, args.ft_self_distill, args.ft_rate_teacher))) > 1:
        ap.error("--ft-distill, --ft-self-distill, --ft-rate-teacher: choose one teacher")
    if args.ft_self_distill < 0:
        ap.error("--ft-self-distill must be a positive T")
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    torch.set_num_threads(args.threads)

    images, labels = load_split("cifar10", "test", args.data_dir)
    if args.images:
        images, labels = images[:args.images], labels[:args.images]
    res = {"data": data_copy("cifar10", args.data_dir), "test_images": len(labels),
           "commit": git_commit()}
    runs = bool(args.qcfs and args.fp32)
    if not (runs or args.program):
        ap.error("give --qcfs and --fp32, or --program")
    holdout = 0
    if runs:   # the training runs: reference accuracies (and the teacher)
        fp32, fp32_cfg, fp32_note = load_run(args.fp32)
        qann, cfg, qcfs_note = load_run(args.qcfs)
        holdout = cfg.holdout
        check_same_holdout(holdout, fp32_cfg.holdout, "FP32 twin", args.fp32)
        res.update({"qcfs_run": str(args.qcfs), "fp32_run": str(args.fp32),
                    "config": cfg.to_dict(), "fp32_state": fp32_note, "qcfs_state": qcfs_note,
                    "fp32_dnn": evaluate(fp32, images, labels),
                    "reduced_precision_ann": evaluate(qann, images, labels)})
    if args.program:
        # an existing program (e.g. a zoo entry: a second fine-tuning stage, with the
        # runs it came from as references), or one converted on a GPU machine
        prog, name = resolve_program(str(args.program)), Path(str(args.program)).stem
        if args.calibrate or args.finetune or args.signed:   # a new stage: named by its output
            name = args.out.name
        res["program"] = str(args.program)
        if args.gpu_results:
            res.update(_gpu_reference(args.gpu_results, prog))
        elif not runs:
            ref = _zoo_reference(str(args.program), res["data"])
            zoo_val = ref.pop("holdout", None)
            res.update(ref)
            holdout = zoo_val["images"] if zoo_val else 0
    else:
        prog, name = convert(qann, (3, 32, 32), name=args.qcfs.name, timesteps=args.T,
                             t_max=max(16, args.T), meta={"dataset": "cifar10", "arch": cfg.arch,
                                                          "width": cfg.width,
                                                          "levels": cfg.levels}), args.qcfs.name
    def integer_ann(p) -> float:
        return float((ann_predict(p, images) == labels).float().mean())

    res["integer_ann"] = integer_ann(prog)
    if args.signed:   # same integers (the integer ANN above is unchanged), other neurons
        prog = signed_program(prog)
        res["signed"] = True
    if args.calibrate or args.finetune or holdout:
        (train_x, train_y), (val_x, val_y) = split_training(
            *load_split("cifar10", "train", args.data_dir), holdout)
    if args.calibrate:
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(train_x), generator=g)[:args.calibrate]
        prog = calibrate_bias(prog, train_x[pick], args.T, chunk=min(128, args.batch_size))
        res["calibration_images"] = args.calibrate
    if args.finetune:
        ls = int_list(args.ft_loss_steps, "--ft-loss-steps")
        t0 = time.time()
        teacher = None if not args.ft_distill else fp32 if runs else load_run(args.fp32)[0]
        if args.ft_self_distill:   # the program as it starts this stage, frozen
            teacher = ProgramTeacher(prog, args.ft_self_distill, compile=args.ft_compile)
        if args.ft_rate_teacher:   # grown from a program of this one's graph
            teacher = load_teacher(args.ft_rate_teacher, prog, "--ft-rate-teacher")
        ft_T = args.ft_T or args.T
        prog, hist = finetune(prog, train_x, train_y, T=ft_T, loss_steps=ls,
                              steps=args.finetune, batch_size=args.ft_batch, lr=args.ft_lr,
                              teacher=teacher, neurons=args.ft_neurons, compile=args.ft_compile,
                              seed=args.ft_seed)
        res["finetune"] = {"steps": args.finetune, "T": ft_T, "lr": args.ft_lr, "loss_steps": list(ls),
                           "seed": args.ft_seed,
                           "batch": args.ft_batch, "distill": bool(args.ft_distill),
                           "self_distill_T": args.ft_self_distill or None,
                           "rate_teacher": (None if not args.ft_rate_teacher else
                                            {"dir": str(args.ft_rate_teacher), **teacher.info}),
                           "neurons": bool(args.ft_neurons), "compiled": bool(args.ft_compile),
                           "seconds": round(time.time() - t0, 1),
                           "temperature": hist["temperature"],
                           "train_acc_last50": sum(hist["acc"][-50:]) / len(hist["acc"][-50:])}
        args.out.mkdir(parents=True, exist_ok=True)
        plot_history(hist, args.out / "finetune.png", f"{name}: fine-tuning at T={ft_T}")
    if args.calibrate or args.finetune:   # "integer_ann" above is the program it started from
        res["integer_ann_written"] = integer_ann(prog)
    args.out.mkdir(parents=True, exist_ok=True)
    save_program(prog, args.out / "program.safetensors")
    t0 = time.time()
    sim = simulate(prog, images, labels, T=args.T, progress=True, batch_size=args.batch_size)
    res["golden_seconds"] = round(time.time() - t0, 1)
    res["T"] = args.T
    res["snn"] = {t + 1: a for t, a in enumerate(sim.accuracy)}
    res["golden"] = sim.to_json()
    if holdout:   # the held-out training images: what a choice between stages may look at
        t0 = time.time()
        vs = simulate(prog, val_x, val_y, T=args.T, progress=True, batch_size=args.batch_size)
        refs = ({"fp32_dnn": evaluate(fp32, val_x, val_y),
                 "reduced_precision_ann": evaluate(qann, val_x, val_y)} if runs else
                {k: zoo_val[k] for k in ("fp32_dnn", "reduced_precision_ann")})
        res["val"] = {"images": len(val_y), **refs,
                      "snn": {t + 1: a for t, a in enumerate(vs.accuracy)},
                      "golden_seconds": round(time.time() - t0, 1)}
    (args.out / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    plot(args.out, name, res)
    snn = " ".join(f"T{t}={100 * res['snn'][t]:.2f}" for t in (1, 2, 4, 8) if t <= args.T)
    print(f"{name}: FP32 {100 * res['fp32_dnn']:.2f} | QANN "
          f"{100 * res['reduced_precision_ann']:.2f} | int-ANN {100 * res['integer_ann']:.2f}"
          + (f" -> {100 * res['integer_ann_written']:.2f}" if "integer_ann_written" in res else "")
          + f" | SNN {snn} | golden {res['golden_seconds']}s on {res['data']}")
    if holdout:
        v = res["val"]
        print(f"{name}, {v['images']} held-out training images: FP32 {100 * v['fp32_dnn']:.2f} | "
              f"QANN {100 * v['reduced_precision_ann']:.2f} | SNN "
              + " ".join(f"T{t}={100 * v['snn'][t]:.2f}" for t in (1, 2, 4, 8) if t <= args.T))


if __name__ == "__main__":
    run_main(main, "cifar_snn_eval.py")

"""Paper-scale rows on one GPU inside a fixed wall-clock budget (the `device` lease).

One process per network ({VGG-11, ResNet-18} at full width, CIFAR-10), both at once on
the one GPU, each a pipeline inside the same budget:

1. the FP32 DNN (configs/cifar10_{arch}_fp32.toml with the short-schedule overrides
   below), for `--fp32-share` of the training time;
2. the reduced-precision QCFS ANN (configs/cifar10_{arch}_qcfs.toml) **warm-started from
   that FP32 twin** (config key `init`: its folded weights, thresholds calibrated) and
   distilled from it, in the folded stage at `--qcfs-lr`, for the rest of the training
   time;
3. conversion to an integer SNN program (OUT/<arch>_program.safetensors.xz);
4. with --finetune-s S: spike-aware fine-tuning of the program on the GPU for S seconds
   (sia/convert/finetune.py, distilled from the FP32 twin) in the stages of STAGES
   below: T = 8 (loss at t = 4, 8), then T = 4 with thresholds and v_init trained too
   (OUT/<arch>_program_ft_t4.safetensors.xz), then T = 8 again at half the step size
   (OUT/<arch>_program_ft_t8.safetensors.xz).
   With --signed the converted program gets signed IF neurons first (sia signed; its
   accuracy is recorded, its file is not written: `sia signed OUT/<arch>_program...`
   makes the same program) and is fine-tuned as such
   (OUT/<arch>_program_signed_ft_t4 / _ft_t8): on the CPU programs, signed neurons added
   *after* unsigned fine-tuning lost up to 7 points, while the signed copy fine-tuned as
   signed met both targets (docs/results/2-cifar10-cpu.md, session 25). Signed programs
   run on the golden simulator and on SIA builds with `signed_count_bits` > 0.

Each training stage times two real epochs while the other network runs too, then fixes
its length to fit its deadline and resumes (the counts are recorded: a shortened run,
not the configs' 300-epoch recipe); --epochs fixes them instead. Every program is
evaluated on the GPU by its torch twin (sia.convert.finetune.program_accuracy, the
golden simulator's integer arithmetic in float32) on the whole test set at T = 1..8;
the reference numbers come from the golden simulator afterwards:
  python benchmarks/cifar_snn_eval.py --program OUT/<arch>_program_ft_t8.safetensors.xz \
      --gpu-results OUT/results.json --out runs/eval/<arch>_gpu

  python benchmarks/gpu_reproduce.py --data-dir DIR --out OUT --budget 520 --grace 20 --finetune-s 250
(session 19's call, docs/results/6-full-width-gpu.md). --programs arch=FILE,... fine-tunes
returned programs again, labels only, for the whole budget (session 11's second call,
when the pipeline had two stages and wrote <arch>_program_ft.safetensors).

Sending it: the `device` tool copies the working tree (64 MiB at most), so the data go
as the 55 MB pack of ../shared/datasets/cifar10-jpeg75 in a carried folder, and the
zoo's program files and docs/ stay behind (session 27: the tree besides the zoo was
10.4 MB, 9.3 of them docs/, within 2 MB of the limit with the pack).
`python benchmarks/gpu_lease.py prepare` does that, counts what would travel and prints
the command (unpack, SHA256 check, this script with SIA_COMMIT set); `restore` undoes it.
Programs are written xz-compressed (~3.5 MB each at full width), so the three of each
network and results.json come back in one call: the tool returns at most 8 files from
$OUT, and a call that would write more is refused before it starts (`out_files`,
--max-files).
Session 4's run (four rows from scratch at once, no warm start) used this script as of
commit 06fa500: --budget 190 --grace 15
  --epochs vgg11_fp32=55,vgg11_qcfs=38,resnet18_fp32=38,resnet18_qcfs=16
Writes OUT/results.json, the programs above and one-line summaries.
Run directories (checkpoints, float weights) go to --work (default /tmp/sia_gpu_runs).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ARCHS = ("vgg11", "resnet18")
ROWS = tuple(f"{a}_{k}" for a in ARCHS for k in ("fp32", "qcfs"))
# Short-schedule overrides (every other hyper-parameter comes from the config file).
SHORT = {"batch_size": 512, "lr": 0.2, "fold_lr": 0.005, "warmup_epochs": 1.0,
         "num_threads": 2}
KD = {"alpha": 0.5, "temperature": 4.0}
SAFETY = 0.9             # fraction of the time left that the predicted epochs may use
MEASURE_EPOCHS = 2       # epochs timed before the length is fixed (budget mode)
FOLD_FRACTION = 0.1      # stage-2 (folded BN) share of a from-scratch run, at least 1


def _cfg(row: str, args, overrides: dict):
    """The row's committed config with the overrides, checked like any config file."""
    from sia.train.config import from_dict, load_config
    arch, kind = row.split("_")
    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "configs" / f"cifar10_{arch}_{kind}.toml")
    return from_dict({**cfg.to_dict(), **SHORT, **overrides, **json.loads(args.set or "{}"),
                      "data_dir": args.data_dir, "device": args.device})


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


def _train_row(row: str, args, deadline: float, overrides: dict) -> dict:
    """Train one row until `deadline` (or the fixed --epochs); returns its record."""
    import torch

    from sia.train import train

    t_start = time.time()
    cfg = _cfg(row, args, overrides)
    warm = bool(cfg.init)          # warm-started: the folded stage only
    total = _epochs(args.epochs).get(row, 0)
    run_dir = Path(args.work) / row
    measured = None
    if total <= 0:
        # Time MEASURE_EPOCHS real epochs under the shared load (epoch 1 of a cold run is
        # the LR warmup, whose schedule does not depend on the length), then fix the
        # length and resume: the trainer re-derives the cosine schedule for it.
        cfg.epochs, cfg.fold_epochs = (0, 10_000) if warm else (10_000, 1)
        cfg.eval_every = 10_000
        train(cfg, run_dir, progress=False, stop_after=MEASURE_EPOCHS)
        measured = max(r["train_time_s"] for r in
                       json.loads((run_dir / "metrics.json").read_text())["epochs"][1:])
        # less ~2 epochs' time for the test evaluations (4 in training, 2 at the fold, 1 last)
        total = MEASURE_EPOCHS + int((SAFETY * (deadline - time.time())) // measured) - 2
    if total < (MEASURE_EPOCHS + 1 if measured else 1):
        raise SystemExit(f"{row}: no time for the epochs (measured {measured} s/epoch)")
    if warm:
        cfg.epochs, cfg.fold_epochs = 0, total
    else:
        cfg.fold_epochs = max(1, round(FOLD_FRACTION * total))
        cfg.epochs = total - cfg.fold_epochs
    cfg.eval_every = max(1, total // 4)
    print(f"{row}: {cfg.epochs} + {cfg.fold_epochs} epochs"
          + (f" ({measured:.1f} s/epoch measured)" if measured else ""), flush=True)
    res = train(cfg, run_dir, progress=False, resume=measured is not None)
    m = res.metrics
    print(f"{row}: test acc {m['test_acc']:.4f} after {cfg.epochs}+{cfg.fold_epochs} epochs, "
          f"{m['train_time_s']:.0f} s training", flush=True)
    return {"row": row, "measured_epoch_s": measured, "epochs": cfg.epochs,
            "fold_epochs": cfg.fold_epochs, "overrides": {**SHORT, **overrides},
            "metrics": m, "wall_s": round(time.time() - t_start, 1),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
            "torch": torch.__version__, "model": res.model, "run_dir": str(run_dir)}


def child(args):
    """One network's pipeline (see the top); writes WORK/<arch>.json."""
    import torch

    torch.backends.cudnn.benchmark = True
    t0, arch, work = time.time(), args.arch, Path(args.work)
    rec = {"arch": arch}

    def dump():
        keep = {k: ({kk: vv for kk, vv in v.items() if kk != "model"} if isinstance(v, dict) else v)
                for k, v in rec.items()}
        (work / f"{arch}.json").write_text(json.dumps(keep, indent=1) + "\n")

    try:
        (_finetune_only if args.program else _pipeline)(args, rec, dump, t0)
    except (Exception, SystemExit) as e:   # keep the finished stages and say what stopped
        rec["error"] = f"{type(e).__name__}: {e}"
        dump()
        raise
    rec["wall_s"] = round(time.time() - t0, 1)
    dump()
    print(f"{arch}: done in {rec['wall_s']} s", flush=True)


def _pipeline(args, rec: dict, dump, t0: float):
    from sia.convert import convert
    from sia.convert.finetune import program_accuracy
    from sia.data.registry import load_split
    from sia.program import save_program

    arch = args.arch
    train_end = t0 + args.budget - args.finetune_s
    fp32_end = t0 + args.fp32_share * (train_end - t0)
    rec["fp32"] = fp32 = _train_row(f"{arch}_fp32", args, fp32_end, {})
    dump()
    twin = fp32["run_dir"]
    rec["qcfs"] = qcfs = _train_row(f"{arch}_qcfs", args, train_end,
                                    {"init": twin, "epochs": 0, "fold_lr": args.qcfs_lr,
                                     "distill": {"teacher": twin, **KD}})
    dump()
    c0 = time.time()
    cfg = qcfs["metrics"]["config"]
    prog = convert(qcfs["model"].cpu(), (3, 32, 32), name=f"{arch}_cifar10", timesteps=8, t_max=16,
                   meta={"dataset": "cifar10", "arch": arch, "width": cfg["width"],
                         "levels": cfg["levels"], "warm_start": twin})
    save_program(prog, Path(args.out) / program_file(arch))
    xt, yt = load_split("cifar10", "test", args.data_dir)
    convert_s, e0 = round(time.time() - c0, 1), time.time()
    rec["program"] = {"file": program_file(arch), "convert_s": convert_s,
                      "snn_torch_twin": program_accuracy(prog, xt, yt, T=8, device=args.device)}
    eval_s = time.time() - e0     # one evaluation: what each saved stage keeps time for
    dump()
    if args.signed:   # not written: one file fewer to bring back, and `sia signed` remakes it
        prog = _signed(prog)
        rec["program_signed"] = {"remake": f"sia signed {program_file(arch)}",
                                 "snn_torch_twin": program_accuracy(prog, xt, yt, T=8,
                                                                    device=args.device)}
        dump()
    if args.finetune_s > 0:
        rec["finetune"] = {}
        _finetune(args, prog, fp32["model"], t0, eval_s, (xt, yt), STAGES, rec["finetune"], dump)


# The fine-tuning stages after training, each with its share of the fine-tuning time;
# a stage with `save` writes its program (OUT/<arch>_program<save>.safetensors.xz) and
# evaluates it. After training (distilled from the twin): T = 8 with the loss at t = 4
# and 8 repairs the converted program; T = 4 with thresholds and v_init is the CPU
# recipe that gave the best T = 4 gaps; a last T = 8 stage at half the step size the
# one that gave the best T = 8 gaps (docs/results/2-cifar10-cpu.md: at both CPU widths it
# trades some T = 4 for T = 8, so both programs are kept). --programs: the program is
# already fine-tuned and there is no twin to distil from.
STAGES = [dict(T=8, loss_steps=(4, 8), share=0.3),
          dict(T=4, loss_steps=(4,), neurons=True, share=0.4, save="_ft_t4"),
          dict(T=8, loss_steps=(4, 8), neurons=True, lr=0.005, share=0.3, save="_ft_t8")]
STAGES_AGAIN = [dict(T=8, loss_steps=(4, 8), neurons=True, share=0.5),
                dict(T=4, loss_steps=(4,), neurons=True, share=0.5, save="_ft2")]
STAGE_KEYS = ("T", "loss_steps", "neurons", "lr")
MAX_OUT_FILES = 8    # the device tool brings back at most 8 files from $OUT


def program_file(arch: str, tag: str = "") -> str:
    """OUT's name for a program: the converted one, or a saved stage's (`tag`: its
    `save` suffix, after "_signed" for a program with signed neurons)."""
    return f"{arch}_program{tag}.safetensors.xz"


def out_files(archs, *, finetune: bool, again: bool, signed: bool) -> list[str]:
    """The files a call writes to OUT (`again`: --programs; a returned program that has
    signed neurons already is named *_signed* too, which leaves the count as it is)."""
    tag = "_signed" if signed else ""
    files = []
    for arch in archs:
        if not again:
            files.append(program_file(arch))
        if finetune or again:
            files += [program_file(arch, tag + st["save"])
                      for st in (STAGES_AGAIN if again else STAGES) if st.get("save")]
    return files + ["results.json"]


def _finetune_only(args, rec: dict, dump, t0: float):
    """--programs: fine-tune a returned program again, labels only, until the budget."""
    import hashlib

    from sia.convert.finetune import program_accuracy
    from sia.data.registry import load_split
    from sia.program import load_program

    prog = load_program(args.program)
    if args.signed:
        prog = _signed(prog)
    xt, yt = load_split("cifar10", "test", args.data_dir)
    e0 = time.time()
    rec["start"] = {"file": args.program,
                    "sha256": hashlib.sha256(Path(args.program).read_bytes()).hexdigest(),
                    "signed": prog.signed,
                    "snn_torch_twin": program_accuracy(prog, xt, yt, T=8, device=args.device)}
    dump()
    rec["finetune"] = {}
    _finetune(args, prog, None, t0, time.time() - e0, (xt, yt), STAGES_AGAIN, rec["finetune"], dump)


def _signed(prog):
    """--signed: the program with signed IF neurons (a program that has them already
    stays as it is)."""
    from sia.convert.signed import signed_program

    return prog if prog.signed else signed_program(prog)


def _finetune(args, prog, teacher, t0: float, eval_s: float, test, stages, rec: dict,
              dump) -> None:
    """Spike-aware fine-tuning in `stages` until the budget ends, keeping time for the
    evaluations (`eval_s` each) of the stages that save; fills `rec` and dumps it after
    every saved stage (a killed pipeline keeps what it finished). Each stage's length is
    fixed when it starts, from the time left and the step time measured so far: the other
    network's pipeline changes the GPU's load as it moves from stage to stage."""
    from sia.convert.finetune import finetune, program_accuracy
    from sia.data.registry import load_split
    from sia.program import save_program

    x, y = load_split("cifar10", "train", args.data_dir)
    common = dict(lr=0.01, teacher=teacher, device=args.device, progress=False,
                  batch_size=args.ft_batch)
    shares, saves = [st["share"] for st in stages], [st.get("save") for st in stages]
    stages = [{**common, **{k: v for k, v in st.items() if k in STAGE_KEYS}} for st in stages]
    per_step = {}
    for kw in stages:   # probe each T once: after a warm-up (cuDNN autotuning), 30 steps minus 10
        if kw["T"] not in per_step:
            t = []
            for n in (3, 10, 30):
                t1 = time.time()
                finetune(prog, x, y, steps=n, **kw)
                t.append(time.time() - t1)
            per_step[kw["T"]] = max(t[2] - t[1], 1e-3) / 20
    rec.update(steps=[], batch=args.ft_batch, distilled=teacher is not None,
               signed=prog.signed,
               probe_s_per_step={f"T={k}": round(v, 4) for k, v in per_step.items()},
               stages=[{k: kw[k] for k in STAGE_KEYS if k in kw} for kw in stages],
               saved=[], train_acc_last50=[], load_factor=[])
    f0, ft, load = time.time(), prog, 1.0   # load: measured / probed step time, last stage
    for i, (kw, save) in enumerate(zip(stages, saves)):
        left = t0 + args.budget - time.time() - 1.5 * eval_s * sum(map(bool, saves[i:]))
        n = int(SAFETY * left * shares[i] / sum(shares[i:]) / (per_step[kw["T"]] * load))
        if n < 20:
            rec["skipped"] = f"stage {i + 1}: {left:.0f} s left, {per_step[kw['T']] * load:.2f} s/step"
            break
        s0 = time.time()
        ft, hist = finetune(ft, x, y, steps=n, **kw)
        load = (time.time() - s0) / n / per_step[kw["T"]]
        rec["steps"].append(n)
        rec["load_factor"].append(round(load, 3))
        rec["train_acc_last50"].append(sum(hist["acc"][-50:]) / len(hist["acc"][-50:]))
        if save:
            save = ("_signed" if rec["signed"] else "") + save
            name = program_file(args.arch, save)
            save_program(ft, Path(args.out) / name)
            rec["saved"].append({"file": name, "tag": save, "after_stage": i + 1,
                                 "snn_torch_twin": program_accuracy(ft, *test, T=8, device=args.device)})
            rec["seconds"] = round(time.time() - f0, 1)
            dump()
    rec["seconds"] = round(time.time() - f0, 1)


def _summary(arch: str, r: dict) -> str:
    if "error" in r or not ("qcfs" in r or "start" in r):
        return f"{arch} FAILED ({r.get('error', 'no record')})"
    s = arch if "start" in r else (f"{arch} FP32 {r['fp32']['metrics']['test_acc']:.4f} "
                                   f"QANN {r['qcfs']['metrics']['test_acc']:.4f}")
    evals = [(tag, r.get(key, {}).get("snn_torch_twin")) for key, tag in
             (("start", "start"), ("program", "SNN"), ("program_signed", "SNN_signed"))]
    # "tag": the stage's `save` suffix (records before session 20 have only the file name)
    evals += [(f"SNN{sv.get('tag') or sv['file'].split('_program')[1].split('.')[0]}",
               sv["snn_torch_twin"]) for sv in r.get("finetune", {}).get("saved", [])]
    for tag, acc in evals:
        if acc:
            s += f" {tag} T4 {acc[3]:.4f} T8 {acc[7]:.4f}"
    return s


def parent(args):
    out, work = Path(args.out), Path(args.work)
    programs = dict(kv.split("=", 1) for kv in args.programs.split(",") if "=" in kv)
    if args.programs and (not programs or len(programs) != len(args.programs.split(","))):
        raise SystemExit(f"--programs {args.programs!r}: expected arch=FILE,...")
    for f in programs.values():
        if not Path(f).is_file():
            raise SystemExit(f"--programs: no such file: {f}")
    archs = list(programs) if programs else args.archs.split(",")
    bad = [a for a in archs if a not in ARCHS]
    if bad:
        raise SystemExit(f"unknown network {bad[0]!r}; choose from {', '.join(ARCHS)}")
    _epochs(args.epochs)
    try:
        if not isinstance(json.loads(args.set or "{}"), dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise SystemExit(f"--set {args.set!r}: expected a JSON object ({e})")
    files = out_files(archs, finetune=args.finetune_s > 0, again=bool(programs), signed=args.signed)
    if 0 < args.max_files < len(files):
        raise SystemExit(f"this call writes {len(files)} files to --out ({', '.join(files)}); "
                         f"--max-files {args.max_files}: the device tool would leave some behind")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    procs = {}
    for arch in archs:
        (work / f"{arch}.json").unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--arch", arch, "--budget", str(args.budget),
               "--data-dir", args.data_dir, "--out", str(out), "--work", str(work),
               "--device", args.device, "--epochs", str(args.epochs),
               "--finetune-s", str(args.finetune_s), "--fp32-share", str(args.fp32_share),
               "--qcfs-lr", str(args.qcfs_lr), "--ft-batch", str(args.ft_batch)]
        if args.signed:
            cmd.append("--signed")
        if args.set:
            cmd += ["--set", args.set]
        if programs:
            cmd += ["--program", programs[arch]]
        procs[arch] = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = t0 + args.budget + args.grace
    for arch, p in procs.items():
        try:
            p.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            print(f"{arch}: killed at the hard deadline ({args.budget + args.grace:.0f} s)")
    pipelines, rows = {}, {}
    for arch, p in procs.items():
        f = work / f"{arch}.json"
        r = json.loads(f.read_text()) if f.is_file() else {}
        r["returncode"] = p.returncode
        pipelines[arch] = r
        for kind in ("fp32", "qcfs"):   # the per-row view cifar_snn_eval --gpu-results reads
            row = f"{arch}_{kind}"
            if kind in r:
                rows[row] = r[kind]
            elif programs:    # --programs: nothing trained
                continue
            else:   # keep what the killed or failed stage had written per epoch
                m = work / row / "metrics.json"
                rows[row] = {"row": row, "failed": True,
                             "metrics": json.loads(m.read_text()) if m.is_file() else None}
    from sia import provenance
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "wall_s": round(time.time() - t0, 1), "budget_s": args.budget,
           "args": {k: v for k, v in vars(args).items() if k not in ("arch",)},
           "pipelines": pipelines, "rows": rows,
           "commit": os.environ.get("SIA_COMMIT") or provenance.git_commit()}
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"done in {res['wall_s']} s: " + "; ".join(_summary(a, r) for a, r in pipelines.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/sia_gpu_runs")
    ap.add_argument("--budget", type=float, default=470, help="seconds per network, both at once")
    ap.add_argument("--grace", type=float, default=30, help="seconds past the budget before a kill")
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", default="0",
                    help="fixed epoch count, or row=N,... per row (0 = fit the budget)")
    ap.add_argument("--set", default="", help="JSON object of extra config overrides (every row)")
    ap.add_argument("--fp32-share", type=float, default=0.5,
                    help="share of the training time for the FP32 twin (the rest: QCFS)")
    ap.add_argument("--qcfs-lr", type=float, default=0.02,
                    help="peak LR of the warm-started QCFS stage (cosine)")
    ap.add_argument("--finetune-s", type=float, default=0,
                    help="seconds of each network's budget kept for spike-aware fine-tuning")
    ap.add_argument("--ft-batch", type=int, default=128)
    ap.add_argument("--programs", default="",
                    help="arch=FILE,...: only fine-tune these programs again (labels only) "
                         "for the whole budget; writes OUT/<arch>_program_ft2.safetensors")
    ap.add_argument("--signed", action="store_true",
                    help="give the programs signed IF neurons before fine-tuning (golden "
                         "simulator only; files *_signed*)")
    ap.add_argument("--max-files", type=int, default=MAX_OUT_FILES,
                    help="refuse a call that writes more files to --out (0: no limit)")
    ap.add_argument("--arch", help=argparse.SUPPRESS)
    ap.add_argument("--program", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if not 0 < args.fp32_share < 1:
        raise SystemExit("--fp32-share must lie strictly between 0 and 1")
    from sia import SiaError
    try:
        (child if args.arch else parent)(args)
    except SiaError as e:   # a user mistake (missing data, bad config): one line
        raise SystemExit(f"{args.arch or 'gpu_reproduce'}: {e}")


if __name__ == "__main__":
    main()

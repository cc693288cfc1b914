"""Two-stage quantisation-aware training, single process or under torchrun (DDP).

Stage 1 trains conv -> BN -> act with per-channel fake-quantised weights. Per-channel
symmetric quantisation commutes with BN folding, so stage 2 folds BN into the
weights (fold_all_bn) and fine-tunes `fold_epochs` at a lower LR with the folded
weights quantised as they will be exported. The result is always the folded model
(ConvUnit.bn is None), which is what sia.convert consumes. The FP32 twin runs the
same recipe with ReLU and float weights (folding is exact there).

Under torchrun each rank takes its slice of every global batch (sia.data.Batches) and
DDP averages the gradients. On GPU, BN uses SyncBatchNorm (global-batch statistics);
gloo on CPU has none, so there stage-1 BN statistics are per rank (DDP broadcasts
rank 0's running statistics); the folded stage is the same as one process.

Run directory: checkpoint.pt (every epoch, for --resume), metrics.json,
model.safetensors + config.json (the final model; see load_trained).
"""

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from sia import SiaError
from sia.data import Batches
from sia.data.holdout import check_same_holdout, run_holdout, split_training
from sia.data.registry import data_copy, load_split
from sia.models import build_model, fold_all_bn, is_folded
from sia.train.config import TrainConfig, from_dict
from sia.train.warmstart import warm_start

# Keys that may change between a run and its resume without changing the run; the
# epoch counts may change too (the LR schedule is re-derived for the new length).
_RESUME_FREE = ("data_dir", "device", "num_threads", "eval_batch_size", "eval_every", "epochs",
                "fold_epochs", "compile")


@dataclass
class TrainResult:
    model: nn.Module
    metrics: dict
    out_dir: Path


@torch.no_grad()
def evaluate(model: nn.Module, images_u8, labels, batch_size: int = 1000, device=None) -> float:
    """Top-1 accuracy of model on uint8 images (input = image / 255), in fp32."""
    was_training = model.training
    model.eval()
    dev = device or next(model.parameters()).device
    correct = 0
    for i in range(0, len(labels), batch_size):
        x = images_u8[i:i + batch_size].to(dev).float().div_(255)
        correct += (model(x).argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(labels)


def load_trained(path, role: str = ""):
    """(model, cfg) from a run dir or its model.safetensors (config.json beside it).
    A missing or malformed run is a one-line SiaError naming it (after `role`, e.g.
    "config key 'init'", when the run is named by another run's config)."""
    p = Path(path)
    weights = p / "model.safetensors" if p.is_dir() else p
    cfg_path = weights.parent / "config.json"
    pre = f"{role}: " if role else ""
    for f in (weights, cfg_path):
        if not f.is_file():
            raise SiaError(f"{pre}no such file: {f}")

    def bad(problem: str) -> SiaError:
        return SiaError(f"{pre}training run {weights.parent}: {problem}")

    try:
        d = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"config.json is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise bad("config.json is not a JSON object of config keys")
    try:
        cfg = from_dict(d)
    except SiaError as e:
        raise bad(f"config.json: {e}") from None
    try:
        state = load_file(str(weights))
    except Exception as e:   # safetensors raises its own error types for a damaged file
        raise bad(f"{weights.name} is truncated or not a safetensors file "
                  f"({type(e).__name__}: {_first_line(e)})") from None
    model = build_model(cfg.arch, **cfg.model_kwargs())
    if is_folded(state):
        fold_all_bn(model)
    own = model.state_dict()
    net = f"its config.json's {cfg.arch} width {cfg.width:g}"
    extra, absent = sorted(set(state) - set(own)), sorted(set(own) - set(state))
    if extra or absent:
        raise bad(f"{weights.name} does not hold {net} ("
                  + (f"unexpected tensor {extra[0]!r})" if extra else f"missing tensor {absent[0]!r})"))
    shape = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if shape:
        k = shape[0]
        raise bad(f"{weights.name} does not hold {net} (tensor {k!r} has shape "
                  f"{tuple(state[k].shape)}, the network {tuple(own[k].shape)})")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise bad(f"{weights.name} does not load into {net} ({_first_line(e)})") from None
    return model.eval(), cfg


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else "malformed"


class _Dist:
    """Rank/world from torchrun's environment; one process when WORLD_SIZE is unset."""

    def __init__(self, device_kind: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        if device_kind == "cuda":
            torch.cuda.set_device(self.local)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t)
        return t


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    kind = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise SiaError("config key 'device' is 'cuda' but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _lr_lambda(schedule: str, total: int, warmup: int):
    """Per-step LR factor: cosine to 0 after linear warmup; one-cycle = 30% warmup."""
    if schedule == "onecycle":
        warmup = max(1, int(0.3 * total))

    def f(t):
        if t < warmup:
            return 0.04 + 0.96 * (t + 1) / warmup if schedule == "onecycle" else (t + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (t - warmup) / max(1, total - warmup))))
    return f


def _optimizer(model, cfg: TrainConfig, stage: int, steps_per_epoch: int):
    decay = [p for n, p in model.named_parameters() if n.endswith(("conv.weight", "fc.weight"))]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    lr = cfg.lr if stage == 1 else cfg.fold_lr
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": rest, "weight_decay": 0.0}],
                          lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if stage == 1:
        f = _lr_lambda(cfg.schedule, cfg.epochs * steps_per_epoch,
                       int(cfg.warmup_epochs * steps_per_epoch))
    else:
        f = _lr_lambda("cosine", cfg.fold_epochs * steps_per_epoch, 0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, f)


def compiled(module: nn.Module, device: torch.device) -> nn.Module:
    """torch.compile(module); on CPU inductor builds C++ kernels, so a missing compiler
    is a one-line error here instead of a traceback at the first step."""
    import shutil
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise SiaError("torch.compile (config key 'compile', --compile) needs a C++ compiler "
                       "on CPU; none found: install g++, or run without compile")
    return torch.compile(module)


class Run:
    """State of one training run: model, optimiser, data, history; checkpoints itself."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, progress: bool, warm: bool = True):
        self.cfg, self.out = cfg, Path(out_dir)
        self.dev = _device(cfg, int(os.environ.get("LOCAL_RANK", "0")))
        self.d = _Dist(self.dev.type)
        self.progress = progress and self.d.main
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        # the runs this one starts from or learns from, checked before any data is loaded
        # (and before the seed: building them draws random initial weights)
        if cfg.init and (warm or cfg.holdout):
            load_trained(cfg.init, "config key 'init'")
        if cfg.distill:
            load_trained(cfg.distill["teacher"], "config key 'distill.teacher'")
        torch.manual_seed(cfg.seed)
        self.cuda = self.dev.type == "cuda"
        self.channels_last = self.cuda and cfg.amp
        use_bf16 = (self.cuda and cfg.amp) or (not self.cuda and cfg.cpu_bf16)
        self.autocast = (lambda: torch.autocast(self.dev.type, dtype=torch.bfloat16)) if use_bf16 \
            else nullcontext
        (xtr, ytr), self.val = split_training(*load_split(cfg.dataset, "train", cfg.data_dir),
                                              cfg.holdout)
        self.test = load_split(cfg.dataset, "test", cfg.data_dir)
        for role, ref in (("warm start ('init')", cfg.init),
                          ("teacher ('distill.teacher')", cfg.distill.get("teacher", ""))):
            if ref and cfg.holdout:   # a run from before the key held out nothing
                check_same_holdout(cfg.holdout, run_holdout(ref), role, ref)
        self.train_batches = Batches(xtr, ytr, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                     augment=cfg.augment, device=self.dev, rank=self.d.rank,
                                     world=self.d.world, drop_last=True,
                                     channels_last=self.channels_last)
        if len(self.train_batches) == 0:
            raise SiaError(f"config key 'batch_size' {cfg.batch_size} exceeds the {len(ytr)} "
                           "training images")
        self.net = build_model(cfg.arch, **cfg.model_kwargs()).to(self.dev)
        self.warm_start = None
        if cfg.init and warm:   # (a resumed run restores its own weights instead)
            self.warm_start = warm_start(self.net, cfg.init, cfg.arch, cfg.width,
                                         xtr[:256].to(self.dev).float().div_(255))
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.teacher = None
        if cfg.distill:
            self.teacher = load_trained(cfg.distill["teacher"], "config key 'distill.teacher'")[0]
            self.teacher = self.teacher.to(self.dev)
            self.teacher.requires_grad_(False)
            if cfg.compile:
                self.teacher = compiled(self.teacher, self.dev)
        self.epoch, self.folded, self.history, self.fold_acc = 0, False, [], None
        self._stage_setup()

    # -- stages ---------------------------------------------------------------------
    def _stage_setup(self):
        """(Re)build the DDP wrapper and optimiser for the current stage."""
        net = self.net
        if self.d.world > 1:
            if self.cuda and not self.folded:  # BN statistics over the global batch
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                self.net = net
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.dev.index] if self.cuda else None)
        # training steps run the compiled graph; eval, checkpoints and folding use self.net
        self.model = compiled(net, self.dev) if self.cfg.compile else net
        stage = 2 if self.folded else 1
        self.opt, self.sched = _optimizer(self.net, self.cfg, stage, len(self.train_batches))

    def fold(self):
        acc_bn = self.eval()
        fold_all_bn(self.net)
        self.folded = True
        self._stage_setup()
        self.fold_acc = (acc_bn, self.eval())

    # -- epochs ---------------------------------------------------------------------
    def eval(self) -> float:
        return evaluate(self.net, *self.test, self.cfg.eval_batch_size, self.dev)

    def eval_val(self) -> float | None:
        """Accuracy on the held-out training images (None without a holdout)."""
        if not len(self.val[1]):
            return None
        return evaluate(self.net, *self.val, self.cfg.eval_batch_size, self.dev)

    def train_epoch(self) -> dict:
        cfg, model = self.cfg, self.model
        model.train()
        self.train_batches.set_epoch(self.epoch)
        stats = torch.zeros(3, dtype=torch.float64, device=self.dev)  # loss sum, correct, n
        t0 = time.time()
        stage = "fold" if self.folded else "bn"
        bar = tqdm(self.train_batches, desc=f"epoch {self.epoch + 1} [{stage}]", leave=False,
                   disable=not self.progress, mininterval=1.0)
        for step, (x, y) in enumerate(bar):
            with self.autocast():
                out = model(x)
            loss = self.loss(out.float(), x, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            with torch.no_grad():
                stats += torch.stack([loss.detach().double() * len(y),
                                      (out.argmax(1) == y).sum().double(),
                                      torch.tensor(float(len(y)), device=self.dev,
                                                   dtype=torch.float64)])
            if self.progress and step % 20 == 0:
                bar.set_postfix(loss=f"{stats[0].item() / stats[2].item():.3f}",
                                acc=f"{stats[1].item() / stats[2].item():.3f}")
        self.d.sum(stats)
        train_time = time.time() - t0
        t1 = time.time()
        self.epoch += 1
        # fold() measures the end of stage 1, so only the very last epoch must evaluate
        last = self.epoch == cfg.epochs + cfg.fold_epochs
        evals = last or self.epoch % cfg.eval_every == 0
        test_acc = self.eval() if evals else None
        rec = {"epoch": self.epoch, "stage": stage, "train_loss": stats[0].item() / stats[2].item(),
               "train_acc": stats[1].item() / stats[2].item(), "test_acc": test_acc,
               **({"val_acc": self.eval_val() if evals else None} if cfg.holdout else {}),
               "lr_end": self.opt.param_groups[0]["lr"], "train_time_s": round(train_time, 2),
               "eval_time_s": round(time.time() - t1, 2)}
        self.history.append(rec)
        return rec

    def loss(self, out, x, y):
        cfg = self.cfg
        ce = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
        if self.teacher is None:
            return ce
        alpha = cfg.distill.get("alpha", 0.5)
        temp = cfg.distill.get("temperature", 4.0)
        with torch.no_grad(), self.autocast():
            target = F.softmax(self.teacher(x).float() / temp, 1)
        kd = F.kl_div(F.log_softmax(out / temp, 1), target, reduction="batchmean") * temp * temp
        return (1 - alpha) * ce + alpha * kd

    # -- persistence ----------------------------------------------------------------
    def checkpoint(self):
        if not self.d.main:
            return
        state = {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "epoch": self.epoch,
                 "folded": self.folded, "fold_acc": list(self.fold_acc or []),
                 "config": self.cfg.to_dict(), "history": self.history,
                 "rng": torch.get_rng_state()}
        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "checkpoint.pt")

    def restore(self, path: Path):
        ck = torch.load(path, map_location=self.dev, weights_only=True)
        mine, theirs = self.cfg.to_dict(), ck["config"]
        defaults = TrainConfig().to_dict()   # keys added since the checkpoint: their default
        diff = [k for k in mine if k not in _RESUME_FREE and mine[k] != theirs.get(k, defaults[k])]
        if diff:
            raise SiaError(f"cannot resume {path}: config key {diff[0]!r} differs "
                           f"({theirs.get(diff[0])!r} in the checkpoint, {mine[diff[0]]!r} now)")
        stage1_done = ck["epoch"] if not ck["folded"] else theirs["epochs"]
        if (self.cfg.epochs < stage1_done) or (ck["folded"] and self.cfg.epochs != stage1_done):
            raise SiaError(f"cannot resume {path}: config key 'epochs' {self.cfg.epochs} does not "
                           f"fit a checkpoint with {stage1_done} stage-1 epochs done")
        if ck["folded"]:
            fold_all_bn(self.net)
            self.folded = True
            self._stage_setup()
        self.net.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.epoch, self.history = ck["epoch"], ck["history"]
        self.fold_acc = tuple(ck.get("fold_acc", ())) or None
        torch.set_rng_state(ck["rng"].cpu())
        return {k: theirs[k] for k in ("epochs", "fold_epochs") if theirs[k] != mine[k]}

    def save_final(self, metrics: dict):
        if not self.d.main:
            return
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(self.out / "model.safetensors"))
        (self.out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1) + "\n")
        self.write_metrics(metrics)

    def write_metrics(self, metrics: dict):
        if self.d.main:
            (self.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


def train(cfg: TrainConfig, out_dir, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> TrainResult:
    """Train (or resume) a run in out_dir; stop_after N ends after epoch N, resumable.

    Everything a run needs (config, device, data, the runs named by 'init' and
    'distill.teacher', the checkpoint to resume) is checked before out_dir is created;
    a directory this call created is removed again if the run fails before its first
    checkpoint."""
    out = Path(out_dir)
    if stop_after is not None and stop_after < 1:
        raise SiaError(f"--stop-after {stop_after}: give the epoch to stop after (>= 1)")
    if out.exists() and not out.is_dir():
        raise SiaError(f"run directory {out} exists and is not a directory")
    ck = out / "checkpoint.pt"
    if resume and not ck.is_file():
        raise SiaError(f"--resume: no checkpoint in {out}")
    run = Run(cfg, out, progress, warm=not resume)
    old = run.restore(ck) if resume else None
    created = _make_dir(out)
    try:
        return _train(run, cfg, out, resume, old, stop_after)
    except BaseException:
        _remove_empty(created)
        raise


def _make_dir(out: Path) -> list[Path]:
    """mkdir -p out; returns the directories it created, deepest first."""
    created, d = [], out.absolute()
    while not d.exists():
        created.append(d)
        d = d.parent
    out.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(created: list[Path]):
    """Remove the directories _make_dir created while they are still empty."""
    for d in created:
        try:
            d.rmdir()
        except OSError:   # holds a checkpoint (resumable), or another process's files
            return


def _train(run: Run, cfg: TrainConfig, out: Path, resume: bool, old, stop_after) -> TrainResult:
    metrics = {"config": cfg.to_dict(), "data": data_copy(cfg.dataset, cfg.data_dir),
               "device": str(run.dev), "world_size": run.d.world, "epochs": run.history}
    if run.warm_start:
        metrics["warm_start"] = run.warm_start
    if resume:
        prev = out / "metrics.json"
        before = json.loads(prev.read_text()) if prev.is_file() else {}
        changes = before.get("schedule_changes", [])
        if "warm_start" in before:
            metrics["warm_start"] = before["warm_start"]
        if old:  # the LR schedule was re-derived: keep a record of it
            changes.append({"at_epoch": run.epoch, "was": old})
        metrics["epochs"] = run.history
        if changes:
            metrics["schedule_changes"] = changes
    log = tqdm.write if run.d.main else (lambda s: None)
    total = cfg.epochs + cfg.fold_epochs
    end = total if stop_after is None else min(total, stop_after)
    while run.epoch < end:
        if run.epoch == cfg.epochs and not run.folded:
            run.fold()
            log(f"folded BN: test acc {run.fold_acc[0]:.4f} -> {run.fold_acc[1]:.4f}")
        r = run.train_epoch()
        test = "-" if r["test_acc"] is None else f"{r['test_acc']:.4f}"
        val = "" if r.get("val_acc") is None else f" val {r['val_acc']:.4f}"
        log(f"epoch {r['epoch']}/{total} [{r['stage']}] loss {r['train_loss']:.4f} "
            f"train {r['train_acc']:.4f}{val} test {test} ({r['train_time_s']:.1f}s)")
        if run.fold_acc:
            metrics["test_acc_bn"], metrics["test_acc_folded"] = run.fold_acc
        run.checkpoint()
        run.write_metrics(metrics)
    if run.epoch < total:
        return TrainResult(run.net.eval(), metrics, out)
    if not run.folded:  # fold_epochs = 0: still hand over the folded model
        run.fold()
    metrics["test_acc_bn"], metrics["test_acc_folded"] = run.fold_acc
    metrics["test_acc"] = run.history[-1]["test_acc"] if cfg.fold_epochs else run.fold_acc[1]
    if cfg.holdout:
        metrics["holdout"] = len(run.val[1])
        metrics["val_acc"] = run.history[-1]["val_acc"] if cfg.fold_epochs else run.eval_val()
    metrics["train_time_s"] = round(sum(r["train_time_s"] for r in run.history), 2)
    metrics["eval_time_s"] = round(sum(r["eval_time_s"] for r in run.history), 2)
    run.save_final(metrics)
    return TrainResult(run.net.eval(), metrics, out)

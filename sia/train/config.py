"""TrainConfig: every hyper-parameter of a run, loaded from a flat TOML file.

Unknown keys and bad values are one-line SiaErrors naming the key. weight_bits = 0
in TOML (which has no null) means float weights, as does None from Python.
"""

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sia import SiaError
from sia.models import ARCHS

CHOICES = {"dataset": ("digits", "cifar10"), "arch": tuple(ARCHS), "act": ("qcfs", "relu"),
           "schedule": ("cosine", "onecycle"), "device": ("auto", "cpu", "cuda")}


# Bounds on sizes a typo could blow up: a network wider than 64x its base (resnet18 at
# width 64 has 32768 channels) cannot be trained, and far more torch threads than cores
# crash the BLAS thread pools instead of failing.
MAX_WIDTH = 64.0
MAX_THREADS = 1024


@dataclass
class TrainConfig:
    dataset: str = "digits"
    arch: str = "digits_cnn"
    width: float = 1.0
    act: str = "qcfs"
    levels: int = 4
    weight_bits: int | None = 4
    first_last_bits: int = 8
    epochs: int = 10            # stage 1: with BN
    fold_epochs: int = 2        # stage 2: BN folded into the quantised weights
    batch_size: int = 128       # global batch, split across DDP ranks
    lr: float = 0.1
    fold_lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # conv / linear weights only (not theta, BN, bias)
    schedule: str = "cosine"
    warmup_epochs: float = 0.0  # linear warmup for cosine (onecycle warms up 30%)
    label_smoothing: float = 0.0
    augment: bool = False       # CIFAR crop + flip
    seed: int = 0
    num_threads: int = 0        # torch CPU threads; 0 = torch default
    device: str = "auto"
    amp: bool = True            # bf16 autocast + channels_last on CUDA
    cpu_bf16: bool = False      # bf16 autocast on CPU too
    compile: bool = False       # torch.compile the training forward (and the teacher): fuses
    # QCFS/BN/fake-quant elementwise chains; 2.5x per step on a 2-core CPU, ~40 s to compile
    data_dir: str = ""          # CIFAR-10 directory; "" = $SIA_CIFAR10_DIR
    eval_batch_size: int = 1000
    eval_every: int = 1         # test accuracy every N epochs (and always at the end)
    # Training images held out as a validation set (stratified, fixed: sia/data/holdout.py):
    # trained on the rest, accuracy on them reported as val_acc beside test_acc
    holdout: int = 0
    # Knowledge distillation from a trained FP32 twin: {teacher = "RUN_DIR", alpha, temperature}
    distill: dict = field(default_factory=dict)
    # Warm start from a finished run of the same network (e.g. the FP32 twin): its folded
    # weights, QCFS thresholds calibrated; trains in the folded stage only (epochs = 0)
    init: str = ""
    # The row's SNN recipe (conversion, spike-aware fine-tuning, evaluation), read by
    # benchmarks/reproduce_row.py; `sia train` only checks it. Keys: SNN_KEYS.
    snn: dict = field(default_factory=dict)

    def model_kwargs(self) -> dict:
        return dict(width=self.width, act=self.act, levels=self.levels,
                    weight_bits=self.weight_bits, first_last_bits=self.first_last_bits,
                    num_classes=10, in_channels=1 if self.dataset == "digits" else 3)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(cfg: TrainConfig):
    for key, opts in CHOICES.items():
        if getattr(cfg, key) not in opts:
            raise SiaError(f"config key {key!r}: {getattr(cfg, key)!r} is not one of {', '.join(opts)}")
    if cfg.width > MAX_WIDTH:
        raise SiaError(f"config key 'width' must be in (0, {MAX_WIDTH:g}], got {cfg.width!r}")
    if not 0 <= cfg.num_threads <= MAX_THREADS:
        raise SiaError(f"config key 'num_threads' must be 0 (torch's default) or 1..{MAX_THREADS}, "
                       f"got {cfg.num_threads}")
    positive = ("width", "levels", "batch_size", "lr", "eval_batch_size", "eval_every")
    for key in positive:
        if getattr(cfg, key) <= 0:
            raise SiaError(f"config key {key!r} must be > 0, got {getattr(cfg, key)!r}")
    nonneg = ("epochs", "fold_epochs", "fold_lr", "momentum", "weight_decay", "num_threads",
              "label_smoothing", "warmup_epochs", "holdout")
    for key in nonneg:
        if getattr(cfg, key) < 0:
            raise SiaError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)!r}")
    if cfg.epochs + cfg.fold_epochs == 0:
        raise SiaError("config keys 'epochs' and 'fold_epochs' are both 0: nothing to train")
    if cfg.weight_bits is not None and not 2 <= cfg.weight_bits <= 16:
        raise SiaError(f"config key 'weight_bits' must be 0 (float) or 2..16, got {cfg.weight_bits}")
    if not 2 <= cfg.first_last_bits <= 16:
        raise SiaError(f"config key 'first_last_bits' must be 2..16, got {cfg.first_last_bits}")
    if cfg.label_smoothing >= 1:
        raise SiaError(f"config key 'label_smoothing' must be < 1, got {cfg.label_smoothing}")
    if cfg.distill:
        _check_distill(cfg.distill)
    if cfg.snn:
        _check_snn(cfg)
    if cfg.init and cfg.epochs:
        raise SiaError("config key 'init' starts from a BN-folded model: set 'epochs' = 0 and "
                       "train 'fold_epochs' only")


DISTILL_KEYS = {"teacher": str, "alpha": float, "temperature": float}


def _check_distill(d: dict):
    for key, v in d.items():
        if key not in DISTILL_KEYS:
            raise SiaError(f"unknown config key 'distill.{key}' (teacher, alpha, temperature)")
        if not isinstance(v, (int, float) if DISTILL_KEYS[key] is float else str) or isinstance(v, bool):
            raise SiaError(f"config key 'distill.{key}' has a bad value {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise SiaError(f"config key 'distill.{key}' must be a finite number, got {v!r}")
    if "teacher" not in d:
        raise SiaError("config key 'distill.teacher' (a trained run directory) is missing")
    if not 0 <= d.get("alpha", 0.5) <= 1:
        raise SiaError(f"config key 'distill.alpha' must be in 0..1, got {d['alpha']}")
    if d.get("temperature", 4.0) <= 0:
        raise SiaError(f"config key 'distill.temperature' must be > 0, got {d['temperature']}")


# [snn]: what benchmarks/cifar_snn_eval.py does after training, as its options
# (`twin`: the FP32 twin's config, trained into the twin's run directory if missing,
# with `twin_set`'s "key=value" overrides; `select_T`: the row's program is the stage with
# the best held-out accuracy at that T, instead of the last stage - needs `holdout`)
SNN_KEYS = {"twin": str, "twin_set": list, "calibrate": int, "T": int, "finetune": int,
            "ft_T": int, "ft_lr": float, "ft_loss_steps": list, "ft_batch": int, "ft_distill": bool,
            "ft_neurons": bool, "ft_compile": bool, "eval_batch": int, "threads": int,
            "signed": bool, "stages": list, "select_T": int}
# [[snn.stages]]: further fine-tuning stages, each from the previous stage's program
# (`signed`: give the program signed IF neurons before the stage; SIA builds with signed_count_bits > 0)
STAGE_KEYS = ("T", "finetune", "ft_T", "ft_lr", "ft_loss_steps", "ft_batch", "ft_distill",
              "ft_neurons", "ft_compile", "eval_batch", "threads", "signed")


def _check_snn(cfg: TrainConfig):
    if cfg.act != "qcfs":
        raise SiaError("config table [snn] needs act = \"qcfs\" (an FP32 run has no SNN)")
    if "twin" not in cfg.snn:
        raise SiaError("config key 'snn.twin' (the FP32 twin's config file) is missing")
    stages = cfg.snn.get("stages", [])
    if not isinstance(stages, list) or not all(isinstance(st, dict) for st in stages):
        raise SiaError("config key 'snn.stages' must be an array of tables ([[snn.stages]])")
    _check_snn_table(cfg.snn, "snn")
    for i, st in enumerate(stages, 2):
        for key in st:
            if key not in STAGE_KEYS:
                raise SiaError(f"unknown config key 'snn.stages.{key}' (stage {i}: "
                               f"{', '.join(STAGE_KEYS)})")
        if st.get("finetune", 0) <= 0:
            raise SiaError(f"config key 'snn.stages.finetune' (stage {i}) must be > 0")
        _check_snn_table(st, "snn.stages")
    if "select_T" in cfg.snn:
        sel, t_eval = cfg.snn["select_T"], min(d.get("T", 8) for d in [cfg.snn, *stages])
        if not cfg.holdout:
            raise SiaError("config key 'snn.select_T' picks a stage on held-out training images: "
                           "set 'holdout' (and the same in the twin's config)")
        if not 1 <= sel <= t_eval:
            raise SiaError(f"config key 'snn.select_T' must be in 1..{t_eval} (the T every stage "
                           f"is evaluated to), got {sel}")


def _snn_value_ok(key: str, want: type, v) -> bool:
    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)
    if want is float:
        return is_int(v) or (isinstance(v, float) and math.isfinite(v))
    if want is int:
        return is_int(v)
    if key == "twin_set":   # ["key=value", ...], as `sia train --set`
        return isinstance(v, list) and all(isinstance(x, str) and "=" in x for x in v)
    if want is list:        # ft_loss_steps: a non-empty list of timesteps
        return isinstance(v, list) and bool(v) and all(is_int(x) for x in v)
    return isinstance(v, want)


def _check_snn_table(d: dict, where: str):
    for key, v in d.items():
        want = SNN_KEYS.get(key)
        if want is None:
            raise SiaError(f"unknown config key '{where}.{key}' ({', '.join(SNN_KEYS)})")
        if key != "stages" and not _snn_value_ok(key, want, v):
            raise SiaError(f"config key '{where}.{key}' has a bad value {v!r}")
    for key in ("calibrate", "finetune"):
        if d.get(key, 0) < 0:
            raise SiaError(f"config key '{where}.{key}' must be >= 0, got {d[key]}")
    for key in ("T", "ft_T", "ft_batch", "eval_batch", "threads"):
        if key in d and d[key] <= 0:
            raise SiaError(f"config key '{where}.{key}' must be > 0, got {d[key]}")
    if d.get("ft_lr", 0.01) <= 0:
        raise SiaError(f"config key '{where}.ft_lr' must be > 0, got {d['ft_lr']}")
    t_ft = d.get("ft_T", d.get("T", 8))
    if any(not 1 <= t <= t_ft for t in d.get("ft_loss_steps", [])):
        raise SiaError(f"config key '{where}.ft_loss_steps' {d['ft_loss_steps']}: each must be "
                       f"in 1..{t_ft} (the fine-tuning T)")


def from_dict(d: dict) -> TrainConfig:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    kw = {}
    for key, v in d.items():
        if key not in fields:
            raise SiaError(f"unknown config key {key!r}")
        default = getattr(TrainConfig(), key)
        if key == "weight_bits":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise SiaError(f"config key 'weight_bits' must be an integer, got {v!r}")
            v = v or None
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                raise SiaError(f"config key {key!r} must be true or false, got {v!r}")
        elif isinstance(default, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SiaError(f"config key {key!r} must be a number, got {v!r}")
            v = float(v)
            if not math.isfinite(v):   # nan slips through every range check below
                raise SiaError(f"config key {key!r} must be a finite number, got {v!r}")
        elif not isinstance(v, type(default)) or isinstance(v, bool) != isinstance(default, bool):
            raise SiaError(f"config key {key!r} must be of type {type(default).__name__}, got {v!r}")
        kw[key] = v
    cfg = TrainConfig(**kw)
    _check(cfg)
    return cfg


def parse_override(item: str) -> tuple[str, object]:
    """'key=value' with value in TOML syntax; a bare word is taken as a string."""
    if "=" not in item:
        raise SiaError(f"--set expects key=value, got {item!r}")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key, raw


def load_config(path, overrides=()) -> TrainConfig:
    p = Path(path)
    if not p.is_file():
        raise SiaError(f"no such config file: {p}")
    try:
        d = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SiaError(f"{p}: not a TOML config (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as e:
        raise SiaError(f"{p}: bad TOML: {e}") from None
    d.update(parse_override(o) for o in overrides)
    return from_dict(d)

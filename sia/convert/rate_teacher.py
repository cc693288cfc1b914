"""A float teacher grown from a program: its rate view, trained in float.

Distillation needs a teacher better than the student. The FP32 twin is one, but it
lives with the training run, not with the program. A program's own output at a longer T is
another (`ProgramTeacher`), but it knows no more than the student. This module grows a
third teacher from the program alone:

- the **rate view** of a program replaces each IF layer by the spike rate it tends to as
  T grows, clamp(current / threshold, 0, 1) (the QCFS activation without its floor),
  and keeps the integrator's current as the output: the program's V_T / T for T -> inf;
- its weights and biases start as the program's integers, as float tensors, and are then
  trained in float (no rounding, no weight range) by `train_rate_net`. Thresholds stay
  fixed: they only set each layer's scale, which the float weights can absorb.

Freed from 4-bit weights and from 1/T activation steps, the view can climb above the
program in a few epochs of training. Its logits keep the program's scale, so
`finetune` puts them on the student's temperature, as it does for `ProgramTeacher`.
With `integer`, the same view trains the program's own integers instead (weights
rounded half up and clamped to their declared range, biases rounded, both with a
straight-through gradient, as `finetune` does): `rate_finetune` is fine-tuning in the
T -> inf limit, one pass per image instead of T steps, and writes a program
(`sia finetune --view rate`).

The trained view is saved as `teacher.safetensors` (one tensor per synapse group and
bias, in program order) + `teacher.json` (what it was grown from and how) and loaded
back over the student program's graph; `sia finetune --teacher DIR` takes such a
directory as well as a training run.
"""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sia import SiaError
from sia.convert.finetune import (ProgramUnitTeacher, adam_groups, check_steps, cosine_adam,
                                  fit_temperature, program_with, record_stage, sample_batch,
                                  ste_int, weight_params)
from sia.program.format import IMAGE, Program
from sia.snn.synapse import apply_weights, sum_pool

WEIGHTS, INFO = "teacher.safetensors", "teacher.json"


class RateNet(torch.nn.Module):
    """The rate view of `program`: uint8 images [B, C, H, W] -> integrator current
    [B, classes], in the program's units. Float weights and biases start at the
    program's integers; thresholds are fixed buffers. `integer`: the forward rounds them
    to the program's integer grid (straight-through), and `to_program` writes them."""

    def __init__(self, program: Program, integer: bool = False):
        super().__init__()
        self.program, self.integer = program, integer
        self.weights = weight_params(program)
        self.biases = torch.nn.ParameterList()
        f32 = torch.float32
        for i, layer in enumerate(program.layers):
            self.biases.append(torch.nn.Parameter(torch.as_tensor(layer.bias, dtype=f32)))
            theta = (torch.as_tensor(layer.threshold, dtype=f32) if layer.kind == "if"
                     else torch.ones(layer.channels))
            self.register_buffer(f"theta{i}", theta)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images)[1]

    def run(self, images: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """({IF layer index: its rates [B, C, H, W]}, integrator current [B, classes])."""
        rates: dict[int, torch.Tensor] = {}
        k, out = 0, None
        for i, layer in enumerate(self.program.layers):
            cur = self.bias(i)[None, :, None, None]
            for syn in layer.inputs:
                x = images.float() if syn.source == IMAGE else rates[syn.source]
                cur = cur + apply_weights(syn, sum_pool(x, syn.pool), self.weight(k, syn))
                k += 1
            if layer.kind == "if":
                theta = getattr(self, f"theta{i}")[None, :, None, None]
                rates[i] = torch.clamp(cur / theta, 0, 1)
            else:
                out = cur.flatten(1)
        return rates, out

    def weight(self, k: int, syn) -> torch.Tensor:
        """Synapse group k's weights as the forward uses them."""
        if not self.integer:
            return self.weights[k]
        qmax = 2 ** (syn.weight_bits - 1) - 1
        return ste_int(self.weights[k], -qmax, qmax)

    def bias(self, i: int) -> torch.Tensor:
        return ste_int(self.biases[i], -2.0 ** 30, 2.0 ** 30) if self.integer else self.biases[i]

    def to_program(self, name_suffix: str = "_rate") -> Program:
        """An integer view's weights and biases as a validated program (thresholds and
        v_init as they were)."""
        if not self.integer:
            raise SiaError("only an integer rate view (RateNet(..., integer=True)) is a program")
        syns = [syn for layer in self.program.layers for syn in layer.inputs]
        with torch.no_grad():
            return program_with(self.program, [self.weight(k, s) for k, s in enumerate(syns)],
                                [self.bias(i) for i in range(len(self.program.layers))],
                                name_suffix=name_suffix)

    def named(self) -> dict:
        """The parameters by name: w<k> the k-th synapse group, b<i> layer i's bias."""
        return {**{f"w{k}": w for k, w in enumerate(self.weights)},
                **{f"b{i}": b for i, b in enumerate(self.biases)}}

    def state(self) -> dict:
        """`named()`'s tensors, detached on the CPU, for saving."""
        return {n: t.detach().float().cpu().contiguous() for n, t in self.named().items()}

    def load(self, tensors: dict, where: str):
        """Set the float weights from `state()`-named tensors; a missing, extra or
        mis-shaped tensor is a one-line SiaError naming `where`."""
        own = self.named()
        if set(tensors) != set(own):
            odd = sorted(set(tensors) ^ set(own))[0]
            raise SiaError(f"{where} does not fit program {self.program.name!r}: "
                           f"{'unexpected' if odd in tensors else 'missing'} tensor {odd!r}")
        for n, p in own.items():
            if tuple(tensors[n].shape) != tuple(p.shape):
                raise SiaError(f"{where} does not fit program {self.program.name!r}: tensor {n!r} "
                               f"has shape {tuple(tensors[n].shape)}, the program's {tuple(p.shape)}")
            with torch.no_grad():
                p.copy_(tensors[n])


class RateTeacher(ProgramUnitTeacher):
    """A trained rate view, frozen, as a distillation teacher: uint8 images -> logits
    in the program's units (`finetune` divides them by the student's temperature)."""

    def __init__(self, net: RateNet, info: dict):
        super().__init__()
        self.net = net.requires_grad_(False)
        self.info = info

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(images)


@torch.no_grad()
def rate_accuracy(net: RateNet, images, labels, batch_size: int = 500) -> float:
    """Top-1 accuracy of the rate view on (uint8 images, labels)."""
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    dev = next(net.parameters()).device
    correct = 0
    for i in range(0, len(labels), batch_size):
        z = net(images[i:i + batch_size].to(dev))
        correct += int((z.argmax(1).cpu() == labels[i:i + batch_size]).sum())
    return correct / max(1, len(labels))


def check_train_args(steps: int, batch_size: int, lr: float, label_smoothing: float):
    check_steps(steps, batch_size, lr)
    if not 0 <= label_smoothing < 1:
        raise SiaError(f"label smoothing {label_smoothing}: give 0 <= value < 1")


def train_rate_net(program: Program, images, labels, *, steps: int, batch_size: int = 128,
                   lr: float = 0.003, seed: int = 0, augment: bool = True,
                   label_smoothing: float = 0.1, bf16: bool = False, compile: bool = False,
                   progress: bool = True, integer: bool = False) -> tuple[RateNet, dict]:
    """Train the rate view of `program` in float on (uint8 images, labels) (`integer`:
    on the program's integer grid, see RateNet).
    Adam with cosine decay; like `finetune`, `lr` is a step in weight codes and 8-bit
    groups get one in proportion to their code range, biases a tenth. The logits enter
    cross-entropy divided by a temperature fixed on the first batch (the program's
    units are arbitrary; the one that minimises that batch's loss). bf16: autocast the forward (CPUs with AMX, GPUs).
    Returns (net, history with per-step loss and accuracy)."""
    check_train_args(steps, batch_size, lr, label_smoothing)
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    net = RateNet(program, integer=integer)
    forward = net
    if compile:
        from sia.train.trainer import compiled
        forward = compiled(net, torch.device("cpu"))
    opt, sched = cosine_adam(adam_groups(program, net.weights, net.biases, lr), steps)
    gen = torch.Generator().manual_seed(seed)
    tau, hist = None, {"loss": [], "acc": []}
    bar = tqdm(range(steps), desc="rate view, integer" if integer else "rate teacher",
               disable=not progress)
    for step in bar:
        x, y = sample_batch(images, labels, batch_size, gen, augment)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = forward(x).float()
        if tau is None:
            tau = fit_temperature(z, y, 1, label_smoothing)
        loss = F.cross_entropy(z / tau, y, label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist["loss"].append(float(loss.detach()))
        hist["acc"].append(float((z.argmax(1) == y).float().mean()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(hist['loss'][-50:]):.3f}",
                            acc=f"{np.mean(hist['acc'][-50:]):.3f}")
    hist["temperature"] = float(tau)
    return net, hist


def rate_finetune(program: Program, images, labels, *, steps: int, batch_size: int = 128,
                  lr: float = 0.003, seed: int = 0, augment: bool = True,
                  label_smoothing: float = 0.1, bf16: bool = False, compile: bool = False,
                  progress: bool = True) -> tuple[Program, dict]:
    """Fine-tune `program`'s integer weights and biases in its rate view (the T -> inf
    limit of its spike counts; thresholds and v_init stay) and return the program, with
    the stage recorded in its meta as `finetune` does. Returns (program, history)."""
    net, hist = train_rate_net(program, images, labels, steps=steps, batch_size=batch_size,
                               lr=lr, seed=seed, augment=augment,
                               label_smoothing=label_smoothing, bf16=bf16, compile=compile,
                               progress=progress, integer=True)
    stage = {"view": "rate", "steps": steps, "batch": batch_size, "lr": lr, "seed": seed,
             "label_smoothing": label_smoothing, "bf16": bf16, "compiled": compile,
             "temperature": float(hist["temperature"])}
    return record_stage(net.to_program("_ft"), stage), hist


def save_teacher(net: RateNet, out_dir, info: dict, extra: dict | None = None) -> list[Path]:
    """OUT/teacher.safetensors + OUT/teacher.json (+ `extra` name -> writer), all or
    none (sia/outputs.py)."""
    from safetensors.torch import save_file

    from sia.outputs import write_outputs
    info = {"kind": "rate_teacher", "program": net.program.name, **info}
    return write_outputs(out_dir, {
        WEIGHTS: lambda p: save_file(net.state(), str(p)),
        INFO: lambda p: p.write_text(json.dumps(info, indent=1) + "\n"), **(extra or {})})


def is_teacher_dir(path) -> bool:
    """Whether `path` names a saved rate teacher (teacher.json inside)."""
    return (Path(path) / INFO).is_file()


def load_teacher(path, program: Program, role: str = "--teacher") -> RateTeacher:
    """The rate teacher saved in directory `path`, built over `program`'s graph (the
    student's: the teacher must have been grown from a program of the same shape)."""
    from safetensors.torch import load_file
    d = Path(path)
    where = f"{role} {d}"
    for f in (d / INFO, d / WEIGHTS):
        if not f.is_file():
            raise SiaError(f"{where}: no such file: {f}")
    try:
        info = json.loads((d / INFO).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SiaError(f"{where}: {INFO} is not valid JSON ({e})") from None
    if not isinstance(info, dict) or info.get("kind") != "rate_teacher":
        raise SiaError(f"{where}: {INFO} does not describe a rate teacher (kind 'rate_teacher')")
    try:
        tensors = load_file(str(d / WEIGHTS))
    except Exception as e:   # safetensors raises its own error types for a damaged file
        raise SiaError(f"{where}: {WEIGHTS} is truncated or not a safetensors file "
                       f"({type(e).__name__})") from None
    net = RateNet(program)
    net.load(tensors, where)
    return RateTeacher(net, info)

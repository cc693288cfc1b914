"""Spike-aware fine-tuning of an integer program (hybrid conversion, after Rathi et al.,
ICLR 2020, "Enabling deep spiking neural networks with hybrid conversion and spike
timing dependent backpropagation").

Conversion gives an SNN whose spike counts approximate the QCFS ANN; at small T the
order of spikes (a neuron that fired early on inputs that later turn negative) costs
accuracy the ANN never sees. This stage trains the converted SNN itself, in the
integer domain, so that nothing needs converting afterwards:

- the forward pass is the golden simulator's arithmetic (docs/semantics.md) on float
  tensors: latent float weights and biases are rounded half up to integers and
  clamped to each group's declared weight range (straight-through estimator), the
  IF recurrence fires at `V >= threshold` and resets by subtraction (a signed layer
  also fires -1 at `V < 0` while its net count is positive);
- backward uses a triangular surrogate of the spike's derivative, one threshold wide,
  and detaches the reset (Zenke & Vogels 2021: both are the usual stable choices);
- the loss is cross-entropy on the integrator's membrane after each timestep in
  `loss_steps` (e.g. 4 and 8, the two T the targets name), scaled by 1/t and a
  fixed temperature chosen on the first batch; optionally half of it is
  distillation from a teacher: a float model (the program's FP32 twin) or, where no
  twin is at hand, a frozen program at a longer T (`ProgramTeacher`: the program itself
  at T = 8 teaching its T = 4 steps, temporal self-distillation) or the program's rate
  view trained in float (`sia.convert.rate_teacher`).

Weights, biases and identity-shortcut weights move; thresholds and v_init too when
asked (`neurons`: trainable thresholds, after Rathi et al., and initial membranes, after
Bu et al., AAAI 2022, "Optimized potential initialization for low-latency SNNs");
shapes and weight widths stay as converted. The result is an ordinary program (declared widths
recomputed and validated), so every backend runs it unchanged.
"""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sia import SiaError
from sia.program.bounds import declare_bits
from sia.program.format import IMAGE, Program
from sia.program.validate import validate
from sia.quant import round_half_up_np
from sia.snn.synapse import apply_weights, sum_pool


class _Spike(torch.autograd.Function):
    """Heaviside(V - theta) forward; triangle of half-width theta backward (for V, and
    with the opposite sign for theta: the surrogate is a function of V - theta)."""

    @staticmethod
    def forward(ctx, v, theta):
        ctx.save_for_backward(v, theta)
        return (v >= theta).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        v, theta = ctx.saved_tensors
        g = grad * torch.clamp(1 - (v - theta).abs() / theta, min=0) / theta
        return g, (-g if ctx.needs_input_grad[1] else None)


class _NegSpike(torch.autograd.Function):
    """A signed neuron's -1 branch: [V < 0] forward; backward a triangle of half-width
    theta around V = 0, the mirror of _Spike's (only V gets a gradient)."""

    @staticmethod
    def forward(ctx, v, theta):
        ctx.save_for_backward(v, theta)
        return (v < 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        v, theta = ctx.saved_tensors
        return -grad * torch.clamp(1 - v.abs() / theta, min=0) / theta, None


def ste_int(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Round half up and clamp to [lo, hi] forward, identity backward."""
    q = torch.clamp(torch.floor(x + 0.5), lo, hi)
    return x + (q - x).detach()


def weight_params(program: Program) -> torch.nn.ParameterList:
    """One float parameter per synapse group, in program order, at the group's integers."""
    return torch.nn.ParameterList(torch.nn.Parameter(torch.as_tensor(syn.weight, dtype=torch.float32))
                                  for layer in program.layers for syn in layer.inputs)


def adam_groups(program: Program, weights, biases, lr: float) -> list[dict]:
    """Adam parameter groups: Adam moves every latent value by ~lr per step whatever its
    gradient's size, so 8-bit groups (first / last layer) get a step in proportion to
    their code range, and the biases a tenth."""
    bits = [syn.weight_bits for layer in program.layers for syn in layer.inputs]
    return ([{"params": [w], "lr": lr * (2 ** (b - 1) - 1) / 7} for w, b in zip(weights, bits)]
            + [{"params": list(biases), "lr": lr * 0.1}])


def cosine_adam(groups: list[dict], steps: int):
    """Adam over `groups` with its step decayed over `steps` steps on a half cosine."""
    opt = torch.optim.Adam(groups)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))


def sample_batch(images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 gen: torch.Generator, augment: bool):
    """A training batch drawn with replacement from `gen`, cropped and flipped when
    `augment` (the same draws, in the same order, for every trainer here)."""
    from sia.data.augment import crop_flip
    idx = torch.randint(0, len(labels), (batch_size,), generator=gen)
    x, y = images[idx], labels[idx]
    return (crop_flip(x, gen) if augment else x), y


class ProgramNet(torch.nn.Module):
    """A program as trainable tensors: one latent weight per synapse group, one latent
    bias per layer (in units of the layer's converted threshold, so one learning rate
    suits all); with `neurons`, also each IF layer's thresholds and v_init (same unit)."""

    def __init__(self, program: Program, neurons: bool = False):
        super().__init__()
        self.program = program
        self.weights = weight_params(program)
        self.biases = torch.nn.ParameterList()
        self.thresholds = torch.nn.ParameterList()
        self.v_inits = torch.nn.ParameterList()
        f32 = torch.float32
        for i, layer in enumerate(program.layers):
            # unit: the converted threshold (or 1 for the integrator); buffers follow .to(device)
            unit = (torch.as_tensor(layer.threshold, dtype=f32) if layer.kind == "if"
                    else torch.ones(layer.channels))
            self.register_buffer(f"unit{i}", unit)
            v0 = torch.as_tensor(layer.v_init, dtype=f32) / unit
            self.v_inits.append(torch.nn.Parameter(v0, requires_grad=neurons and layer.kind == "if"))
            self.thresholds.append(torch.nn.Parameter(torch.ones_like(unit),
                                                      requires_grad=neurons and layer.kind == "if"))
            self.biases.append(torch.nn.Parameter(torch.as_tensor(layer.bias, dtype=f32) / unit))

    def int_weight(self, k: int, syn) -> torch.Tensor:
        qmax = 2 ** (syn.weight_bits - 1) - 1
        return ste_int(self.weights[k], -qmax, qmax)

    def int_bias(self, i: int) -> torch.Tensor:
        return ste_int(self.biases[i] * getattr(self, f"unit{i}"), -2.0 ** 30, 2.0 ** 30)

    def int_threshold(self, i: int) -> torch.Tensor:
        return ste_int(self.thresholds[i] * getattr(self, f"unit{i}"), 1, 2.0 ** 30)

    def int_v_init(self, i: int) -> torch.Tensor:
        return ste_int(self.v_inits[i] * getattr(self, f"unit{i}"), -2.0 ** 30, 2.0 ** 30)

    def forward(self, images: torch.Tensor, T: int) -> torch.Tensor:
        """images uint8 [B, C, H, W] -> integrator membrane after each step [T, B, classes]."""
        prog, B = self.program, images.shape[0]
        outs: dict[int, torch.Tensor] = {}
        k = 0
        v_out = None
        for i, layer in enumerate(prog.layers):
            C, H, W = layer.shape
            const = self.int_bias(i)[None, :, None, None]
            varying = None
            for syn in layer.inputs:
                w = self.int_weight(k, syn)
                k += 1
                x = images.to(w.device).float() if syn.source == IMAGE else outs[syn.source]
                y = apply_weights(syn, sum_pool(x, syn.pool), w)
                if syn.source == IMAGE:
                    const = const + y
                else:
                    varying = y if varying is None else varying + y
            cur = const[None] if varying is None else varying.view(T, B, C, H, W) + const[None]
            cur = cur.expand(T, B, C, H, W)
            v = self.int_v_init(i)[None, :, None, None]
            if layer.kind == "if":
                theta = self.int_threshold(i)[None, :, None, None].expand(B, C, H, W)
                spikes = []
                net = torch.zeros_like(theta)
                for t in range(T):
                    v = v + cur[t]
                    s = _Spike.apply(v, theta)
                    if layer.signed:   # -1 when V < 0 and an earlier spike can be taken back
                        s = s - _NegSpike.apply(v, theta.detach()) * (net > 0).to(v.dtype)
                        net = net + s.detach()
                    v = v - s.detach() * theta
                    spikes.append(s)
                outs[i] = torch.stack(spikes).view(T * B, C, H, W)
            else:
                v_out = torch.cumsum(cur, 0).reshape(T, B, -1) + v.reshape(1, 1, -1)
        return v_out

    def to_program(self, name_suffix: str = "_ft") -> Program:
        """The current integers as a validated program (widths re-declared)."""
        with torch.no_grad():
            syns = [syn for layer in self.program.layers for syn in layer.inputs]
            n = len(self.program.layers)
            return program_with(
                self.program, [self.int_weight(k, syn) for k, syn in enumerate(syns)],
                [self.int_bias(i) for i in range(n)], [self.int_v_init(i) for i in range(n)],
                [self.int_threshold(i) if layer.kind == "if" else None
                 for i, layer in enumerate(self.program.layers)], name_suffix)


def program_with(program: Program, weights, biases, v_inits=None, thresholds=None,
                 name_suffix: str = "_ft") -> Program:
    """A copy of `program` with new integers (tensors holding integer values: one weight
    per synapse group in program order, one bias per layer; v_init and thresholds per
    layer, or None to keep the program's), widths re-declared and validated. A later
    stage keeps the name it already has."""
    prog = copy.deepcopy(program)
    as_int = lambda t: round_half_up_np(t.detach().cpu().numpy()).astype(np.int64)  # noqa: E731
    k = 0
    for i, layer in enumerate(prog.layers):
        for syn in layer.inputs:
            syn.weight = as_int(weights[k]).reshape(syn.weight.shape)
            k += 1
        layer.bias = as_int(biases[i])
        if v_inits is not None:
            layer.v_init = as_int(v_inits[i])
        if thresholds is not None and layer.kind == "if":
            layer.threshold = as_int(thresholds[i])
        declare_bits(prog, layer)
    if not prog.name.endswith(name_suffix):
        prog.name = prog.name + name_suffix
    return validate(prog)


def record_stage(prog: Program, stage: dict) -> Program:
    """Writes `stage` as the program's "finetune" meta and appends it to
    "finetune_stages" (every stage the program went through)."""
    earlier = prog.meta.get("finetune_stages") or ([prog.meta["finetune"]]
                                                   if "finetune" in prog.meta else [])
    prog.meta = {**prog.meta, "finetune": stage, "finetune_stages": [*earlier, stage]}
    return prog


class ProgramUnitTeacher(torch.nn.Module):
    """A teacher whose logits are in the program's units (uint8 images in): `finetune`
    puts them on the student's temperature, so that teacher and student share one scale."""


class ProgramTeacher(ProgramUnitTeacher):
    """A frozen program as a distillation teacher: uint8 images -> its rate logits
    V_T / T after `T` steps (`finetune` puts them on the student's temperature, so that
    teacher and student logits share one scale: both are the same kind of membrane)."""

    def __init__(self, program: Program, T: int, compile: bool = False, device=None):
        super().__init__()
        if not 1 <= T <= program.t_max:
            raise SiaError(f"teacher T={T}: give 1..{program.t_max} (the program's t_max)")
        self.T = T
        self.net = ProgramNet(program).requires_grad_(False)
        self._forward = self.net
        if compile:
            from sia.train.trainer import compiled
            self._forward = compiled(self.net, torch.device(device or "cpu"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._forward(images, self.T)[self.T - 1] / self.T


@torch.no_grad()
def program_accuracy(program: Program, images, labels, T: int = 8, device=None,
                     batch_size: int = 250) -> list[float]:
    """Accuracy after each t = 1..T of the program's torch twin (ProgramNet: the golden
    simulator's integer arithmetic in float32, exact while every value stays below 2**24;
    tests/test_finetune.py checks its predictions against sia.snn.simulate). For quick
    numbers on a GPU; reported results come from the golden simulator."""
    if T > program.t_max:
        raise SiaError(f"T={T} exceeds the program's t_max={program.t_max}")
    net = ProgramNet(program).to(torch.device(device or "cpu"))
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    correct = torch.zeros(T, dtype=torch.int64)
    for i in range(0, len(labels), batch_size):
        v = net(images[i:i + batch_size], T)
        correct += (v.argmax(-1).cpu() == labels[i:i + batch_size][None]).sum(1)
    return [float(c) / len(labels) for c in correct]


def fit_temperature(v_T: torch.Tensor, labels: torch.Tensor, T: int,
                    label_smoothing: float = 0.0) -> float:
    """The scale that minimises cross-entropy of V_T / (T * tau) on one batch (log grid;
    with the label smoothing the loss uses: a fitted program's logits would otherwise get
    a scale so small that smoothing dominates)."""
    z = v_T.detach() / T
    best = min((float(F.cross_entropy(z / tau, labels, label_smoothing=label_smoothing)), tau)
               for tau in np.geomspace(1e-3, 1e4, 71) * float(z.std() + 1e-9))
    return best[1]


def check_steps(steps: int, batch_size: int, lr: float):
    """Refuse an impossible step count, batch size or step size (one-line SiaError)."""
    if steps < 1 or batch_size < 1 or not lr > 0 or not math.isfinite(lr):
        raise SiaError("need steps >= 1, batch size >= 1 and a finite lr > 0")


def check_args(program: Program, T: int, loss_steps, steps: int, batch_size: int,
               lr: float) -> list[int]:
    """Refuse bad fine-tuning parameters (one-line SiaError) before any data is loaded;
    returns the sorted loss steps (default: T only)."""
    loss_steps = sorted(set(int(t) for t in (loss_steps or (T,))))
    if not loss_steps or loss_steps[0] < 1 or loss_steps[-1] > T:
        raise SiaError(f"loss steps {loss_steps} must lie in 1..T={T}")
    if T > program.t_max:
        raise SiaError(f"T={T} exceeds the program's t_max={program.t_max}")
    check_steps(steps, batch_size, lr)
    return loss_steps


def finetune(program: Program, images, labels, *, T: int = 8, loss_steps=None,
             steps: int = 500, batch_size: int = 64, lr: float = 0.01, seed: int = 0,
             augment: bool = True, progress: bool = True, log=None, teacher=None,
             alpha: float = 0.5, kd_temperature: float = 4.0, device=None,
             neurons: bool = False, compile: bool = False) -> tuple[Program, dict]:
    """Train `program`'s integers on (uint8 images, labels) for `steps` batches.
    loss_steps: the t whose predictions enter the loss (default: T only).
    teacher: optional float model (input: images / 255) whose softened outputs the SNN
    also learns (knowledge distillation, weight `alpha`, temperature `kd_temperature`),
    or a `ProgramUnitTeacher` (`ProgramTeacher`, `RateTeacher`: uint8 images in, logits
    in the program's units, put on the student's temperature).
    device: where to train (default CPU); the images stay where they are, each batch
    moves. neurons: also train each IF layer's thresholds and v_init (like the biases,
    in units of the converted threshold). compile: run the T-step forward through
    torch.compile (fuses the neuron loop's elementwise ops; 1.3x per step on a 2-core CPU,
    about a minute to compile; float results differ from eager in the last bits).
    Returns (fine-tuned program, history)."""
    loss_steps = check_args(program, T, loss_steps, steps, batch_size, lr)
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    dev = torch.device(device or "cpu")
    if teacher is not None:
        teacher.eval().to(dev)
    net = ProgramNet(program, neurons=neurons).to(dev)
    if compile:
        from sia.train.trainer import compiled
        forward = compiled(net, dev)
    else:
        forward = net
    groups = adam_groups(program, net.weights, net.biases, lr)
    if neurons:
        groups.append({"params": [q for q in (*net.thresholds, *net.v_inits) if q.requires_grad],
                       "lr": lr * 0.1})
    opt, sched = cosine_adam(groups, steps)
    gen = torch.Generator().manual_seed(seed)
    tau, hist = None, {"loss": [], "acc": []}
    bar = tqdm(range(steps), desc=f"fine-tune T={T}", disable=not progress)
    for step in bar:
        x, y = sample_batch(images, labels, batch_size, gen, augment)
        x, y = x.to(dev), y.to(dev)
        v = forward(x, T)
        if tau is None:
            tau = fit_temperature(v[T - 1], y, T)
        if teacher is not None:
            with torch.no_grad():
                t_logits = (teacher(x) / tau if isinstance(teacher, ProgramUnitTeacher)
                            else teacher(x.float() / 255).float())
                soft = F.softmax(t_logits / kd_temperature, 1)
        loss = 0.0
        for t in loss_steps:
            z = v[t - 1] / (t * tau)
            part = F.cross_entropy(z, y)
            if teacher is not None:
                kd = F.kl_div(F.log_softmax(z / kd_temperature, 1), soft, reduction="batchmean")
                part = (1 - alpha) * part + alpha * kd * kd_temperature ** 2
            loss = loss + part / len(loss_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = float((v[loss_steps[-1] - 1].argmax(-1) == y).float().mean())
        hist["loss"].append(float(loss.detach()))
        hist["acc"].append(acc)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(hist['loss'][-50:]):.3f}", acc=f"{np.mean(hist['acc'][-50:]):.3f}")
            if log:
                log(step, float(np.mean(hist['loss'][-50:])), float(np.mean(hist['acc'][-50:])))
    hist["temperature"] = tau
    prog = net.to_program()
    stage = {"T": T, "loss_steps": loss_steps, "steps": steps, "batch": batch_size, "lr": lr,
             "seed": seed, "distilled": teacher is not None, "teacher_T": teacher.T if isinstance(teacher, ProgramTeacher) else None,
             "neurons": neurons, "compiled": compile,
             "temperature": float(tau)}
    return record_stage(prog, stage), hist


def plot_history(hist: dict, path, title: str):
    """Loss and training accuracy per batch (50-batch running mean) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(x):
        x = np.asarray(x, dtype=float)
        c = np.cumsum(np.insert(x, 0, 0.0))
        n = np.minimum(np.arange(1, len(x) + 1), 50)
        return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(smooth(hist["loss"]))
    ax[0].set(xlabel="batch", ylabel="loss (50-batch mean)")
    ax[1].plot(smooth(hist["acc"]))
    ax[1].set(xlabel="batch", ylabel="train accuracy (50-batch mean)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

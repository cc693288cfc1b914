"""Where an SNN program loses accuracy against its own integer ANN (sia/snn/ann.py):
per-layer conversion error over T timesteps, measured on the golden simulator's traces.

For every IF layer and neuron, with `count` its spikes in T steps, `n` the integer ANN's
level (0..L) and V_T its membrane after step T:

- rate error  e = count * L / T - n, in ANN levels: what the layer's spike rate misses
  of the ANN, its own error and what it inherits from its sources together (at T = L
  it is count - n exactly).
- own error   o = count - clip(floor((V_T + theta * count) / theta), 0, T): the spikes
  the layer fired beyond (o > 0, "excess": fired early, then its input turned negative)
  or short of (o < 0, "owed": its input came too late, or faster than one spike per
  step) what its own total input of the T steps, v_init + sum_t I_t = V_T + theta *
  count, would give at once. This is the unevenness error of ANN-SNN conversion; no
  error of the sources enters it.

Reported per layer as means over neurons and images, and for the network the accuracy
per t beside the integer ANN's accuracy and how often the two predict the same class.
"""

import numpy as np
import torch
from tqdm import tqdm

from sia import SiaError
from sia.program.format import Program
from sia.snn.ann import ann_levels
from sia.snn.golden import check_run, run_batch

_SUMS = ("neurons", "ann_level", "spikes", "rate_err", "rate_abs", "rate_mismatch",
         "own_excess", "own_owed", "own_abs")


def layer_errors(theta: torch.Tensor, spikes: torch.Tensor, v_last: torch.Tensor,
                 level: torch.Tensor, L: int) -> dict[str, int]:
    """Integer sums (not means, so batches add up exactly) of one IF layer's errors over
    a batch; the rate sums are in units of 1/T ANN level. spikes [T, B, C, H, W] 0/1,
    v_last and level [B, C, H, W] integers, theta [1, C, 1, 1]."""
    T = spikes.shape[0]
    count = spikes.sum(0, dtype=torch.int64)
    v_last, level = v_last.to(torch.int64), level.to(torch.int64)
    total = v_last + theta * count                       # v_init + sum_t I_t
    ideal = torch.clamp(torch.div(total, theta, rounding_mode="floor"), 0, T)
    own = count - ideal
    diff = count * L - level * T                         # rate error, times T
    return {k: int(v) for k, v in {
        "neurons": count.numel(), "ann_level": level.sum(), "spikes": count.sum(),
        "rate_err": diff.sum(), "rate_abs": diff.abs().sum(), "rate_mismatch": (diff != 0).sum(),
        "own_excess": (own > 0).sum(), "own_owed": (own < 0).sum(), "own_abs": own.abs().sum()}.items()}


def diagnose(program: Program, images, labels=None, T: int | None = None,
             batch_size: int = 32, progress: bool = False) -> dict:
    """Per-layer conversion error of `program` on `images` (uint8 [N, C, H, W]) over T
    steps (default: the program's), as a JSON-ready dict."""
    T, images = check_run(program, images, T)
    if batch_size < 1:
        raise SiaError(f"--batch {batch_size}: give a batch of at least 1 image")
    if not images.shape[0]:
        raise SiaError("no images to diagnose")
    L = program.levels
    if_layers = [layer for layer in program.layers if layer.kind == "if"]
    sums = {layer.name: dict.fromkeys(_SUMS, 0) for layer in if_layers}
    snn_pred, ann_pred = [], []
    n = images.shape[0]
    bar = tqdm(range(0, n, batch_size), desc=f"diagnose T={T}", disable=not progress, unit="batch")
    with torch.no_grad():
        for start in bar:
            batch = images[start:start + batch_size]
            st = run_batch(program, batch, T, record=True)
            levels = ann_levels(program, batch)
            for layer in if_layers:
                tr = st["traces"][layer.name]
                theta = torch.as_tensor(layer.threshold, dtype=torch.int64)[None, :, None, None]
                part = layer_errors(theta, tr["spikes"], tr["v"][-1], levels[layer.name], L)
                for k, val in part.items():
                    sums[layer.name][k] += val
            snn_pred.append(st["output_v"].argmax(-1))               # [T, B]
            ann_pred.append(levels[program.output.name].argmax(-1))  # [B]
    snn_pred = torch.cat(snn_pred, dim=1).numpy()
    ann_pred = torch.cat(ann_pred).numpy()
    layers = []
    for layer in if_layers:
        s = sums[layer.name]
        k = s["neurons"]
        layers.append({
            "name": layer.name, "neurons_per_image": int(np.prod(layer.shape)),
            "ann_level": s["ann_level"] / k, "snn_level": s["spikes"] * L / (T * k),
            "rate_error": s["rate_err"] / (T * k), "rate_abs_error": s["rate_abs"] / (T * k),
            "rate_mismatch": s["rate_mismatch"] / k,
            "own_excess": s["own_excess"] / k, "own_owed": s["own_owed"] / k,
            "own_abs_error": s["own_abs"] / k, "spike_rate": s["spikes"] / (k * T)})
    out = {"program": program.name, "timesteps": T, "levels": L, "images": int(n),
           "agreement_with_ann": [float((snn_pred[t] == ann_pred).mean()) for t in range(T)],
           "layers": layers}
    if labels is not None:
        lab = np.asarray(labels)[:n]
        out["accuracy"] = [float((snn_pred[t] == lab).mean()) for t in range(T)]
        out["ann_accuracy"] = float((ann_pred == lab).mean())
    return out


def summary_line(report: dict) -> str:
    """One line for people: accuracy, agreement and the worst layers."""
    T = report["timesteps"]
    worst_rate = max(report["layers"], key=lambda r: r["rate_abs_error"])
    worst_own = max(report["layers"], key=lambda r: r["own_excess"] + r["own_owed"])
    acc = (f"SNN@T={T} {100 * report['accuracy'][-1]:.2f}% vs integer ANN "
           f"{100 * report['ann_accuracy']:.2f}%, " if "accuracy" in report else "")
    return (f"{report['program']} ({report['images']} images): {acc}same class as the ANN "
            f"{100 * report['agreement_with_ann'][-1]:.1f}%; largest rate error "
            f"{worst_rate['name']} {worst_rate['rate_abs_error']:.3f} levels/neuron; "
            f"most uneven {worst_own['name']} ({100 * worst_own['own_excess']:.1f}% excess, "
            f"{100 * worst_own['own_owed']:.1f}% owed)")


def plot(report: dict, path) -> None:
    """Per layer: mean |rate error| (levels) and the share of neurons with own excess /
    owed spikes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["layers"]
    x = np.arange(len(rows))
    fig, (a, b) = plt.subplots(2, 1, figsize=(max(6.0, 0.45 * len(rows) + 2), 6), sharex=True)
    a.bar(x, [r["rate_abs_error"] for r in rows], color="tab:blue")
    a.set_ylabel("mean |rate error|\n(ANN levels)")
    a.set_title(f"{report['program']}: conversion error at T = {report['timesteps']} "
                f"(L = {report['levels']}, {report['images']} images)")
    b.bar(x - 0.2, [100 * r["own_excess"] for r in rows], 0.4, label="excess spikes", color="tab:red")
    b.bar(x + 0.2, [100 * r["own_owed"] for r in rows], 0.4, label="owed spikes", color="tab:green")
    b.set_ylabel("neurons with own\nerror (%)")
    b.legend()
    b.set_xticks(x, [r["name"] for r in rows], rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

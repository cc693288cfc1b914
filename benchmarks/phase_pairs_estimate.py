"""The projection that decided to build phase pairs for stride-2 3x3 convolutions
(docs/architecture.md, "Phase pairs"; session 7). The option exists now
(`SIAConfig.phase_pairs`, `sia simulate --phase-pairs`) and the model of it lands
within 0.3 % of this projection; the script stays as the way to size such an option
from spike statistics before building it.

Source positions 2X and 2X+1 of a stride-2, padding-1 3x3 conv use disjoint tap
columns (kx = 1 vs kx = 0, 2). A PE whose weight memory is split by tap column could
take E events from each word of such a pair in one cycle: a pair of words costs
max(1, ceil(n_lo / E), ceil(n_hi / E)) cycles instead of what the dispatcher spends on
them without the option (`sia.hw.model.schedule.scan_stats`: word pairs within a position's run).
This counts both from the golden simulator's spike maps, per stride-2 layer and per
tile (every tile scans the same words), and projects the network's cycles if the
saving were not hidden by anything else (the layers are dispatch-bound). A projection,
labelled so (one-tap pairs, built later the same session, are not in it).

    python benchmarks/phase_pairs_estimate.py PROGRAM [--images 8] [--events 2,4]
        [--config CFG.json] [--pes P] [--data-dir D] [--out FILE.json]
"""

import argparse
import dataclasses

import numpy as np
import torch

from sia import run_main
from sia.hw.model import projection
from sia.hw.model import run as model_run
from sia.hw.model import schedule as S
from sia.hw.params import SIAConfig
from sia.snn.golden import run_batch


def eligible(syn) -> bool:
    return (syn.op == "conv" and syn.kernel == (3, 3) and syn.stride == 2 and syn.padding == 1
            and syn.pool == 1 and syn.source >= 0)


def pair_cycles(words: torch.Tensor, E: int) -> int:
    """words [T,B,nw,H,W] set bits per word -> dispatch cycles with phase pairs."""
    if words.shape[-1] % 2:
        words = torch.nn.functional.pad(words, (0, 1))
    lo, hi = words[..., 0::2], words[..., 1::2]
    cost = torch.maximum(S.ceil_div(lo, E), S.ceil_div(hi, E)).clamp(min=1)
    return int(cost.sum())


def estimate(program, images, cfg: SIAConfig, events: list[int]) -> dict:
    T = program.timesteps
    spikes = {}
    needed = {s.source for layer in program.layers for s in layer.inputs if eligible(s)}
    run_batch(program, torch.as_tensor(images), T,
              on_layer=lambda j, s: spikes.__setitem__(j, s) if j in needed else None)
    out = {"program": program.name, "images": int(images.shape[0]), "T": T, "per_E": {}}
    for E in events:
        c = dataclasses.replace(cfg, events_per_cycle=E)
        rows, saved = [], 0.0
        for i, layer in enumerate(program.layers):
            for s in layer.inputs:
                if not eligible(s):
                    continue
                words = S.group_words(program, layer, s, spikes[s.source], 0, c)
                d = S.scan_stats(s, words, layer.shape[1], E)
                now = int(d["accumulate"].sum() + d["dispatch_empty"].sum())
                new = pair_cycles(S.scanned(s, words, layer.shape[1]), E)
                tiles = S.tiles(layer, c)
                n = images.shape[0]
                rows.append({"layer": layer.name, "tiles": tiles,
                             "dispatch_per_image_now": now * tiles / n,
                             "dispatch_per_image_pairs": new * tiles / n,
                             "ratio": new / now})
                saved += (now - new) * tiles / n
        r = model_run(program, images, config=c, weight_batch=images.shape[0], launch_images=0)
        total = float(np.mean(r.image_cycles))
        sops = float(np.mean(r.image_sops))
        f = c.clock_mhz * 1e6
        out["per_E"][E] = {
            "layers": rows, "cycles_per_image_model": total,
            "cycles_per_image_projected": total - saved,
            "gops_per_pe_model": sops * f / total / 1e9 / c.pes,
            "gops_per_pe_projected": sops * f / (total - saved) / 1e9 / c.pes}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("program")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--events", default="2,4")
    ap.add_argument("--config", default=None)
    ap.add_argument("--pes", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    p, images, cfg = projection.inputs(a, pes=a.pes or None)
    res = estimate(p, images, cfg, [int(e) for e in a.events.split(",")])
    for E, d in res["per_E"].items():
        for row in d["layers"]:
            print(f"E={E} {row['layer']}: {row['dispatch_per_image_now']:,.0f} -> "
                  f"{row['dispatch_per_image_pairs']:,.0f} dispatch cycles/image ({row['ratio']:.3f}x)")
        print(projection.line(d, pes=cfg.pes, events=E))
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "phase_pairs_estimate.py")

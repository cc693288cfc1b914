"""Projection for a not-built option: two output channels per PE on 2x2 maps
(docs/architecture.md, "Performance against the targets", session 10).

On a 2x2 output map a 3x3, padding-1 conv event reaches 4 of the PE's 9 tap lanes
(the other 5 fall outside the map): 44 % of the lanes at best, and those layers are
event-bound (VGG-11 on CIFAR-10: the last two convs). With narrow weights (every tap
fits weight_bits / 2, as the 4-bit hidden layers on an 8-bit build) one 9 x weight_bits
weight row holds two output channels' kernels, so a PE could accumulate channel A's 4
taps and channel B's 4 taps per event into its 4 psum row slots (A's two output rows,
B's two), draining a virtual 4 x 2 map: half the tiles for the same events per tile.

The RTL does not have this. The projection runs the model twice - at P and at 2P PEs -
and swaps in the 2P cycles of the eligible layers (dispatch per tile does not depend
on P), plus an upper bound on the extra exposed drain: the virtual map's 2 x H x W
drain cycles per timestep per tile. A projection, labelled so.

    python benchmarks/dual_channel_estimate.py PROGRAM [--images 256] [--pes 16]
        [--events 2] [--config CFG.json] [--data-dir D] [--out FILE.json]
"""

import dataclasses

import numpy as np

from sia import run_main
from sia.hw.model import projection
from sia.hw.model import run as model_run
from sia.hw.params import SIAConfig
from sia.hw.regmap import narrow_weights


def eligible(program, i: int, cfg: SIAConfig) -> bool:
    """A spiking 3x3, stride-1, padding-1 conv onto a map of at most 2x2 whose weights
    fit half the build's width."""
    layer = program.layers[i]
    _, h, w = layer.shape
    return (h <= 2 and w <= 2 and narrow_weights(program, i, cfg)
            and all(s.op == "conv" and s.kernel == (3, 3) and s.stride == 1
                    and s.padding == 1 and s.source >= 0 for s in layer.inputs))


def estimate(program, images, cfg: SIAConfig, weight_batch: int) -> dict:
    T = program.timesteps
    runs = {p: model_run(program, images, config=dataclasses.replace(cfg, pes=p),
                         weight_batch=weight_batch, launch_images=0)
            for p in (cfg.pes, 2 * cfg.pes)}
    now, dual = runs[cfg.pes], runs[2 * cfg.pes]
    n, f = images.shape[0], cfg.clock_mhz * 1e6
    total = float(np.mean(now.image_cycles))
    sops = float(np.mean(now.image_sops))
    rows, saved = [], 0.0
    for i, (a, b) in enumerate(zip(now.layers, dual.layers)):
        if not eligible(program, i, cfg):
            continue
        c_now = sum(a.phases(n).values())
        h, w = a.out_hw
        c_dual = sum(b.phases(n).values()) + b.tiles * T * 2 * h * w
        ops = float(np.sum(a.sops)) / n
        rows.append({"layer": a.name, "tiles_now": a.tiles, "tiles_dual": b.tiles,
                     "cycles_now": c_now, "cycles_dual": c_dual,
                     "lane_use_now": ops / (c_now * cfg.pes * 9 * cfg.events_per_cycle),
                     "lane_use_dual": ops / (c_dual * cfg.pes * 9 * cfg.events_per_cycle)})
        saved += c_now - c_dual
    proj = total - saved
    return {"program": program.name, "images": n, "T": T, "pes": cfg.pes,
            "events_per_cycle": cfg.events_per_cycle, "weight_batch": weight_batch,
            "layers": rows, "cycles_per_image_model": total, "cycles_per_image_projected": proj,
            "gops_per_pe_model": sops * f / total / 1e9 / cfg.pes,
            "gops_per_pe_projected": sops * f / proj / 1e9 / cfg.pes,
            "note": "projection: the RTL has no dual-channel mode"}


def main(argv=None):
    a, p, images, cfg = projection.parse(__doc__, argv, images=256)
    res = estimate(p, images, cfg, a.batch)
    for r in res["layers"]:
        print(f"{r['layer']}: {r['tiles_now']} -> {r['tiles_dual']} tiles, "
              f"{r['cycles_now']:,.0f} -> {r['cycles_dual']:,.0f} cycles/image, lane use "
              f"{100 * r['lane_use_now']:.1f} -> {100 * r['lane_use_dual']:.1f} %")
    print(projection.line(res))
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "dual_channel_estimate.py")

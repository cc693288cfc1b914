"""Projection for a not-built option: identity shortcuts added in the aggregation core.

An identity group (ResNet-18's identity shortcut) adds `w[c]` of an input spike of
channel c into PE c only: one accumulate per event, on one PE. Dispatched like any
other group it costs the spiking core a dispatch slot per E events (per 2E with
one-tap pairs) while 8 of that PE's 9 tap lanes and every other PE idle. Its source
position is the output position itself, so the aggregation core could instead add
`w[c] * s[c]` (a mux and one more addend per lane) while it drains that position,
reading the source word beside the membrane: the spiking core would not scan identity
groups at all.

The RTL does not have this. The projection runs the model once as built and once with
every identity group's dispatch cycles set to zero (its words still stream in; its
accumulates still count; the drain is assumed to absorb the extra addend at no cycle
cost), and reports both per layer. A projection, labelled so.

    python benchmarks/identity_drain_estimate.py PROGRAM [--images 64] [--pes 16]
        [--events 2] [--phase-pairs] [--config CFG.json] [--data-dir D] [--out FILE.json]
"""

import numpy as np

from sia import SiaError, run_main
from sia.hw.model import projection, report
from sia.hw.model import run as model_run
from sia.hw.params import SIAConfig


def estimate(program, images, cfg: SIAConfig, weight_batch: int) -> dict:
    if not any(s.op == "identity" for layer in program.layers for s in layer.inputs):
        raise SiaError(f"{program.name} has no identity groups: nothing to project")
    kw = dict(config=cfg, weight_batch=weight_batch, launch_images=0)
    now = model_run(program, images, **kw)
    with projection.identity_in_drain():
        proj = model_run(program, images, **kw)
    assert np.array_equal(now.predictions, proj.predictions)   # only the counting changed
    n, f = images.shape[0], cfg.clock_mhz * 1e6
    lanes = cfg.pes * 9 * cfg.events_per_cycle
    rows = []
    for i, (a, b) in enumerate(zip(now.layers, proj.layers)):
        if not any(s.op == "identity" for s in program.layers[i].inputs):
            continue
        ops = float(np.sum(a.sops)) / n
        c_now, c_proj = (sum(x.phases(n).values()) for x in (a, b))
        rows.append({"layer": a.name, "cycles_now": c_now, "cycles_projected": c_proj,
                     "lane_use_now": ops / (c_now * lanes),
                     "lane_use_projected": ops / (c_proj * lanes)})
    total, total_proj = (float(np.mean(r.image_cycles)) for r in (now, proj))
    util = [report.summarize(r, program=program)["pe_utilisation_conv"] for r in (now, proj)]
    sops = float(np.mean(now.image_sops))
    return {"program": program.name, "images": n, "T": program.timesteps, "pes": cfg.pes,
            "events_per_cycle": cfg.events_per_cycle, "phase_pairs": cfg.phase_pairs,
            "weight_batch": weight_batch, "layers": rows,
            "cycles_per_image_model": total, "cycles_per_image_projected": total_proj,
            "gops_per_pe_model": sops * f / total / 1e9 / cfg.pes,
            "gops_per_pe_projected": sops * f / total_proj / 1e9 / cfg.pes,
            "conv_utilisation_model": util[0], "conv_utilisation_projected": util[1],
            "note": "projection: the RTL dispatches identity groups; lane use counts the "
                    "identity accumulates as PE work in both columns"}


def main(argv=None):
    a = projection.parser(__doc__.split("\n\n")[0], images=64, phase_pairs=True).parse_args(argv)
    p, images, cfg = projection.inputs(a, pes=a.pes, events_per_cycle=a.events)
    res = estimate(p, images, cfg, a.batch)
    for r in res["layers"]:
        print(f"{r['layer']}: {r['cycles_now']:,.0f} -> {r['cycles_projected']:,.0f} cycles/image, "
              f"lane use {100 * r['lane_use_now']:.1f} -> {100 * r['lane_use_projected']:.1f} %")
    print(projection.line(res))
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "identity_drain_estimate.py")

"""Identity shortcuts in the aggregation core (build option `identity_drain`), measured
on the model: the same build with and without it, per layer with an identity group.

An identity group (ResNet-18's identity shortcut) adds `w[c]` of an input spike of
channel c into PE c only: one accumulate per event, on one PE. Dispatched like any
other group it costs the spiking core a dispatch slot per E events (per 2E with
one-tap pairs) while 8 of that PE's 9 tap lanes and every other PE idle. With the
option the aggregation core adds `w[p] * s[p]` of the drained position's shortcut
word instead (docs/architecture.md, "Identity in the drain"), and the dispatcher never
scans the group; the shortcut map streams first in each step. Both runs are the model
as built (the RTL is held to it cycle for cycle); the lane-use columns count the
identity accumulates as PE work in both.

    python benchmarks/identity_drain.py PROGRAM [--images 64] [--batch 64] [--pes 16]
        [--events 2] [--phase-pairs] [--config CFG.json] [--data-dir D] [--out FILE.json]
"""

import dataclasses

import numpy as np

from sia import SiaError, run_main
from sia.hw.model import projection, report
from sia.hw.model import run as model_run
from sia.hw.params import SIAConfig


def compare(program, images, cfg: SIAConfig, weight_batch: int) -> dict:
    if not any(s.op == "identity" for layer in program.layers for s in layer.inputs):
        raise SiaError(f"{program.name} has no identity groups: the option changes nothing")
    kw = dict(weight_batch=weight_batch, launch_images=0)
    off = model_run(program, images, config=dataclasses.replace(cfg, identity_drain=False), **kw)
    on = model_run(program, images, config=dataclasses.replace(cfg, identity_drain=True), **kw)
    assert np.array_equal(off.predictions, on.predictions)   # the same arithmetic
    n = images.shape[0]
    lanes = cfg.pes * 9 * cfg.events_per_cycle
    rows = []
    for i, (a, b) in enumerate(zip(off.layers, on.layers)):
        if not any(s.op == "identity" for s in program.layers[i].inputs):
            continue
        ops = float(np.sum(a.sops)) / n
        c_off, c_on = (sum(x.phases(n).values()) for x in (a, b))
        rows.append({"layer": a.name, "cycles_off": c_off, "cycles_on": c_on,
                     "lane_use_off": ops / (c_off * lanes), "lane_use_on": ops / (c_on * lanes)})
    s_off, s_on = (report.summarize(r, program=program) for r in (off, on))
    return {"program": program.name, "images": n, "T": program.timesteps, "pes": cfg.pes,
            "events_per_cycle": cfg.events_per_cycle, "phase_pairs": cfg.phase_pairs,
            "weight_batch": weight_batch, "layers": rows,
            "cycles_per_image_off": float(np.mean(off.image_cycles)),
            "cycles_per_image_on": float(np.mean(on.image_cycles)),
            "gops_per_pe_off": s_off["gops_per_pe"], "gops_per_pe_on": s_on["gops_per_pe"],
            "gops_per_pe_ceiling_on": s_on["gops_per_pe_ceiling"],
            "conv_utilisation_off": s_off["pe_utilisation_conv"],
            "conv_utilisation_on": s_on["pe_utilisation_conv"],
            "conv_utilisation_ceiling_on": s_on["pe_utilisation_conv_ceiling"],
            "clock_mhz": cfg.clock_mhz, "note": "model as built, both columns (bit- and "
            "cycle-exact with the RTL); lane use counts identity accumulates as PE work"}


def main(argv=None):
    # (the build flags: --phase-pairs holds for both runs; --identity-drain is what differs)
    a, p, images, cfg = projection.parse(__doc__, argv, images=64, build_flags=True)
    res = compare(p, images, cfg, a.batch)
    for r in res["layers"]:
        print(f"{r['layer']}: {r['cycles_off']:,.0f} -> {r['cycles_on']:,.0f} cycles/image, "
              f"lane use {100 * r['lane_use_off']:.1f} -> {100 * r['lane_use_on']:.1f} %")
    print(f"P={res['pes']} E={res['events_per_cycle']}: {res['cycles_per_image_off']:,.0f} -> "
          f"{res['cycles_per_image_on']:,.0f} cycles/image, GOPS/PE {res['gops_per_pe_off']:.3f} -> "
          f"{res['gops_per_pe_on']:.3f} (design ceiling {res['gops_per_pe_ceiling_on']:.3f}), "
          f"conv utilisation {100 * res['conv_utilisation_off']:.1f} -> "
          f"{100 * res['conv_utilisation_on']:.1f} % (ceiling "
          f"{100 * res['conv_utilisation_ceiling_on']:.1f} %) at {res['clock_mhz']:g} MHz")
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "identity_drain.py")

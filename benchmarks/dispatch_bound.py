"""The ceiling of the built SIA on a program: what no dispatcher, host or overlap
improvement can beat without changing what one event does in a PE
(docs/architecture.md, "How far each target is from the design's ceiling").

Two invariants of the design bound every layer's cycles from below:
- a tile's dispatcher issues at most E events per cycle (2E in a phase-pair group:
  E from each column of a pair), whatever the words hold;
- the aggregation core drains one output position per cycle, T times per position.
So a layer needs at least max(sum over groups of events_g / (E * k_g), T * H * W *
tiles) cycles per image, k_g = 2 for phase-pair groups, 1 otherwise. The script runs
the model as built, records each group's dispatched events, and sums that floor per
layer: no ceil(n / E) rounding, no empty units, no per-row or per-step constants, no
weight loads, headers or stalls, perfect overlap of dispatch and drain. GOPS/PE and
conv utilisation at the floor are the design's ceilings: a target above them needs
more accumulates per event (the PE's tap mapping), not a better schedule. What is left
between the model and the ceiling is what scheduling could still win. A bound,
labelled so. `--identity-in-drain` gives the ceiling with identity shortcuts added in the
aggregation core (benchmarks/identity_drain_estimate.py: their events cost no dispatch).

    python benchmarks/dispatch_bound.py PROGRAM [--images 64] [--batch 64] [--pes 16]
        [--events 2] [--phase-pairs] [--identity-in-drain] [--config CFG.json]
        [--data-dir D] [--out FILE.json]
"""

from contextlib import contextmanager
from unittest import mock

import numpy as np

from sia import run_main
from sia.hw.model import fast, projection, report
from sia.hw.model import run as model_run
from sia.hw.model import schedule as S
from sia.hw.params import SIAConfig


@contextmanager
def recording(events: dict, identity_in_drain: bool = False):
    """The model as built; events[layer] accumulates that layer's dispatched events,
    each divided by its group's events-per-slot factor k (2: phase pair); with
    identity_in_drain, identity groups' events are left out."""
    built = fast._count_group

    def count(program, config, L, s, words, planes, ks, keep_scans, orig):
        before = L.events.copy()
        out = built(program, config, L, s, words, planes, ks, keep_scans, orig)
        k = 2 if S.phase(orig, program, config) else 1
        if identity_in_drain and s.op == "identity":
            k = float("inf")
        events[L.index] = events.get(L.index, 0.0) + float((L.events - before).sum()) / k
        return out

    with mock.patch.object(fast, "_count_group", count):
        yield


def bound(program, images, cfg: SIAConfig, weight_batch: int,
          identity_in_drain: bool = False) -> dict:
    events: dict[int, float] = {}
    with recording(events, identity_in_drain):
        r = model_run(program, images, config=cfg, weight_batch=weight_batch, launch_images=0)
    n, E, f = images.shape[0], cfg.events_per_cycle, cfg.clock_mhz * 1e6
    built = report.summarize(r, program=program)
    lanes = cfg.pes * 9 * E
    rows, conv_sops, conv_floor, total_floor = [], 0.0, 0.0, 0.0
    gap = dict.fromkeys(("issue_overhead", "empty_units", "drain_and_stalls", "loads_and_streams",
                         "drain_floor"), 0.0)
    for i, (L, x) in enumerate(zip(r.layers, built["layers"])):
        _, h, w = program.layers[i].shape
        dispatch = events.get(i, 0.0) / n / E
        drain = float(r.timesteps * h * w * L.tiles)
        floor = max(dispatch, drain)
        ph = x["phases"]
        # accumulate cycles beyond events / E: ceil(n / E) per unit, a phase pair's larger
        # half, and sparse words that fill fewer than E lanes at two words per cycle
        gap["issue_overhead"] += ph["accumulate"] - dispatch
        gap["empty_units"] += ph["dispatch_empty"]
        gap["drain_and_stalls"] += ph["aggregate"] + ph["stall"]
        gap["loads_and_streams"] += sum(ph[k] for k in ("header_load", "weight_load", "param_load",
                                                        "stream_in", "stream_out"))
        gap["drain_floor"] -= floor - dispatch   # the drain part of the floor is no loss
        ops = x["sops"] + x["image_ops"]
        rows.append({"layer": L.name, "cycles_model": x["cycles"], "cycles_floor": floor,
                     "bound_by": "dispatch" if dispatch >= drain else "drain",
                     "model_over_floor": x["cycles"] / floor if floor else None,
                     "utilisation_model": x["pe_utilisation"],
                     "utilisation_ceiling": ops / (lanes * floor) if floor else None})
        total_floor += floor
        if not x["image_layer"] and x["kind"] == "if":
            conv_sops, conv_floor = conv_sops + x["sops"], conv_floor + floor
    sops = float(np.mean(r.image_sops))
    cycles = float(np.mean(r.image_cycles))
    return {"program": program.name, "images": n, "T": r.timesteps, "pes": cfg.pes,
            "events_per_cycle": E, "phase_pairs": cfg.phase_pairs,
            "identity_in_drain": identity_in_drain, "weight_batch": weight_batch, "layers": rows,
            "cycles_per_image_model": cycles, "cycles_per_image_floor": total_floor,
            "gops_per_pe_model": built["gops_per_pe"],
            "gops_per_pe_ceiling": sops * f / total_floor / 1e9 / cfg.pes,
            "conv_utilisation_model": built["pe_utilisation_conv"],
            "conv_utilisation_ceiling": conv_sops / (lanes * conv_floor) if conv_floor else None,
            "gap_per_image": gap,   # sums to cycles_per_image_model - cycles_per_image_floor
            "note": "ceiling: at most E events per cycle per tile (2E in phase-pair groups) and "
                    "one drained position per cycle; nothing else costs a cycle"}


def main(argv=None):
    ap = projection.parser(__doc__.split("\n\n")[0], images=64)
    ap.add_argument("--phase-pairs", action="store_true", help="the build option")
    ap.add_argument("--identity-in-drain", action="store_true",
                    help="ceiling of the not-built option: identity groups cost no dispatch")
    a = ap.parse_args(argv)
    p, images, cfg = projection.inputs(a, pes=a.pes, events_per_cycle=a.events,
                                       phase_pairs=a.phase_pairs or None)   # None: the file's
    res = bound(p, images, cfg, a.batch, a.identity_in_drain)
    for r in res["layers"]:
        print(f"{r['layer']}: {r['cycles_model']:,.0f} cycles/image, floor "
              f"{r['cycles_floor']:,.0f} ({r['bound_by']}), utilisation "
              f"{100 * r['utilisation_model']:.1f} % of ceiling {100 * r['utilisation_ceiling']:.1f} %")
    print(f"P={res['pes']} E={res['events_per_cycle']}: {res['cycles_per_image_model']:,.0f} "
          f"cycles/image (model) vs floor {res['cycles_per_image_floor']:,.0f}; GOPS/PE "
          f"{res['gops_per_pe_model']:.3f} of ceiling {res['gops_per_pe_ceiling']:.3f}; conv "
          f"utilisation {100 * res['conv_utilisation_model']:.1f} % of ceiling "
          f"{100 * res['conv_utilisation_ceiling']:.1f} % (bound)")
    print("model - floor, cycles/image: " + ", ".join(f"{k} {v:,.0f}" for k, v in res["gap_per_image"].items()))
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "dispatch_bound.py")

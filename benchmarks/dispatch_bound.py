"""The ceiling of the built SIA on a program: what no dispatcher, host or overlap
improvement can beat without changing what one event does in a PE
(docs/architecture.md, "How far each target is from the design's ceiling").

Two invariants of the design bound every layer's cycles from below:
- a tile's dispatcher issues at most E events per cycle (2E in a phase-pair group:
  E from each column of a pair), whatever the words hold;
- the aggregation core drains one output position per cycle, T times per position.
So a layer needs at least max(sum over groups of events_g / (E * k_g), T * H * W *
tiles) cycles per image, k_g = 2 for phase-pair groups, 1 otherwise. The script runs
the model as built and sums that floor per layer (`sia.hw.model.report.cycles_floor`,
also in every `sia simulate` report): no ceil(n / E) rounding, no empty units, no
per-row or per-step constants, no weight loads, headers or stalls, perfect overlap of
dispatch and drain; it adds where the model's cycles above the floor go. GOPS/PE and
conv utilisation at the floor are the design's ceilings: a target above them needs
more accumulates per event (the PE's tap mapping), not a better schedule. What is left
between the model and the ceiling is what scheduling could still win. A bound,
labelled so. With `--identity-drain` (the build option) identity shortcuts are added
by the aggregation core: their events leave the dispatcher and its floor.

    python benchmarks/dispatch_bound.py PROGRAM [--images 64] [--batch 64] [--pes 16]
        [--events 2] [--phase-pairs] [--identity-drain] [--config CFG.json]
        [--data-dir D] [--out FILE.json]
"""

import numpy as np

from sia import run_main
from sia.hw.model import projection, report
from sia.hw.model import run as model_run
from sia.hw.params import SIAConfig


def bound(program, images, cfg: SIAConfig, weight_batch: int) -> dict:
    r = model_run(program, images, config=cfg, weight_batch=weight_batch, launch_images=0)
    E = cfg.events_per_cycle
    built = report.summarize(r, program=program)
    rows = []
    gap = dict.fromkeys(("issue_overhead", "empty_units", "drain_and_stalls", "loads_and_streams",
                         "drain_floor"), 0.0)
    for L, x in zip(r.layers, built["layers"]):
        issue = float(L.issue_floor.sum()) / r.images / E
        floor, ph = x["cycles_floor"], x["phases"]
        # accumulate cycles beyond events / E: ceil(n / E) per unit, a phase pair's larger
        # half, and sparse words that fill fewer than E lanes at two words per cycle
        gap["issue_overhead"] += ph["accumulate"] - issue
        gap["empty_units"] += ph["dispatch_empty"]
        gap["drain_and_stalls"] += ph["aggregate"] + ph["stall"]
        gap["loads_and_streams"] += sum(ph[k] for k in ("header_load", "weight_load", "param_load",
                                                        "stream_in", "stream_out"))
        gap["drain_floor"] -= floor - issue   # the drain part of the floor is no loss
        rows.append({"layer": L.name, "cycles_model": x["cycles"], "cycles_floor": floor,
                     "bound_by": "dispatch" if issue >= floor else "drain",
                     "model_over_floor": x["cycles"] / floor if floor else None,
                     "utilisation_model": x["pe_utilisation"],
                     "utilisation_ceiling": x["utilisation_ceiling"]})
    return {"program": program.name, "images": r.images, "T": r.timesteps, "pes": cfg.pes,
            "events_per_cycle": E, "phase_pairs": cfg.phase_pairs,
            "identity_drain": cfg.identity_drain, "pool_hold": cfg.pool_hold,
            "psum_slots": cfg.psum_slots, "row_prefetch": cfg.row_prefetch,
            "weight_batch": weight_batch,
            "layers": rows,
            "cycles_per_image_model": float(np.mean(r.image_cycles)),
            "cycles_per_image_floor": built["cycles_floor_per_image"],
            "gops_per_pe_model": built["gops_per_pe"],
            "gops_per_pe_ceiling": built["gops_per_pe_ceiling"],
            "conv_utilisation_model": built["pe_utilisation_conv"],
            "conv_utilisation_ceiling": built["pe_utilisation_conv_ceiling"],
            "gap_per_image": gap,   # sums to cycles_per_image_model - cycles_per_image_floor
            "note": "ceiling: at most E events per cycle per tile (2E in phase-pair groups) and "
                    "one drained position per cycle; nothing else costs a cycle"}


def main(argv=None):
    a, p, images, cfg = projection.parse(__doc__, argv, images=64, build_flags=True)
    res = bound(p, images, cfg, a.batch)
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

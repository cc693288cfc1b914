"""RTL benchmark: whole-network inferences through the Verilator model, with a cycle
breakdown per phase (from the RTL-verified launches) and GOPS figures.

python -m sia.hw.rtl.cosim.bench PROGRAM [--image I] [--data-dir D] [--out FILE]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim.program import run_program
from sia.hw.rtl.cycles import launch_cycles


def breakdown(program, r, cfg, T, ins):
    ph = {"launch": 0, "header": 0, "weights": 0, "neuron_params": 0, "spikes_in": 0,
          "compute": 0, "output": 0}
    for L in r["launches"]:
        info = regmap.tile_info(program, L["layer"], L["tile"], cfg, T)
        d = launch_cycles(program, L["layer"], L["tile"], ins, cfg, T, detail=True)
        ph["launch"] += timing.C_LAUNCH
        ph["header"] += info.header_beats
        ph["weights"] += info.weight_beats
        ph["neuron_params"] += info.neuron_beats
        ph["spikes_in"] += info.spike_beats
        ph["compute"] += d["compute"]
        ph["output"] += info.out_beats
    return ph


def bench(program, image, cfg, T=None):
    from sia.program.format import IMAGE
    T = program.timesteps if T is None else T
    t0 = time.time()
    r = run_program(program, image, cfg, T=T)
    wall = time.time() - t0
    ins = {IMAGE: image}
    for i, layer in enumerate(program.layers):
        if layer.kind == "if":
            ins[i] = r["outputs"][layer.name]
    L = r["launches"]
    cyc = sum(x["cycles"] for x in L)
    sops = sum(x["sops"] for x in L)
    iops = sum(x["image_ops"] for x in L)
    ph = breakdown(program, r, cfg, T, ins)
    f = cfg.clock_mhz * 1e6
    out = {"program": program.name, "T": T, "config": cfg.to_json(),
           "bit_exact_vs_golden": True,
           "cycle_exact_vs_formula": all(x["cycles"] == x["expected"] for x in L),
           "cycle_equal_to_model": all(x.get("model") == x["cycles"] for x in L),
           "launches": len(L), "cycles": cyc, "phases": ph, "sops": sops, "image_ops": iops,
           "latency_ms": 1e3 * cyc / f,
           "gops_acc": sops * f / cyc / 1e9, "gops_per_pe": sops * f / cyc / 1e9 / cfg.pes,
           "gops_acc_incl_image": (sops + iops) * f / cyc / 1e9,
           "compute_phase_gops_per_pe": sops * f / ph["compute"] / 1e9 / cfg.pes,
           "compute_phase_gops_per_pe_incl_image": (sops + iops) * f / ph["compute"] / 1e9 / cfg.pes,
           "pe_utilisation_compute": (sops + iops) / (cfg.pes * cfg.events_per_cycle * 9 * ph["compute"]),
           "verilator": {"cycles": r["sim"]["cycles"], "seconds": r["sim"]["seconds"],
                         "cycles_per_s": r["sim"]["cycles"] / max(1e-9, r["sim"]["seconds"])},
           "wall_seconds_incl_golden_and_packing": wall,
           "per_launch": L}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("program")
    ap.add_argument("--image", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program(a.program)
    images, labels = load_split(p.meta.get("dataset", "digits"), "test", a.data_dir)
    res = bench(p, np.asarray(images[a.image]), SIAConfig())
    res["image_index"], res["label"] = a.image, int(labels[a.image])
    print(json.dumps({k: v for k, v in res.items() if k != "per_launch"}, indent=1))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""RTL benchmark: whole-network inferences through the Verilator model, with a cycle
breakdown per phase (from the RTL-verified launches) and GOPS figures.

python -m sia.hw.rtl.cosim.bench PROGRAM [--image I] [--batch B] [--pes P] [--events E]
                                  [--config CFG.json] [--phase-pairs] [--launch-images K]
                                  [--jobs J] [--data-dir D] [--out FILE]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sia import run_main
from sia.hw import timing
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim.program import run_images


def breakdown(launches):
    """Cycles per phase, summed over launches (from the formula each launch was checked
    against, `run_images`)."""
    ph = {"launch": 0, "header": 0, "weights_and_params": 0, "input_wait": 0,
          "compute": 0, "output_tail": 0}
    for L in launches:
        d = L["formula"]
        ph["launch"] += timing.C_LAUNCH
        ph["header"] += d["header"]
        ph["weights_and_params"] += d["loads"]
        ph["input_wait"] += d["input_wait"]
        ph["compute"] += d["span"] - d["input_wait"]
        ph["output_tail"] += d["out"]
    return ph


def bench(program, images, cfg, T=None, keep=True, launch_images=1, jobs=None):
    """images [B, C, H, W]: one launch-major batch (weights resident after the first
    launch of each tile when keep; up to `launch_images` images per launch where the
    buffers allow, 0 = as many as fit). Per-image figures are batch totals / B."""
    T = program.timesteps if T is None else T
    B = images.shape[0]
    t0 = time.time()
    r = run_images(program, images, cfg, T=T, keep=keep, launch_images=launch_images, jobs=jobs)
    wall = time.time() - t0
    L = r["launches"]
    cyc = sum(x["cycles"] for x in L) / B
    sops = sum(x["sops"] for x in L) / B
    iops = sum(x["image_ops"] for x in L) / B
    ph = {k: v / B for k, v in breakdown(L).items()}
    f = cfg.clock_mhz * 1e6
    out = {"program": program.name, "T": T, "config": cfg.to_json(), "batch": B,
           "weights_resident": keep, "launch_images": launch_images,
           "bit_exact_vs_golden": True,
           "cycle_exact_vs_formula": all(x["cycles"] == x["expected"] for x in L),
           "cycle_equal_to_model": all(x.get("model") == x["cycles"] for x in L),
           "launches": len(L), "cycles_per_image": cyc, "phases_per_image": ph,
           "sops_per_image": sops, "image_ops_per_image": iops,
           "latency_ms_per_image": 1e3 * cyc / f, "batch_latency_ms": 1e3 * cyc * B / f,
           "gops_acc": sops * f / cyc / 1e9, "gops_per_pe": sops * f / cyc / 1e9 / cfg.pes,
           "gops_acc_incl_image": (sops + iops) * f / cyc / 1e9,
           "pe_utilisation_compute": (sops + iops) / (cfg.pes * cfg.events_per_cycle * 9 * ph["compute"]),
           # per process: simulated cycles / the processes' own simulation seconds;
           # aggregate: simulated cycles / wall seconds with `jobs` processes at once
           "verilator": {"cycles": r["sim"]["cycles"], "seconds": r["sim"]["seconds"],
                         "wall_seconds": r["sim"]["wall"], "jobs": r["sim"]["jobs"],
                         "cycles_per_s": r["sim"]["cycles"] / max(1e-9, r["sim"]["seconds"]),
                         "cycles_per_s_aggregate": r["sim"]["cycles"] / max(1e-9, r["sim"]["wall"])},
           "wall_seconds_incl_golden_and_packing": wall,
           "per_launch": L}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("program")
    ap.add_argument("--image", type=int, default=0, help="first test image")
    ap.add_argument("--batch", type=int, default=1, help="images (weights resident)")
    ap.add_argument("--pes", type=int, default=None)
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--config", default=None, help="SIAConfig JSON (then --pes/--events override)")
    ap.add_argument("--phase-pairs", action=argparse.BooleanOptionalAction, default=None,
                    help="override phase_pairs")
    ap.add_argument("--launch-images", type=int, default=0,
                    help="packed launches: images per launch (0 = as many as fit, 1 = none)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="simulator processes (default: CPU cores, at most 2; 1 = layer by layer "
                         "on the RTL's own spikes)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program(a.program)
    images, labels = load_split(p.meta.get("dataset", "digits"), "test", a.data_dir)
    cfg = SIAConfig.load(a.config, pes=a.pes, events_per_cycle=a.events, phase_pairs=a.phase_pairs)
    sel = slice(a.image, a.image + a.batch)
    res = bench(p, np.asarray(images[sel]), cfg, launch_images=a.launch_images, jobs=a.jobs)
    res["image_index"], res["labels"] = a.image, [int(v) for v in labels[sel]]
    print(json.dumps({k: v for k, v in res.items() if k != "per_launch"}, indent=1))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    run_main(main, "python -m sia.hw.rtl.cosim.bench")

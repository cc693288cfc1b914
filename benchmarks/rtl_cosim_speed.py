"""Verilator co-simulation speed: simulated cycles per second for whole-network batches
through the RTL, with one simulator process and with one per core (`--jobs`). Every
run is also a full check (bit-exact with the golden simulator, cycle-exact with the
formula and the model), so a speed number never comes from a wrong simulation.

    python benchmarks/rtl_cosim_speed.py --out docs/rtl/cosim_speed.json \
        [--program vgg11_w025_e50_kd_ft_cifar10] [--batch 16] [--jobs 1,2] [--data-dir D]

The model's C++ is compiled at -O1 unless SIA_VERILATOR_OPT says otherwise (e.g. -O2:
slower to build, faster to run); the JSON records which.

Rates: "per process" = simulated cycles / the processes' own simulation seconds;
"aggregate" = simulated cycles / wall seconds of the simulation with `jobs` processes
at once (the testbench's clock, not the golden reference, packing or the model).
Run it on an otherwise idle machine: the numbers are wall-clock rates.
"""

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sia import run_main
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim.bench import bench
from sia.provenance import cpu_model, git_commit

ROOT = Path(__file__).resolve().parents[1]
# (label, config): the XC7Z020 build, the E = 2 design point and the 64-PE default
BUILDS = [("xc7z020 (P=16, E=4)", SIAConfig.from_json(json.loads((ROOT / "configs/sia/xc7z020.json").read_text()))),
          ("P=16, E=2", SIAConfig(pes=16, events_per_cycle=2)),
          ("P=64, E=2 (default)", SIAConfig())]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--program", action="append",
                    help="program file or zoo name (repeatable; default: the fine-tuned VGG-11 w0.25)")
    ap.add_argument("--batch", type=int, default=16, help="test images, one launch-major batch")
    ap.add_argument("--jobs", default="1,2", help="comma list of simulator process counts")
    ap.add_argument("--builds", default="all", help="comma list of build indices (0-2) or all")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    from sia.data.registry import data_copy, load_split
    from sia.program.resolve import resolve_program
    progs = a.program or ["vgg11_w025_e50_kd_ft_cifar10"]
    jobs = [int(j) for j in a.jobs.split(",")]
    builds = BUILDS if a.builds == "all" else [BUILDS[int(i)] for i in a.builds.split(",")]
    images = np.asarray(load_split("cifar10", "test", a.data_dir)[0][:a.batch])
    rows = []
    runs = [(p, b, j) for p in progs for b in builds for j in jobs]
    for name, (label, cfg), j in tqdm(runs, desc="co-simulation runs"):
        r = bench(resolve_program(name), images, cfg, launch_images=0, jobs=j)
        v = r["verilator"]
        rows.append({"program": name, "build": label, "config": cfg.to_json(), "jobs": j,
                     "batch": a.batch, "cycles": v["cycles"],
                     "bit_exact_vs_golden": r["bit_exact_vs_golden"],
                     "cycle_exact": r["cycle_exact_vs_formula"] and r["cycle_equal_to_model"],
                     "cycles_per_s_per_process": round(v["cycles_per_s"]),
                     "cycles_per_s_aggregate": round(v["cycles_per_s_aggregate"]),
                     "sim_wall_s": round(v["wall_seconds"], 3),
                     "wall_s_incl_golden_packing_model": round(r["wall_seconds_incl_golden_and_packing"], 1)})
        x = rows[-1]
        tqdm.write(f"{name} | {label} | jobs {j}: {x['cycles']:,} cycles, "
                   f"{x['cycles_per_s_per_process'] / 1e3:.0f} k/s per process, "
                   f"{x['cycles_per_s_aggregate'] / 1e3:.0f} k/s aggregate")
    commit = git_commit()
    out = {"commit": commit, "cpu_cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
           "cpu": cpu_model(), "verilator_cxx_opt": os.environ.get("SIA_VERILATOR_OPT", "-O1"),
           "data": data_copy("cifar10", a.data_dir), "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    best = max(rows, key=lambda x: x["cycles_per_s_aggregate"])
    print(f"fastest: {best['cycles_per_s_aggregate'] / 1e6:.2f} M cycles/s aggregate "
          f"({best['build']}, {best['jobs']} processes, {best['program']}) -> {a.out}")


if __name__ == "__main__":
    run_main(main, "rtl_cosim_speed.py")

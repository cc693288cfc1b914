"""More random signed programs through the RTL than CI runs: each one bit-exact with the
golden simulator (+1 / -1 spikes, membranes) and, without stalls, every launch
cycle-exact with the formula and the model (every fourth program with random stream
stalls: cycles >= the formula). Five small signed builds: sign pairs with pool hold,
phase pairs + quads, E = 4, E = 1 and the signed identity drain with phase pairs
(`sia.hw.rtl.testprog.SIGNED_BUILD`, the CI tests' build, and variants).

    python benchmarks/rtl_signed_sweep.py [--programs 12] [--first-seed 3] [--out F.json]

CI runs three such programs (`tests/test_rtl_cosim.py::test_signed_spikes_bit_and_cycle_exact`);
this is the same check over more seeds, for a change to the signed dispatch or
aggregation paths. Each build is compiled once (Verilator cache), then every program runs.
"""

import argparse
import dataclasses
import json
import time

import numpy as np
from tqdm import tqdm

from sia import SiaError, run_main
from sia.hw.rtl.cosim.program import run_program
from sia.hw.rtl.testprog import SIGNED_BUILD as SIGNED
from sia.hw.rtl.testprog import random_signed_program
from sia.provenance import cpu_model, git_commit

BUILDS = {"sign pairs, pool hold (E = 2)": SIGNED,
          "phase pairs + quads": dataclasses.replace(SIGNED, phase_pairs=True, phase_quads=True,
                                                     pool_hold=False),
          "E = 4": dataclasses.replace(SIGNED, events_per_cycle=4, pool_hold=False),
          "E = 1": dataclasses.replace(SIGNED, events_per_cycle=1),
          "identity drain + phase pairs": dataclasses.replace(SIGNED, identity_drain=True,
                                                              phase_pairs=True)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=12, help="random signed programs per build")
    ap.add_argument("--first-seed", type=int, default=3, help="(CI runs seeds 0-2)")
    ap.add_argument("--out", help="write a JSON of the counts")
    a = ap.parse_args(argv)
    if a.programs < 1:
        raise SiaError(f"--programs {a.programs}: give 1 or more")
    t0 = time.time()
    rows = []
    seeds = range(a.first_seed, a.first_seed + a.programs)
    for name, cfg in BUILDS.items():
        launches = minus = stalled = 0
        for seed in tqdm(seeds, desc=name, unit="program"):
            p = random_signed_program(seed, chans=(5 + seed % 7, 12 - seed % 3))
            img = np.random.default_rng(seed).integers(0, 256, p.input_shape).astype(np.uint8)
            stalls = dict(seed=seed, p_valid=0.7, p_ready=0.6) if seed % 4 == 0 else {}
            r = run_program(p, img, cfg, **stalls)     # raises on any mismatch with golden
            for x in r["launches"]:
                ok = x["cycles"] >= x["expected"] if stalls else \
                    x["cycles"] == x["expected"] == x["model"]
                if not ok:
                    raise SiaError(f"{name}, seed {seed}, layer {x['layer']} tile {x['tile']}: "
                                   f"RTL {x['cycles']} cycles, formula {x['expected']}, "
                                   f"model {x.get('model')}")
            launches += len(r["launches"])
            stalled += bool(stalls)
            minus += sum(int((np.asarray(v) < 0).sum()) for v in r["outputs"].values())
        rows.append({"build": name, "programs": a.programs, "with_stalls": stalled,
                     "launches": launches, "minus_one_spikes": minus})
    out = {"seeds": [a.first_seed, a.first_seed + a.programs - 1], "builds": rows,
           "wall_s": round(time.time() - t0, 1), "commit": git_commit(), "cpu": cpu_model()}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    print(f"{sum(r['programs'] for r in rows)} random signed programs on {len(rows)} builds: "
          f"all bit-exact, {sum(r['launches'] for r in rows):,} launches cycle-exact "
          f"(stalled runs: cycles >= formula), {sum(r['minus_one_spikes'] for r in rows):,} "
          f"-1 spikes, {out['wall_s']:.0f} s")


if __name__ == "__main__":
    raise SystemExit(run_main(main, "rtl_signed_sweep.py"))

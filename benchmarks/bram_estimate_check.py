"""The block-RAM count without Yosys (sia/hw/rtl/bram.py) against Yosys on random build
parameters: a PE's weight memory per configuration (`sia synth --block pe`, seconds each)
and, with --whole N, the whole design for N of them (minutes each). A count must equal
Yosys's, or bound it from above where `bram.exact` says it is a bound (65..128-word weight
memories). Every failure is listed; the exit status is 1 if there is one.

    python benchmarks/bram_estimate_check.py --out docs/rtl/bram_estimate_check.json \
        [--configs 16] [--whole 2] [--seed 0] [--work build/bram_check]
"""

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

from tqdm import tqdm

from sia import run_main
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import design_ram36, exact, weight_ram18
from sia.hw.rtl.synth import block_component, run_synth, synth_block
from sia.provenance import git_commit


def random_config(rng: random.Random) -> SIAConfig:
    """A buildable parameter set spread over what changes the memories: PEs, E, weight
    width and depth, the tap split (pairs, quads), buffer and membrane sizes."""
    pairs = rng.random() < 0.6
    cfg = SIAConfig(pes=rng.choice([4, 8, 16]), events_per_cycle=rng.choice([1, 2, 2, 4]),
                    weight_bits=rng.choice([8, 8, 10, 12]),
                    max_channels_in=rng.choice([128, 256, 512, 768, 1024]),
                    buffer_timesteps=rng.choice([8, 16]),
                    membrane_positions=rng.choice([256, 1024]), acc_bits=20,
                    phase_pairs=pairs, phase_quads=pairs and rng.random() < 0.5,
                    identity_drain=rng.random() < 0.5, narrow_stream=rng.random() < 0.3)
    if cfg.events_per_cycle > 2 and cfg.phase_quads:
        cfg = dataclasses.replace(cfg, events_per_cycle=2)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", type=int, default=16, help="random configurations (PE check)")
    ap.add_argument("--whole", type=int, default=0, help="of them, whole designs to synthesize")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("build/bram_check"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    commit = git_commit()     # the tree this run elaborates
    rng = random.Random(a.seed)
    cfgs = [random_config(rng) for _ in range(a.configs)]
    rows, bad = [], 0
    for i, cfg in enumerate(tqdm(cfgs, desc="PE weight memories", unit="config")):
        t = time.time()
        res = synth_block(block_component("pe", cfg), f"pe{i}", a.work / f"pe{i}")["resources"]
        est = weight_ram18(cfg) / 2
        y = res["RAMB36_equiv"]
        rows.append({"check": "pe", "config": cfg.to_json(), "yosys_ramb36": y,
                     "estimate_ramb36": est, "exact": exact(cfg),
                     "ok": y == est if exact(cfg) else y <= est, "yosys_s": round(time.time() - t, 1)})
        bad += not rows[-1]["ok"]
    for i, cfg in enumerate(tqdm(cfgs[:a.whole], desc="whole designs", unit="design")):
        rep = run_synth(cfg, a.work / f"top{i}")
        est = design_ram36(cfg)
        y = rep["resources"]["RAMB36_equiv"]
        rows.append({"check": "design", "config": cfg.to_json(), "yosys_ramb36": y,
                     "estimate": est, "exact": exact(cfg),
                     "ok": y == est["total"] if exact(cfg) else y <= est["total"],
                     "yosys_s": rep["yosys_s"]})
        bad += not rows[-1]["ok"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"commit": commit, "date": time.strftime("%Y-%m-%d"),
                                 "seed": a.seed, "rows": rows}, indent=1))
    n = len(rows)
    eq = sum(r["yosys_ramb36"] == r.get("estimate_ramb36", r.get("estimate", {}).get("total"))
             for r in rows)
    print(f"{n - bad}/{n} block-RAM counts hold ({eq} equal to Yosys, the rest upper bounds "
          f"where the count says so; {a.configs} PE configurations, {a.whole} whole designs) -> {a.out}")
    for r in rows:
        if not r["ok"]:
            print(f"  mismatch ({r['check']}): Yosys {r['yosys_ramb36']}, estimate "
                  f"{r.get('estimate_ramb36', r.get('estimate'))}, config {r['config']}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, "bram_estimate_check.py"))

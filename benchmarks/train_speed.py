"""Seconds per training step, eager against torch.compile, on this machine's CPU:
QAT steps of a network (`sia train`'s step: bf16 autocast if asked, SGD) and
spike-aware fine-tuning steps of a program (`sia finetune`'s forward over T steps).

    python benchmarks/train_speed.py [--arch resnet18] [--width 0.5] [--act qcfs]
        [--program resnet18_w025_e20_kd_ft3_t4_cifar10] [--T 8] [--threads 2]
        [--steps 6] [--out docs/train_speed.json]

Synthetic inputs (random images and labels): a step's time does not depend on the
data. The first two steps of each run (compilation, allocator warm-up) are not timed;
"compile_s" is their wall time. Run it on an otherwise idle machine.
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sia import run_main
from sia.models.zoo_arch import build_model
from sia.provenance import cpu_model, git_commit

ROOT = Path(__file__).resolve().parents[1]
WARM = 2


def _timed(step, steps: int) -> dict:
    t0 = time.time()
    for _ in range(WARM):
        step()
    t1 = time.time()
    for _ in range(steps):
        step()
    return {"s_per_step": round((time.time() - t1) / steps, 4), "compile_s": round(t1 - t0, 1)}


def qat_step(arch: str, width: float, act: str, bf16: bool, compiled: bool, batch: int):
    torch.manual_seed(0)
    net = build_model(arch, width=width, act=act)
    fwd = torch.compile(net) if compiled else net
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(fwd(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def finetune_step(program: str, T: int, compiled: bool, batch: int):
    from sia.convert.finetune import ProgramNet
    from sia.program.resolve import resolve_program
    net = ProgramNet(resolve_program(program), neurons=True)
    fwd = torch.compile(net) if compiled else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, *net.program.input_shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,), generator=g)

    def step():
        v = fwd(x, T)
        loss = F.cross_entropy(v[T - 1] / (T * 10.0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--act", default="qcfs", choices=("qcfs", "relu"))
    ap.add_argument("--batch", type=int, default=128, help="QAT batch")
    ap.add_argument("--program", default="resnet18_w025_e20_kd_ft3_t4_cifar10",
                    help="program file or zoo name for the fine-tuning steps ('' skips them)")
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--ft-batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per run")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for bf16 in (False, True):
        for compiled in (False, True):
            r = _timed(qat_step(a.arch, a.width, a.act, bf16, compiled, a.batch), a.steps)
            rows.append({"kind": "qat", "net": f"{a.arch} w{a.width} {a.act}", "batch": a.batch,
                         "bf16": bf16, "compiled": compiled, **r})
            print(json.dumps(rows[-1]))
    if a.program:
        for compiled in (False, True):
            r = _timed(finetune_step(a.program, a.T, compiled, a.ft_batch), a.steps)
            rows.append({"kind": "finetune", "net": a.program, "T": a.T, "batch": a.ft_batch,
                         "bf16": False, "compiled": compiled, **r})
            print(json.dumps(rows[-1]))
    out = {"commit": git_commit(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "threads": a.threads,
           "torch": torch.__version__, "timed_steps": a.steps, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    for kind in ("qat", "finetune"):
        rs = {(r["bf16"], r["compiled"]): r["s_per_step"] for r in rows if r["kind"] == kind}
        for bf16 in (False, True):
            if (bf16, False) in rs:
                print(f"{kind}{' bf16' if bf16 else ''}: eager {rs[(bf16, False)]:.3f} s/step, "
                      f"compiled {rs[(bf16, True)]:.3f} s/step "
                      f"({rs[(bf16, False)] / rs[(bf16, True)]:.2f}x)")
    print(f"-> {a.out}")


if __name__ == "__main__":
    run_main(main, "train_speed.py")

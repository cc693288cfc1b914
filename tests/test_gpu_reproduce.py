"""benchmarks/gpu_reproduce.py without a GPU: its argument checks and its fine-tuning
time plan (a device lease gives one try, so what can be checked here is)."""

import inspect
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark_common import load_benchmark

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_reproduce.py"


@pytest.mark.parametrize("extra, message", [
    (["--archs", "alexnet"], "unknown network 'alexnet'"),
    (["--epochs", "vgg11_fp32=x"], "--epochs 'vgg11_fp32=x': expected N or row=N"),
    (["--epochs", "lenet_fp32=3"], "--epochs: unknown row 'lenet_fp32'"),
    (["--set", "[1]"], "--set '[1]': expected a JSON object"),
    (["--programs", "vgg11"], "--programs 'vgg11': expected arch=FILE"),
    (["--programs", "vgg11=/no/such.safetensors"], "--programs: no such file"),
    (["--fp32-share", "1.5"], "--fp32-share must lie strictly between 0 and 1"),
    (["--finetune-s", "100", "--signed", "--max-files", "6"],
     "writes 7 files to --out (vgg11_program.safetensors.xz, vgg11_program_signed_ft_t4"),
])
def test_bad_arguments_one_line_and_nothing_written(tmp_path, extra, message):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path),
                        "--out", str(out), "--work", str(tmp_path / "w"), *extra],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("plan", ["STAGES", "STAGES_AGAIN"])
def test_stage_plans_are_well_formed(plan):
    from sia.convert.finetune import finetune

    gr = load_benchmark("gpu_reproduce")
    stages = getattr(gr, plan)
    assert sum(st["share"] for st in stages) == pytest.approx(1.0)
    saves = [st["save"] for st in stages if st.get("save")]
    assert saves and len(set(saves)) == len(saves) and stages[-1].get("save")
    accepted = set(inspect.signature(finetune).parameters)
    for st in stages:   # every key the stage passes on is one finetune takes
        assert set(st) - {"share", "save"} <= set(gr.STAGE_KEYS) <= accepted
        assert max(st["loss_steps"]) <= st["T"]


@pytest.mark.parametrize("signed", [False, True])
def test_stage_lengths_follow_the_measured_load(tmp_path, monkeypatch, signed):
    """The device run's failure: steps planned from a probe under a lighter GPU load
    overran the budget. Here every real step takes twice the probed time; the later
    stages must shrink to fit, every stage must run, and all must end in the budget.
    A program with signed neurons (--signed) saves its stages as *_signed_*."""
    import sia.convert.finetune as ft_mod
    import sia.data.registry as registry
    import sia.program as program_mod

    gr = load_benchmark("gpu_reproduce")
    dt, calls = 0.002, []
    n_probes = 3 * len({st["T"] for st in gr.STAGES})

    def fake_finetune(prog, x, y, *, steps, T, **kw):
        calls.append(steps)
        time.sleep(steps * dt * (1 if len(calls) <= n_probes else 2))
        return prog, {"acc": [0.5] * steps}

    monkeypatch.setattr(ft_mod, "finetune", fake_finetune)
    monkeypatch.setattr(ft_mod, "program_accuracy", lambda *a, **k: [0.1] * 8)
    monkeypatch.setattr(registry, "load_split", lambda *a, **k: (None, None))
    monkeypatch.setattr(program_mod, "save_program", lambda p, f: Path(f).write_text("p"))
    args = SimpleNamespace(data_dir="", device="cpu", ft_batch=8, budget=3.0,
                           arch="vgg11", out=str(tmp_path))
    rec, dumps = {}, []
    prog = SimpleNamespace(signed=signed)   # Program.signed: any layer with signed neurons
    t0 = time.time()
    gr._finetune(args, prog, None, t0, 0.1, (None, None), gr.STAGES, rec,
                 lambda: dumps.append(len(rec["saved"])))
    assert time.time() <= t0 + args.budget
    assert "skipped" not in rec and len(rec["steps"]) == len(gr.STAGES)
    assert rec["load_factor"] == [pytest.approx(2.0, rel=0.3)] * len(gr.STAGES)
    # stage 1 was planned at the probed speed, the later ones at the measured one
    per_share = [n / st["share"] for n, st in zip(rec["steps"], gr.STAGES)]
    assert per_share[1] < 0.8 * per_share[0]
    saved = [("_signed" if signed else "") + st["save"] for st in gr.STAGES if st.get("save")]
    assert rec["signed"] is signed
    assert [s["file"] for s in rec["saved"]] == [f"vgg11_program{s}.safetensors.xz" for s in saved]
    assert [s["tag"] for s in rec["saved"]] == saved
    summary = gr._summary("vgg11", {"start": {}, "finetune": rec})
    assert all(f"SNN{s} T4 0.1000 T8 0.1000" in summary for s in saved)
    assert dumps == list(range(1, len(saved) + 1))      # written after every saved stage
    assert all((tmp_path / s["file"]).is_file() for s in rec["saved"])
    planned = gr.out_files(["vgg11"], finetune=True, again=False, signed=signed)
    assert [s["file"] for s in rec["saved"]] == planned[1:-1]


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("again", [False, True])
def test_every_call_brings_its_files_back(signed, again):
    """The device tool returns at most 8 files from $OUT: both networks' programs and
    results.json must fit in one call, --signed or not (session 26's --signed wrote 9:
    the signed copy is now only recorded, `sia signed` remakes it)."""
    gr = load_benchmark("gpu_reproduce")
    files = gr.out_files(gr.ARCHS, finetune=True, again=again, signed=signed)
    assert len(files) == len(set(files)) <= gr.MAX_OUT_FILES
    assert files[-1] == "results.json"
    assert all(("_signed" in f) == (signed and "_ft" in f) for f in files[:-1])

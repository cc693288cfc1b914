"""Spike-aware fine-tuning (sia/convert/finetune.py): its forward pass is the golden
simulator's arithmetic, its output is a valid program, and it actually trains."""

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sia import SiaError
from sia.convert.finetune import (ProgramNet, ProgramTeacher, ste_int, finetune,
                                  program_accuracy)
from sia.data.digits import load_digits_split
from sia.program.random import random_program
from sia.snn.golden import run_batch
from sia.zoo import load_zoo_program


def _images(prog, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *prog.input_shape), generator=g, dtype=torch.uint8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), T=st.integers(1, 6))
def test_forward_equals_golden_on_random_programs(seed, T):
    prog = random_program(seed, timesteps=T)
    x = _images(prog, 5, seed)
    with torch.no_grad():
        v = ProgramNet(prog)(x, T)
    assert torch.equal(v.to(torch.int64), run_batch(prog, x, T)["output_v"])


def test_forward_equals_golden_on_digits():
    prog = load_zoo_program("digits_cnn_l8")
    x, _ = load_digits_split("test")
    with torch.no_grad():
        v = ProgramNet(prog)(x[:64], 8)
    assert torch.equal(v.to(torch.int64), run_batch(prog, x[:64], 8)["output_v"])


def test_program_accuracy_equals_the_golden_simulator_per_timestep():
    """The GPU-side quick evaluation (torch twin) counts exactly the golden predictions,
    over several batches (batch_size 50 does not divide 130)."""
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("test")
    x, y = x[:130], y[:130]
    acc = program_accuracy(prog, x, y, T=8, batch_size=50)
    v = run_batch(prog, x, 8)["output_v"]           # [T, B, classes]
    want = [int((v[t].argmax(-1) == y).sum()) / len(y) for t in range(8)]
    assert acc == want
    assert acc[-1] > 0.8   # a trained network, not a degenerate all-equal case
    with pytest.raises(SiaError, match="t_max"):
        program_accuracy(prog, x, y, T=prog.t_max + 1)


@pytest.mark.parametrize("neurons", [False, True])
def test_untrained_round_trip_keeps_every_integer(neurons):
    prog = random_program(3)
    back = ProgramNet(prog, neurons=neurons).to_program()
    for a, b in zip(prog.layers, back.layers):
        assert np.array_equal(a.bias, b.bias) and np.array_equal(a.v_init, b.v_init)
        assert (a.threshold is None) == (b.threshold is None)
        assert a.threshold is None or np.array_equal(a.threshold, b.threshold)
        for sa, sb in zip(a.inputs, b.inputs):
            assert np.array_equal(sa.weight, sb.weight) and sa.weight_bits == sb.weight_bits


def test_ste_rounds_half_up_clamps_and_passes_gradient():
    x = torch.tensor([-9.0, -2.5, 2.5, 0.49, 9.0], requires_grad=True)
    q = ste_int(x, -7, 7)
    assert q.tolist() == [-7, -2, 3, 0, 7]
    q.sum().backward()
    assert x.grad.tolist() == [1.0] * 5


def _digits_loss(prog, x, y, T=8):
    with torch.no_grad():
        v = run_batch(prog, x, T)["output_v"][-1].double()
    return float(F.cross_entropy(v / float(v.std()), y))


def test_finetune_lowers_the_loss_and_keeps_weights_in_range():
    """Start from a damaged digits program (every bias zeroed): a few dozen batches on
    its own training images must bring the golden simulator's loss down."""
    prog = load_zoo_program("digits_cnn_l8")
    for layer in prog.layers:
        layer.bias = np.zeros_like(layer.bias)
    x, y = load_digits_split("train")
    x, y = x[:256], y[:256]
    before = _digits_loss(prog, x, y)
    ft, hist = finetune(prog, x, y, T=8, loss_steps=(4, 8), steps=40, batch_size=64, lr=0.05,
                        augment=False, progress=False)
    assert _digits_loss(ft, x, y) < before
    assert len(hist["loss"]) == 40 and hist["temperature"] > 0
    for layer in ft.layers:
        for syn in layer.inputs:
            assert np.abs(syn.weight).max() <= 2 ** (syn.weight_bits - 1) - 1


def test_finetune_neurons_moves_thresholds_and_v_init_and_stays_exact():
    """neurons=True: thresholds (>= 1) and v_init are trained too; the result is a valid
    program on which the fine-tuning forward pass still equals the golden simulator."""
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    ft, _ = finetune(prog, x[:256], y[:256], T=8, loss_steps=(4, 8), steps=30, batch_size=64,
                     lr=0.2, augment=False, progress=False, neurons=True)
    moved = [not (np.array_equal(a.threshold, b.threshold) and np.array_equal(a.v_init, b.v_init))
             for a, b in zip(prog.layers, ft.layers) if a.kind == "if"]
    assert any(moved) and ft.meta["finetune"]["neurons"]
    assert all(int(layer.threshold.min()) >= 1 for layer in ft.layers if layer.kind == "if")
    with torch.no_grad():
        v = ProgramNet(ft)(x[:32], 8)
    assert torch.equal(v.to(torch.int64), run_batch(ft, x[:32], 8)["output_v"])


def test_program_teacher_gives_the_golden_rate_logits():
    """A frozen program as teacher: it returns the golden simulator's integrator
    membrane after T steps, over T."""
    prog = load_zoo_program("digits_cnn_l8")
    x, _ = load_digits_split("test")
    teacher = ProgramTeacher(prog, 6)
    got = teacher(x[:40])
    want = run_batch(prog, x[:40], 6)["output_v"][5]
    assert torch.equal((got * 6).round().to(torch.int64), want)
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(SiaError, match="t_max"):
        ProgramTeacher(prog, prog.t_max + 1)


def test_self_distillation_pulls_short_t_towards_the_long_t_teacher():
    """Temporal self-distillation (alpha 1: distillation only): the program frozen at
    T = 8 teaches its own T = 2 steps; the golden simulator's T = 2 output distribution
    moves towards the teacher's (KL divergence falls), and the stage records its teacher."""
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    x, y = x[:256], y[:256]

    def kl(p):
        with torch.no_grad():
            t8 = run_batch(prog, x, 8)["output_v"][7].double() / 8
            s2 = run_batch(p, x, 2)["output_v"][1].double() / 2
        scale = float(t8.std())
        return float(F.kl_div(F.log_softmax(s2 / scale, 1), F.softmax(t8 / scale, 1),
                              reduction="batchmean"))

    ft, hist = finetune(prog, x, y, T=2, loss_steps=(2,), steps=30, batch_size=64, lr=0.05,
                        augment=False, progress=False, teacher=ProgramTeacher(prog, 8), alpha=1.0)
    assert kl(ft) < kl(prog)
    assert ft.meta["finetune"]["distilled"] and ft.meta["finetune"]["teacher_T"] == 8
    assert np.isfinite(hist["loss"]).all()


def test_threshold_receives_the_surrogate_gradient():
    from sia.convert.finetune import _Spike
    v = torch.tensor([4.0, 9.0], requires_grad=True)
    th = torch.tensor([5.0, 5.0], requires_grad=True)
    _Spike.apply(v, th).sum().backward()
    assert v.grad.tolist() == pytest.approx([0.16, 0.04])
    assert th.grad.tolist() == pytest.approx([-0.16, -0.04])


@pytest.mark.parametrize("kw, msg", [({"loss_steps": (5,)}, "loss steps"),
                                     ({"loss_steps": (0, 4)}, "loss steps"),
                                     ({"T": 9}, "t_max"),
                                     ({"steps": 0}, "steps"), ({"lr": 0.0}, "lr")])
def test_finetune_rejects_bad_parameters(kw, msg):
    prog = random_program(1)
    x = _images(prog, 4, 0)
    with pytest.raises(SiaError, match=msg):
        finetune(prog, x, torch.zeros(4, dtype=torch.int64), **{"T": 4, "progress": False, **kw})


def test_finetune_cli_writes_program_history_and_plot(tmp_path):
    import json
    import subprocess
    import sys

    from sia.program import load_program
    out = tmp_path / "ft.safetensors"
    r = subprocess.run([sys.executable, "-m", "sia.cli", "finetune", "digits_cnn_l8", "--out",
                        str(out), "--steps", "3", "--batch", "16", "--T", "4",
                        "--loss-steps", "2,4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    prog = load_program(out)
    assert prog.meta["finetune"]["steps"] == 3 and prog.meta["finetune"]["loss_steps"] == [2, 4]
    hist = json.loads(out.with_suffix(".json").read_text())
    assert len(hist["loss"]) == 3 and out.with_suffix(".png").stat().st_size > 0
    # a second stage keeps the first in the program's history and does not grow the name
    out2 = tmp_path / "ft2.safetensors"
    r = subprocess.run([sys.executable, "-m", "sia.cli", "finetune", str(out), "--out",
                        str(out2), "--steps", "2", "--batch", "16", "--T", "4",
                        "--loss-steps", "4", "--neurons", "--self-distill", "8"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    prog2 = load_program(out2)
    stages = prog2.meta["finetune_stages"]
    assert [st["steps"] for st in stages] == [3, 2] and stages[1]["neurons"]
    assert stages[1]["teacher_T"] == 8 and stages[1]["teacher"] == "itself at T=8"
    assert prog2.meta["finetune"] == stages[1] and prog2.name == prog.name
    # an impossible teacher: one line, nothing written
    out3 = tmp_path / "ft3.safetensors"
    r = subprocess.run([sys.executable, "-m", "sia.cli", "finetune", str(out), "--out",
                        str(out3), "--steps", "2", "--self-distill", "99"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "teacher T=99" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("ft3*"))


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_finetune_matches_eager():
    """compile=True only changes how the forward runs: a few steps from the same start
    write the same integers as the eager run (float sums may differ in the last bits,
    which the rounding to integers absorbs here), and record that it was compiled."""
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    kw = dict(T=4, loss_steps=(4,), steps=3, batch_size=32, lr=0.05, augment=False, progress=False)
    eager, h0 = finetune(prog, x[:128], y[:128], **kw)
    comp, h1 = finetune(prog, x[:128], y[:128], compile=True, **kw)
    assert comp.meta["finetune"]["compiled"] and not eager.meta["finetune"]["compiled"]
    np.testing.assert_allclose(h0["loss"], h1["loss"], rtol=1e-4)
    for a, b in zip(eager.layers, comp.layers):
        assert np.array_equal(a.bias, b.bias)
        for sa, sb in zip(a.inputs, b.inputs):
            assert np.array_equal(sa.weight, sb.weight)

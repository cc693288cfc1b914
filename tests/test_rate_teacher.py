"""The rate teacher (sia/convert/rate_teacher.py): a program's rate view is the limit of
its spike counts, it trains, it saves and loads over the student's graph only, and
`sia teacher` / `sia finetune --teacher DIR` use it; its integer form fine-tunes the
program itself (`sia finetune --view rate`)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sia import SiaError
from sia.convert.finetune import finetune
from sia.convert.rate_teacher import (RateNet, RateTeacher, load_teacher, rate_accuracy,
                                      rate_finetune, save_teacher, train_rate_net)
from sia.data.digits import load_digits_split
from sia.program.format import IMAGE
from sia.program.random import random_program
from sia.snn.golden import run_batch
from sia.zoo import load_zoo_program


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sia.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_first_layer_rate_is_the_limit_of_its_spike_count(seed):
    """A layer fed by the image alone gets a constant current c each step, so after T
    steps its count is floor((v_init + T c) / theta) clamped to 0..T, up to one spike:
    |count / T - clamp(c / theta, 0, 1)| <= (|v_init| / theta + 1) / T."""
    prog = random_program(seed, timesteps=16)
    layer = prog.layers[0]
    if layer.kind != "if" or layer.signed or any(s.source != IMAGE for s in layer.inputs):
        return
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, *prog.input_shape), generator=g, dtype=torch.uint8)
    T = prog.t_max
    with torch.no_grad():
        rate = RateNet(prog).run(x)[0][0].double()
    count = run_batch(prog, x, T, record=True)["traces"][layer.name]["spikes"].double().sum(0)
    theta = torch.as_tensor(layer.threshold, dtype=torch.float64)[None, :, None, None]
    v0 = torch.as_tensor(layer.v_init, dtype=torch.float64)[None, :, None, None]
    bound = (v0.abs() / theta + 1) / T
    assert ((count / T - rate).abs() <= bound + 1e-9).all()


def test_rate_view_predicts_like_the_program_at_long_t():
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("test")
    with torch.no_grad():
        view = RateNet(prog)(x).argmax(1)
    golden = run_batch(prog, x, prog.t_max)["output_v"][-1].argmax(-1)
    assert float((view == golden).float().mean()) >= 0.95
    assert rate_accuracy(RateNet(prog), x, y) > 0.9


def test_training_lowers_the_loss_and_the_teacher_round_trips(tmp_path):
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    net, hist = train_rate_net(prog, x, y, steps=60, batch_size=64, lr=0.01, augment=False,
                               progress=False)
    assert np.mean(hist["loss"][-10:]) < np.mean(hist["loss"][:10])
    assert not torch.equal(net.weights[0], RateNet(prog).weights[0])   # float, moved
    save_teacher(net, tmp_path / "t", {"dataset": "digits"})
    teacher = load_teacher(tmp_path / "t", prog)
    assert isinstance(teacher, RateTeacher) and teacher.info["kind"] == "rate_teacher"
    xt, _ = load_digits_split("test")
    with torch.no_grad():
        assert torch.equal(teacher(xt[:50]), net(xt[:50]))
    assert not any(p.requires_grad for p in teacher.parameters())


def test_load_teacher_refuses_other_programs_and_damaged_files(tmp_path):
    prog = load_zoo_program("digits_cnn_l8")
    save_teacher(RateNet(prog), tmp_path / "t", {"dataset": "digits"})
    with pytest.raises(SiaError, match="does not fit program"):
        load_teacher(tmp_path / "t", random_program(3))
    with pytest.raises(SiaError, match="no such file"):
        load_teacher(tmp_path / "nothing", prog)
    (tmp_path / "t" / "teacher.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(SiaError, match="truncated or not a safetensors"):
        load_teacher(tmp_path / "t", prog)
    (tmp_path / "t" / "teacher.json").write_text("{not json")
    with pytest.raises(SiaError, match="not valid JSON"):
        load_teacher(tmp_path / "t", prog)
    (tmp_path / "t" / "teacher.json").write_text(json.dumps({"kind": "twin"}))
    with pytest.raises(SiaError, match="rate teacher"):
        load_teacher(tmp_path / "t", prog)


def test_distillation_pulls_the_student_towards_the_rate_teacher():
    """Distillation only (alpha 1): the golden simulator's T = 2 output distribution
    moves towards the rate teacher's (KL divergence falls); the logits are compared
    on the student's own scale, as `finetune` does."""
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    x, y = x[:256], y[:256]
    teacher = RateTeacher(RateNet(prog), {})

    def kl(p):
        with torch.no_grad():
            t = teacher(x).double()
            s2 = run_batch(p, x, 2)["output_v"][1].double() / 2
        scale = float(t.std())
        return float(F.kl_div(F.log_softmax(s2 / scale, 1), F.softmax(t / scale, 1),
                              reduction="batchmean"))

    ft, _ = finetune(prog, x, y, T=2, loss_steps=(2,), steps=30, batch_size=64, lr=0.05,
                     augment=False, progress=False, teacher=teacher, alpha=1.0)
    assert kl(ft) < kl(prog)
    assert ft.meta["finetune"]["distilled"] and ft.meta["finetune"]["teacher_T"] is None


def test_teacher_cli_then_finetune_from_it(tmp_path):
    out = tmp_path / "teacher"
    r = _cli("teacher", "digits_cnn_l8", "--out", out, "--steps", "5", "--batch", "16")
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    info = json.loads((out / "teacher.json").read_text())
    assert info["steps"] == 5 and info["data"] == "sklearn-digits"
    assert info["test_accuracy"] > 0.9 and (out / "teacher.png").stat().st_size > 0
    ft = tmp_path / "ft.safetensors"
    r = _cli("finetune", "digits_cnn_l8", "--out", ft, "--teacher", out, "--steps", "2",
             "--batch", "16", "--T", "4", "--loss-steps", "4")
    assert r.returncode == 0, r.stderr
    from sia.program import load_program
    stage = load_program(ft).meta["finetune"]
    assert stage["distilled"] and stage["teacher"] == str(out)


@pytest.mark.parametrize("args, msg", [(["--steps", "0"], "steps >= 1"),
                                       (["--label-smoothing", "1"], "label smoothing"),
                                       (["--lr", "nan"], "finite lr"),
                                       (["--data", "mnist"], "choose one of")])
def test_teacher_cli_refuses_bad_input_and_writes_nothing(tmp_path, args, msg):
    out = tmp_path / "teacher"
    r = _cli("teacher", "digits_cnn_l8", "--out", out, *args)
    assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_finetune_refuses_a_teacher_of_another_shape(tmp_path):
    """A teacher whose tensors do not match the student's graph: one line, nothing written."""
    from safetensors.torch import save_file
    prog = load_zoo_program("digits_cnn_l8")
    net = RateNet(prog)
    save_teacher(net, tmp_path / "t", {"dataset": "digits"})
    state = net.state()
    state["w0"] = state["w0"][:1].contiguous()
    save_file(state, str(tmp_path / "t" / "teacher.safetensors"))
    r = _cli("finetune", "digits_cnn_l8", "--out", tmp_path / "ft.safetensors", "--teacher",
             tmp_path / "t", "--steps", "1")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "does not fit program" in r.stderr and "'w0'" in r.stderr
    assert not list(tmp_path.glob("ft*"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_integer_rate_view_starts_as_the_float_one(seed):
    """At the program's own integers rounding changes nothing: both views agree."""
    prog = random_program(seed, timesteps=8)
    x = torch.randint(0, 256, (4, *prog.input_shape), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(RateNet(prog, integer=True)(x), RateNet(prog)(x))


def test_rate_finetune_writes_the_integers_it_trained(monkeypatch):
    """The written program is a validated program whose weights stay in their declared
    ranges, whose thresholds and v_init are the start's, and whose float rate view is
    exactly the integer view that was trained (nothing rounds differently on the way)."""
    import sia.convert.rate_teacher as rt
    prog = load_zoo_program("digits_cnn_l8")
    x, y = load_digits_split("train")
    trained = []
    real = rt.train_rate_net
    monkeypatch.setattr(rt, "train_rate_net", lambda *a, **k: trained.append(real(*a, **k))
                        or trained[-1])
    ft, hist = rate_finetune(prog, x, y, steps=40, batch_size=64, lr=0.05, augment=False,
                             progress=False)
    assert np.mean(hist["loss"][-10:]) < np.mean(hist["loss"][:10])
    moved = 0
    for l0, l1 in zip(prog.layers, ft.layers):
        for s0, s1 in zip(l0.inputs, l1.inputs):
            qmax = 2 ** (s1.weight_bits - 1) - 1
            assert s1.weight.dtype == np.int64 and np.abs(s1.weight).max() <= qmax
            moved += int((s0.weight != s1.weight).sum())
        assert np.array_equal(l0.v_init, l1.v_init)
        if l0.kind == "if":
            assert np.array_equal(l0.threshold, l1.threshold)
    assert moved > 0
    xt, _ = load_digits_split("test")
    with torch.no_grad():
        assert torch.equal(RateNet(ft)(xt[:64]), trained[0][0](xt[:64]))
    stage = ft.meta["finetune"]
    assert stage["view"] == "rate" and stage["steps"] == 40
    assert ft.meta["finetune_stages"][-1] == stage
    with pytest.raises(SiaError, match="integer rate view"):
        RateNet(prog).to_program()


def test_finetune_cli_in_the_rate_view(tmp_path):
    ft = tmp_path / "ft.safetensors"
    r = _cli("finetune", "digits_cnn_l8", "--view", "rate", "--out", ft, "--steps", "3",
             "--batch", "16")
    assert r.returncode == 0, r.stderr
    assert "in the rate view" in r.stdout
    from sia.program import load_program
    stage = load_program(ft).meta["finetune"]
    assert stage["view"] == "rate" and stage["data"] == "sklearn-digits"
    assert ft.with_suffix(".json").is_file() and ft.with_suffix(".png").is_file()


@pytest.mark.parametrize("args, msg", [(["--view", "rates"], "give spikes or rate"),
                                       (["--view", "rate", "--neurons"], "--neurons does not apply"),
                                       (["--view", "rate", "--self-distill", "8"],
                                        "--self-distill does not apply"),
                                       (["--view", "rate", "--label-smoothing", "1"],
                                        "label smoothing"),
                                       (["--bf16"], "--view rate only")])
def test_finetune_cli_refuses_what_the_view_cannot_do(tmp_path, args, msg):
    out = tmp_path / "ft.safetensors"
    r = _cli("finetune", "digits_cnn_l8", "--out", out, "--steps", "2", *args)
    assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())

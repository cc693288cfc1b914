"""`sia diagnose`: per-layer conversion error (sia/snn/diagnose.py) - hand-worked
edges, agreement with the golden simulator on random programs, and the CLI."""

import json

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, finish
from conftest import run_sia as sia
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sia import SiaError
from sia.program import Layer, Program, Synapse
from sia.program.random import random_program
from sia.snn import simulate
from sia.snn.diagnose import diagnose, layer_errors
from sia.snn.neuron import if_step


def _run_if(currents, theta, v_init=0):
    """One IF neuron driven by `currents`: (spikes [T,1,1,1,1], V after the last step)."""
    v = torch.tensor([[[[v_init]]]], dtype=torch.int64)
    th = torch.tensor([[[[theta]]]], dtype=torch.int64)
    spikes = []
    for c in currents:
        v, s = if_step(v, torch.tensor(c, dtype=torch.int64), th)
        spikes.append(s)
    return torch.stack(spikes), v, th


@pytest.mark.parametrize("currents, v_init, level, own", [
    ([10, 10, -10, -10], 0, 0, +2),   # fires twice early; its total input is 0: excess
    ([0, 0, 0, 20], 0, 2, -1),        # all input at the last step: one spike, two owed
    ([5, 5, 5, 5], 5, 2, 0),          # constant input: V hits the threshold exactly
    ([4, 4, 4, 4], 5, 2, 0),          # 21 in total: 2 spikes, V_T = 1 in [0, theta)
    ([-3, -3, -3, -3], 5, 0, 0),      # never fires, stays negative: no own error
    ([30, 30, 30, 30], 0, 4, 0),      # saturated: clipped at T, not owed
])
def test_own_error_edges(currents, v_init, level, own):
    spikes, v, th = _run_if(currents, 10, v_init)
    e = layer_errors(th, spikes, v, torch.tensor([[[[level]]]]), L=4)
    count = int(spikes.sum())
    assert e["own_excess"] == (own > 0) and e["own_owed"] == (own < 0)
    assert e["own_abs"] == abs(own)
    assert e["rate_err"] == 4 * (count - level)    # in 1/T levels; T = L: spikes - level


def test_rate_error_scales_to_ann_levels_when_T_differs_from_L():
    spikes, v, th = _run_if([10] * 8, 10)          # 8 spikes in 8 steps = L levels of 4
    e = layer_errors(th, spikes, v, torch.tensor([[[[3]]]]), L=4)
    assert e["rate_err"] == 8 * 1 and e["spikes"] * 4 / 8 == 4   # one level over, in 1/T


def _chain():
    """image -> a (fires once, at t = 1) -> b (+20 from a, bias -5) -> integrator."""
    one = lambda x: np.array([x])  # noqa: E731
    a = Layer("a", "if", (1, 1, 1), bias=one(0), v_init=one(9), threshold=one(10),
              v_bits=64, acc_bits=64, inputs=[Synapse(-1, "dense", np.array([[1]]), 8)])
    b = Layer("b", "if", (1, 1, 1), bias=one(-5), v_init=one(0), threshold=one(10),
              v_bits=64, acc_bits=64, inputs=[Synapse(0, "dense", np.array([[20]]), 8)])
    out = Layer("out", "integrator", (1, 1, 1), bias=one(0), v_init=one(0), v_bits=64,
                acc_bits=64, inputs=[Synapse(1, "dense", np.array([[1]]), 2)])
    return finish(Program("chain", (1, 1, 1), levels=4, timesteps=4, t_max=16,
                          layers=[a, b, out], num_classes=1))


def test_chain_worked_by_hand():
    """a: V = 10 at t = 1 fires, then 1, 2, 3: one spike = its ANN level floor(13/10).
    b: 20 - 5 = 15 fires at t = 1, then 0, -5, -10: one spike, but its total input is
    0, so its own error is one excess spike; the ANN level is floor((-20 + 20)/10) = 0."""
    r = diagnose(_chain(), torch.ones(1, 1, 1, 1, dtype=torch.uint8), T=4)
    a, b = r["layers"]
    assert (a["rate_error"], a["own_excess"], a["own_owed"]) == (0.0, 0.0, 0.0)
    assert (a["ann_level"], a["snn_level"]) == (1.0, 1.0)
    assert (b["ann_level"], b["snn_level"], b["rate_error"]) == (0.0, 1.0, 1.0)
    assert (b["own_excess"], b["own_owed"], b["own_abs_error"]) == (1.0, 0.0, 1.0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10 ** 6), T=st.integers(1, 8), batch=st.integers(1, 5))
def test_agrees_with_the_golden_simulator(seed, T, batch):
    """Spike totals, accuracy per t and the image-fed layers: the same as `simulate`,
    in any batch size."""
    p = random_program(seed, timesteps=8)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(0, 256, (6, *p.input_shape), dtype=np.uint8))
    y = rng.integers(0, p.num_classes, 6)
    r = diagnose(p, x, y, T=T, batch_size=batch)
    sim = simulate(p, x, y, T=T)
    assert r["accuracy"] == sim.accuracy
    for row in r["layers"]:
        total = row["snn_level"] * row["neurons_per_image"] * 6 * T / p.levels
        assert total == pytest.approx(sim.spikes[row["name"]], abs=1e-6)
        assert 0 <= row["own_excess"] + row["own_owed"] <= row["own_abs_error"] + 1e-12
        assert 0 <= row["rate_mismatch"] <= 1
    assert r == diagnose(p, x, y, T=T, batch_size=6)


def test_bad_arguments():
    p = random_program(0)
    x = torch.zeros(2, *p.input_shape, dtype=torch.uint8)
    with pytest.raises(SiaError, match="outside 1..t_max"):
        diagnose(p, x, T=0)
    with pytest.raises(SiaError, match="--batch 0"):
        diagnose(p, x, batch_size=0)
    with pytest.raises(SiaError, match="images must be uint8"):
        diagnose(p, x.float())
    with pytest.raises(SiaError, match="no images"):
        diagnose(p, x[:0])


def test_cli_writes_json_and_png(tmp_path):
    out = tmp_path / "d"
    r = sia("diagnose", "digits_cnn_l8", "--images", "24", "--T", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "same class as the ANN" in r.stdout
    rep = json.loads((out / "diagnose.json").read_text())
    assert rep["images"] == 24 and rep["timesteps"] == 4 and rep["split"] == "test"
    assert rep["data"] == "sklearn-digits" and len(rep["accuracy"]) == 4
    assert (out / "diagnose.png").stat().st_size > 1000


@pytest.mark.parametrize("args, msg", [
    (["--split", "val"], "--split 'val'"),
    (["--batch", "0"], "--batch 0"),
    (["--T", "0"], "T=0 outside"),
    (["--images", "-1"], "--images -1"),
])
def test_cli_bad_input_one_line_nothing_written(tmp_path, args, msg):
    out = tmp_path / "d"
    r = sia("diagnose", "digits_cnn_l8", "--out", str(out), *args)
    assert_one_line_error(r, msg)
    assert not out.exists()

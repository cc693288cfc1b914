import numpy as np
import pytest
import torch

import sia.models as models
from sia import SiaError
from sia.convert import convert
from sia.snn import simulate
from sia.snn.ann import ann_levels


def _trace(prog, pixel, T):
    r = simulate(prog, torch.full((1, 1, 1, 1), pixel, dtype=torch.uint8), T=T, record=True)
    tr = r.traces["if"]
    return tr["v"][:, 0, 0, 0, 0].tolist(), tr["spikes"][:, 0, 0, 0, 0].tolist()


def test_if_fires_at_equality(one_neuron):
    # v_init 5, I = 5 per step, threshold 10: V hits exactly 10 at t = 1, 3 and fires
    v, s = _trace(one_neuron(w=1, threshold=10, v_init=5), 5, 4)
    assert s == [1, 0, 1, 0] and v == [0, 5, 0, 5]
    # one below the threshold does not fire
    v, s = _trace(one_neuron(w=1, threshold=10, v_init=4), 5, 1)
    assert s == [0] and v == [9]


def test_if_membrane_trace(one_neuron):
    # V(0)=5, I = 3 + bias 1 = 4: 9, 13->3 (spike), 7, 11->1 (spike), 5
    v, s = _trace(one_neuron(w=1, threshold=10, bias=1, v_init=5), 3, 5)
    assert v == [9, 3, 7, 1, 5] and s == [0, 1, 0, 1, 0]


def test_if_reset_by_subtraction_keeps_excess(one_neuron):
    # I = 25 > 2 * threshold: one spike per step, the excess accumulates
    v, s = _trace(one_neuron(w=1, threshold=10, v_init=0), 25, 3)
    assert s == [1, 1, 1] and v == [15, 30, 45]


def test_if_negative_membrane_not_clamped(one_neuron):
    v, s = _trace(one_neuron(w=-1, threshold=10, v_init=5), 7, 3)
    assert v == [-2, -9, -16] and s == [0, 0, 0]


def test_argmax_ties_lowest_index(small_program):
    p = small_program()
    out = p.layers[-1]
    out.inputs[0].weight[:] = 0
    out.bias[:] = [4, 7, 7]
    r = simulate(p, torch.zeros(1, 2, 8, 8, dtype=torch.uint8), T=2)
    assert r.predictions[:, 0].tolist() == [1, 1]


def test_spike_count_matches_closed_form(one_neuron):
    """Constant input: count(T) = clip(floor((v_init + T*I)/theta), 0, T)."""
    for w, th, b, v0, px in [(1, 7, 0, 3, 5), (2, 9, -1, 4, 3), (1, 5, 0, 2, 255), (-1, 5, 0, 2, 9)]:
        prog = one_neuron(w=w, threshold=th, bias=b, v_init=v0)
        for T in (1, 3, 8):
            _, s = _trace(prog, px, T)
            expect = min(max((v0 + T * (w * px + b)) // th, 0), T)
            assert sum(s) == expect


def test_T_equals_L_reproduces_ann_levels():
    """The first layer sees a constant input, so at T = L its spike counts equal the
    integer QCFS ANN's levels exactly (theory: docs/semantics.md)."""
    torch.manual_seed(0)
    net = models.build_model("digits_cnn").eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, models.ConvUnit):
                m.bn.running_mean.uniform_(-0.2, 0.2)
                m.act.theta.fill_(1.0)
    p = convert(net, (1, 8, 8))
    x = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
    r = simulate(p, x, T=p.levels, record=True)
    counts = r.traces["conv0"]["spikes"].sum(0).long()
    levels = ann_levels(p, x)["conv0"]
    assert counts.sum() > 0
    assert torch.equal(counts, levels)


def test_time_folding_equals_step_by_step(small_program):
    """Simulating T steps at once equals the prefix of a longer run (causality)."""
    p = small_program(3)
    x = torch.randint(0, 256, (5, 2, 8, 8), dtype=torch.uint8)
    long = simulate(p, x, T=8, record=True)
    short = simulate(p, x, T=3, record=True)
    assert np.array_equal(long.predictions[:3], short.predictions)
    assert torch.equal(long.traces["c1"]["spikes"][:3], short.traces["c1"]["spikes"])


def test_batch_size_does_not_change_results(small_program):
    p = small_program(1)
    x = torch.randint(0, 256, (7, 2, 8, 8), dtype=torch.uint8)
    a, b = simulate(p, x, T=4, batch_size=7), simulate(p, x, T=4, batch_size=2)
    assert np.array_equal(a.predictions, b.predictions) and a.sops == b.sops


def test_sop_count_hand_computed(one_neuron):
    # one spike per step into a dense 1-neuron integrator: 1 accumulate per spike
    r = simulate(one_neuron(w=1, threshold=10, v_init=0), torch.full((1, 1, 1, 1), 10,
                 dtype=torch.uint8), T=4)
    assert r.spikes["if"] == 4 and r.sops["out"] == 4 and r.image_macs["if"] == 1


def test_rejects_bad_images_and_T(small_program):
    p = small_program()
    with pytest.raises(SiaError, match="uint8"):
        simulate(p, torch.zeros(1, 2, 8, 8), T=2)
    with pytest.raises(SiaError, match="t_max"):
        simulate(p, torch.zeros(1, 2, 8, 8, dtype=torch.uint8), T=17)


def test_ann_predict_in_batches_equals_one_pass():
    from sia.program.resolve import resolve_program
    from sia.data.registry import load_split
    from sia.snn.ann import ann_predict
    p = resolve_program("digits_cnn_l8")
    x, _ = load_split("digits", "test")
    x = x[:50]
    whole = ann_levels(p, x)[p.output.name].argmax(-1)
    assert torch.equal(ann_predict(p, x, batch_size=7), whole)
    assert ann_predict(p, x[:0]).shape == (0,)

"""Cycle-level model (sia.hw.model): bit-exact with the golden simulator, fast path ==
per-event trace cycle for cycle, hand-computed launch cycles, ping-pong banks, fit
checks, DSE consistency, reports and CLI."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark_common import load_benchmark
from sia import SiaError
from sia.hw import regmap, timing
from sia.hw.model import check_fits, dse, launch_cycles, report, run, trace
from sia.hw.model import schedule as S
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import design_ram36
from sia.program import Layer, Program, Synapse
from sia.program.bounds import required_bits
from sia.program.random import random_program
from sia.snn import simulate


def _finish(p: Program) -> Program:
    for layer in p.layers:
        need = required_bits(p, layer)
        layer.acc_bits, layer.v_bits = need["acc_bits"], need["v_bits"]
    return p


def _images(p: Program, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, *p.input_shape), dtype=np.uint8))


def _check_trace(p: Program, img: torch.Tensor, cfg: SIAConfig):
    """Trace == golden (spikes, membranes, logits); fast path == trace per launch;
    no membrane bank read and written in the same phase; <= 3 live psum rows."""
    tr = trace(p, img[0], config=cfg)
    g = simulate(p, img, record=True)
    for layer in p.layers:
        np.testing.assert_array_equal(tr.v[layer.name], g.traces[layer.name]["v"][:, 0].numpy())
        if layer.kind == "if":
            np.testing.assert_array_equal(tr.spikes[layer.name],
                                          g.traces[layer.name]["spikes"][:, 0].numpy())
    fast = run(p, img, config=cfg).launches()
    assert len(fast) == len(tr.launches)
    for f, t in zip(fast, tr.launches):
        assert {k: int(v) for k, v in f["phases"].items()} == t["phases"], (f["layer"], f["tile"])
        assert (f["sops"], f["image_ops"], f["memory"]["weight_reads"]) == \
            (t["sops"], t["image_ops"], t["weight_reads"])
        assert {k: f["memory"][k] for k in t["memory"]} == t["memory"]
        assert t["psum_rows"] <= 3
    for key, uses in tr.bank_use.items():
        for bank in (0, 1):
            assert not {(bank, "r"), (bank, "w")} <= uses, key
    return tr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), pes=st.sampled_from([4, 64]), E=st.sampled_from([1, 2, 4]),
       phase=st.booleans(), drain=st.booleans(), prefetch=st.booleans(),
       slots=st.sampled_from([4, 5, 6, 8]), hold=st.booleans(), quads=st.booleans(),
       narrow=st.booleans())
def test_random_programs_trace_golden_fast(seed, pes, E, phase, drain, prefetch, slots, hold,
                                           quads, narrow):
    p = random_program(seed, max_hw=8, max_channels=6, timesteps=3)
    _check_trace(p, _images(p, 1, seed), SIAConfig(pes=pes, events_per_cycle=E, phase_pairs=phase,
                                                   identity_drain=drain, row_prefetch=prefetch,
                                                   psum_slots=slots, pool_hold=hold and E <= 2,
                                                   phase_quads=phase and quads,
                                                   narrow_stream=narrow))


# seeds of sia.program.random (max_hw=8, max_channels=6) whose programs hold a phase pair
PHASE_SEEDS = [11, 16, 34, 63, 87, 105]


# seeds of sia.program.random (max_hw=8, max_channels=6) whose programs hold a phase quad
# (a stride-2 3x3 conv over a source of even height and width)
QUAD_SEEDS = [11, 34, 87, 94, 132]


# seeds of sia.program.random (max_hw=8, max_channels=6) whose programs hold an identity
IDENTITY_SEEDS = [4, 5, 7, 9, 12, 19]


# seeds of sia.program.random (max_hw=8, max_channels=6) whose programs pool a spike source
# and hold events at E = 2 (test images of `_images`)
POOL_SEEDS = [6, 15, 23, 27]


@pytest.mark.parametrize("seed", POOL_SEEDS)
def test_pool_hold_trace_golden_fast(seed):
    """Pool hold (`pool_hold`): trace == golden, fast == trace; the same SOPs and
    outputs as without it, never more dispatch cycles, and fewer where a pooled
    position's units end with fewer than E events."""
    p = random_program(seed, max_hw=8, max_channels=6, timesteps=3)
    img = _images(p, 1, seed)
    saved = 0
    for E, slots in ((1, 4), (2, 4), (2, 8)):
        on = SIAConfig(pes=4, events_per_cycle=E, pool_hold=True, psum_slots=slots)
        tr = _check_trace(p, img, on)
        off = run(p, img, config=dataclasses.replace(on, pool_hold=False)).launches()
        for f, t in zip(off, tr.launches):
            assert t["sops"] == f["sops"]
            d_on = t["phases"]["accumulate"] + t["phases"]["dispatch_empty"]
            d_off = f["phases"]["accumulate"] + f["phases"]["dispatch_empty"]
            assert d_on <= d_off
            if E == 1:      # nothing is ever held at one event per cycle
                assert t["phases"] == {k: int(v) for k, v in f["phases"].items()}
            saved += d_off - d_on
    assert saved > 0


def test_pool_hold_by_hand():
    """`schedule.held_costs` and the RTL formula's `held_cost` on hand-counted units
    (E = 2): [3, 3] -> unit 0 issues 2, holds 1; unit 1 issues 1 + 1, then 2: 3 cycles;
    [0, 5] -> 1 + 3; [3, 0, 0, 3] -> 1 (hold 1), 1 (issues it), 1 (empty), 2 = 5; and
    [0, 0] is two empty units."""
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    for units, cycles, empty in (([3, 3], 3, 0), ([0, 5], 4, 1), ([3, 0, 0, 3], 5, 1),
                                 ([0, 0], 2, 2), ([1, 1], 2, 0), ([5, 1], 3, 0)):
        n = torch.tensor(units)
        # [T', B, U, rows * p, cols]: one unit per run, p = len(units) pool rows
        region = n.view(1, 1, 1, len(units), 1)
        c, e = S.held_costs(region, 2, len(units))
        assert (int(c), int(e)) == (cycles, empty), units
        assert int(rtl_cycles.held_cost(n.numpy()[None], 2)[0]) == cycles
    with pytest.raises(SiaError, match="pool_hold needs events_per_cycle <= 2"):
        SIAConfig(events_per_cycle=4, pool_hold=True)


@pytest.mark.parametrize("seed", IDENTITY_SEEDS)
def test_identity_drain_trace_golden_fast(seed):
    """Identity shortcuts added by the aggregation core (`identity_drain`): trace ==
    golden, fast == trace, the drain group is never dispatched and still counts its SOPs
    and its reads of the shortcut copy; the launch needs fewer cycles than dispatching it."""
    p = random_program(seed, max_hw=8, max_channels=6, timesteps=3)
    img = _images(p, 1, seed)
    for E, ph in ((1, False), (2, True), (4, False)):
        on = SIAConfig(pes=4, events_per_cycle=E, phase_pairs=ph, identity_drain=True)
        tr = _check_trace(p, img, on)
        off = run(p, img, config=dataclasses.replace(on, identity_drain=False)).launches()
        drained = [j for j, layer in enumerate(p.layers) if regmap.drain_group(layer, on) is not None]
        assert drained
        for f, t in zip(off, tr.launches):
            d = f["layer"] in drained
            assert (t["memory"].get("shortcut_reads", 0) > 0) == d
            assert t["sops"] == f["sops"]
            assert t["cycles"] <= f["cycles"] and (t["phases"]["accumulate"] + t["phases"]["dispatch_empty"]
                                                    < f["phases"]["accumulate"] + f["phases"]["dispatch_empty"]) == d


@pytest.mark.parametrize("seed", PHASE_SEEDS)
def test_phase_pairs_trace_golden_fast(seed):
    """Programs with stride-2 3x3 convs on a phase-pair build: trace == golden and
    fast == trace (the hypothesis test above meets such groups only sometimes)."""
    p = random_program(seed, max_hw=8, max_channels=6, timesteps=3)
    cfg = SIAConfig(pes=4, events_per_cycle=1 + seed % 2, phase_pairs=True)
    assert any(S.phase(s, p, cfg) for layer in p.layers for s in layer.inputs)
    _check_trace(p, _images(p, 1, seed), cfg)


def _stride2_program(c: int) -> Program:
    """An image 1x1 layer onto c channels of a 2x4 map, then a stride-2, padding-1 3x3
    conv onto 2 channels of 1x2: the smallest program with a phase-pair group."""
    l0 = Layer("a", "if", (c, 2, 4), bias=np.zeros(c, np.int64), v_init=np.zeros(c, np.int64),
               threshold=np.ones(c, np.int64), v_bits=1, acc_bits=1,
               inputs=[Synapse(-1, "conv", np.ones((c, 1, 1, 1), np.int64), 8)])
    l1 = Layer("b", "if", (2, 1, 2), bias=np.zeros(2, np.int64), v_init=np.zeros(2, np.int64),
               threshold=np.array([1, 1]), v_bits=1, acc_bits=1,
               inputs=[Synapse(0, "conv", np.ones((2, c, 3, 3), np.int64), 4, stride=2, padding=1)])
    return _finish(Program(f"ph{c}", (1, 2, 4), levels=4, timesteps=1, t_max=1, layers=[l0, l1],
                           num_classes=2))


def test_hand_computed_phase_pairs():
    """A stride-2 3x3 conv (pad 1) over a 2x4 map: on a phase-pair build the column
    pairs (0, 1) and (2, 3) of each row are one issue unit each, costing
    max(1, ceil(n_lo/E), ceil(n_hi/E)); without, each word is a unit of its own
    (one 64-channel word per position: no word pairs)."""
    p = _stride2_program(3)
    l1 = p.layers[1]
    s = np.zeros((1, 3, 2, 4), np.uint8)
    s[0, :, 0, 0] = 1            # row 0, pair 0: lo 3 events, hi 1
    s[0, 1, 0, 1] = 1
    s[0, :2, 1, 3] = 1           # row 1, pair 1: lo 0, hi 2; pair 0 of row 1 empty
    # per unit, rows 0 and 1: phased (3|1) (empty) (empty) (0|2); plain the 8 words
    for E, phased, plain in ((1, 3 + 1 + 1 + 2, 3 + 1 + 1 + 1 + 1 + 1 + 1 + 2),
                             (2, 2 + 1 + 1 + 1, 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1)):
        for ph, want in ((True, phased), (False, plain)):
            cfg = SIAConfig(events_per_cycle=E, phase_pairs=ph)
            assert S.phase(l1.inputs[0], p, cfg) == ph
            c = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=cfg)
            assert c["accumulate"] + c["dispatch_empty"] == want, (E, ph)
            if ph:   # row 0's second pair and row 1's first are empty
                assert c["dispatch_empty"] == 2
    g = regmap._groups(p, 1, 0, SIAConfig(phase_pairs=True), 1)[0][0]
    assert (g["phase"], g["nw"], g["wp"], g["pstride"], g["prow_stride"]) == (1, 2, 2, 2, 4)
    # the maps go pair-interleaved: (row, pair X, word w, column 2X / 2X+1)
    by_pos = s[0].transpose(1, 2, 0).astype(np.int64) @ (1 << np.arange(3))   # [y, x] words
    assert regmap.pack_inputs(p, 1, 0, {0: s}, SIAConfig(phase_pairs=True), 1) == \
        by_pos.reshape(-1).tolist()     # nw = 1: interleaving keeps raster order
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    for E in (1, 2, 4):
        cfg = SIAConfig(events_per_cycle=E, phase_pairs=True)
        assert launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=cfg)["total"] == \
            rtl_cycles.launch_cycles(p, 1, 0, {0: s}, cfg)


@pytest.mark.parametrize("seed", QUAD_SEEDS)
def test_phase_quads_trace_golden_fast(seed):
    """Phase quads: trace == golden, fast == trace; the same SOPs and
    outputs as phase pairs, never more dispatch cycles per launch."""
    p = random_program(seed, max_hw=8, max_channels=6, timesteps=3)
    img = _images(p, 1, seed)
    for E, slots in ((1, 4), (2, 5), (4, 8)):
        on = SIAConfig(pes=4, events_per_cycle=E, phase_pairs=True, phase_quads=True,
                       psum_slots=slots, identity_drain=E == 2)
        assert any(S.quad(s, p, on) for layer in p.layers for s in layer.inputs)
        tr = _check_trace(p, img, on)
        pairs = run(p, img, config=dataclasses.replace(on, phase_quads=False)).launches()
        for f, t in zip(pairs, tr.launches):
            assert t["sops"] == f["sops"]
            assert (t["phases"]["accumulate"] + t["phases"]["dispatch_empty"]
                    <= f["phases"]["accumulate"] + f["phases"]["dispatch_empty"])


def test_hand_computed_phase_quads():
    """The 2x4 map of `test_hand_computed_phase_pairs` on a phase-quad build: its two rows
    are one row pair, so the units are the 2x2 blocks (columns 0-1 and 2-3), costing
    max(1, max over the four words of ceil(n / E)): (3, 1 | 0, 0) and (0, 0 | 0, 2)."""
    p = _stride2_program(3)
    s = np.zeros((1, 3, 2, 4), np.uint8)
    s[0, :, 0, 0] = 1
    s[0, 1, 0, 1] = 1
    s[0, :2, 1, 3] = 1
    for E, want in ((1, 3 + 2), (2, 2 + 1), (4, 1 + 1)):
        cfg = SIAConfig(events_per_cycle=E, phase_pairs=True, phase_quads=True)
        assert S.sets_per_cycle(p.layers[1].inputs[0], p, cfg) == 4
        c = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=cfg)
        assert (c["accumulate"], c["dispatch_empty"]) == (want, 0), E
        # the rest of the launch is as with phase pairs (same rows, same drains)
        pc = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)},
                           config=dataclasses.replace(cfg, phase_quads=False))
        assert {k: v for k, v in c.items() if k not in ("accumulate", "dispatch_empty", "total",
                                                        "aggregate")} == \
            {k: v for k, v in pc.items() if k not in ("accumulate", "dispatch_empty", "total",
                                                      "aggregate")}
    # the descriptor counts row pairs and column pairs; the maps go quad-interleaved
    # (row pair Y, column pair X, word w, then (i, j)); the RTL's formula agrees
    cfg = SIAConfig(phase_pairs=True, phase_quads=True)
    g = regmap._groups(p, 1, 0, cfg, 1)[0][0]
    assert (g["quad"], g["phase"], g["nw"], g["hp"], g["wp"], g["reach"], g["pstride"],
            g["prow_stride"], regmap.row_stride(g)) == (1, 1, 4, 1, 2, 1, 4, 8, 1)
    by_pos = s[0].transpose(1, 2, 0).astype(np.int64) @ (1 << np.arange(3))   # [y, x] words
    assert regmap.pack_inputs(p, 1, 0, {0: s}, cfg, 1) == \
        by_pos.reshape(1, 2, 2, 2).transpose(0, 2, 1, 3).reshape(-1).tolist()
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    for E in (1, 2, 4):
        cfg = SIAConfig(events_per_cycle=E, phase_pairs=True, phase_quads=True)
        assert launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=cfg)["total"] == \
            rtl_cycles.launch_cycles(p, 1, 0, {0: s}, cfg)
    # an odd source height keeps phase pairs; quads need phase pairs
    odd = Program("odd", (1, 3, 4), levels=4, timesteps=1, t_max=1, num_classes=2, layers=[
        dataclasses.replace(p.layers[0], shape=(3, 3, 4)),
        dataclasses.replace(p.layers[1], shape=(2, 2, 2))])
    cfg = SIAConfig(phase_pairs=True, phase_quads=True)
    assert S.phase(odd.layers[1].inputs[0], odd, cfg)
    assert not S.quad(odd.layers[1].inputs[0], odd, cfg)
    assert regmap._groups(odd, 1, 0, cfg, 1)[0][0]["quad"] == 0
    with pytest.raises(SiaError, match="phase_quads needs phase_pairs"):
        SIAConfig(phase_quads=True)


def test_narrow_streams_by_hand():
    """Narrow streams: the 3-channel 2x4 map of `_stride2_program` streams 4 positions
    per beat, so the one output row (it needs both source rows: 8 words) waits for 2
    beats instead of 8; with 70 channels (2 words per position) nothing changes. A packed
    launch's later steps and a two-group layer's second map start on new beats; the
    packet carries the words 4 to a beat, and the RTL's formula agrees."""
    p = _stride2_program(3)
    on = SIAConfig(narrow_stream=True)
    assert S.stream_need(p, 1, SIAConfig(), 1) == [[8]]
    assert S.stream_need(p, 1, on, 1) == [[2]]
    assert S.stream_need(p, 1, on, 3) == [[2], [4], [6]]
    wide = _stride2_program(70)
    assert S.stream_need(wide, 1, on, 1) == S.stream_need(wide, 1, SIAConfig(), 1) == [[16]]
    # two groups of 5 and 3 words per step, k = 4: beats 2 + 1 per step
    groups = [{"npos": 2, "base": 0, "tstride": 8}, {"npos": 2, "base": 5, "tstride": 8}]
    words = np.array([[0, 4, 5, 6, 8], [9, 12, 13, 14, 16]])
    assert regmap.need_beats(groups, words).tolist() == [[0, 1, 2, 3, 3], [4, 4, 5, 6, 6]]
    assert regmap.narrow_pack(groups, list(range(1, 9)), 1) == [
        1 | 2 << 16 | 3 << 32 | 4 << 48, 5, 6 | 7 << 16 | 8 << 32]
    assert regmap.narrow_unpack(groups, regmap.narrow_pack(groups, list(range(1, 17)), 2),
                                2).tolist() == list(range(1, 17))
    s = np.zeros((1, 3, 2, 4), np.uint8)
    s[0, 0] = 1
    a = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=SIAConfig())
    b = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=on)
    assert a["stream_in"] - b["stream_in"] == 6 and a["total"] - b["total"] == 6
    g = regmap._groups(p, 1, 0, on, 1)[0][0]
    assert g["npos"] == 2 and regmap._groups(wide, 1, 0, on, 1)[0][0]["npos"] == 0
    by_pos = s[0].transpose(1, 2, 0).astype(np.int64) @ (1 << np.arange(3))
    words = by_pos.reshape(-1).tolist()
    assert regmap.pack_inputs(p, 1, 0, {0: s}, on, 1) == [
        sum(w << (16 * i) for i, w in enumerate(words[b:b + 4])) for b in (0, 4)]
    assert regmap.tile_info(p, 1, 0, on, 1).spike_beats == 2
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    assert b["total"] == rtl_cycles.launch_cycles(p, 1, 0, {0: s}, on)


def test_phase_pair_interleaving_of_wide_maps():
    """> 64 channels (2 words per position): the words of columns 2X and 2X+1 alternate."""
    rng = np.random.default_rng(0)
    p = _stride2_program(70)
    s = (rng.random((1, 70, 2, 4)) < 0.3).astype(np.uint8)
    plain = regmap.pack_inputs(p, 1, 0, {0: s}, SIAConfig(), 1)        # (y, x, w)
    ph = regmap.pack_inputs(p, 1, 0, {0: s}, SIAConfig(phase_pairs=True), 1)
    assert ph == np.array(plain, dtype=object).reshape(2, 2, 2, 2).transpose(0, 1, 3, 2).reshape(-1).tolist()
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    for E in (1, 2, 4):
        cfg = SIAConfig(events_per_cycle=E, phase_pairs=True)
        assert launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=cfg)["total"] == \
            rtl_cycles.launch_cycles(p, 1, 0, {0: s}, cfg)


@pytest.mark.parametrize("seed", [7, 18, 33])   # seeds with > 8 image and > 64 spike channels
def test_multi_word_positions(seed):
    """> 8 image channels and > 64 spike channels: several spike-buffer words per position."""
    p = random_program(seed, max_hw=4, max_channels=80, max_in_channels=12, max_layers=3,
                       timesteps=2, max_image_weight=3, max_weight=2)
    _check_trace(p, _images(p, 1, seed), SIAConfig())


def test_random_programs_accepted_by_golden_and_legal():
    for seed in range(20):
        p = random_program(seed)
        check_fits(p, SIAConfig(), p.timesteps)
        simulate(p, _images(p, 2, seed))


def test_batched_model_equals_golden_and_per_image_runs():
    p = random_program(7, max_hw=10)
    imgs = _images(p, 5, 1)
    g = simulate(p, imgs, record=True)
    r = run(p, imgs, batch_size=2, keep_logits=True)
    np.testing.assert_array_equal(r.predictions, g.predictions)
    np.testing.assert_array_equal(r.output_v, g.traces[p.layers[-1].name]["v"].reshape(
        p.timesteps, 5, -1).numpy())
    singles = [run(p, imgs[i:i + 1]).image_cycles[0] for i in range(5)]
    np.testing.assert_array_equal(r.image_cycles, singles)
    assert {L.name: L.spikes for L in r.layers if L.kind == "if"} == \
        {k: v for k, v in g.spikes.items() if v or k != p.layers[-1].name}
    assert sum(L.sops.sum() for L in r.layers) == sum(g.sops.values())


def test_trained_digits_network():
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program("digits_cnn_l8")
    x, y = load_split("digits", "test")
    g = simulate(p, x, y)
    r = run(p, x, y)
    np.testing.assert_array_equal(r.predictions, g.predictions)
    assert r.accuracy == g.accuracy and r.accuracy[-1] > 0.95
    _check_trace(p, x[:1], SIAConfig())
    _check_trace(p, x[1:2], SIAConfig(pes=16, events_per_cycle=1))


def _image_dense_program(pixels):
    """image 1x2x3 -> conv1x1 IF (1 ch) -> dense integrator (2 classes), T=2."""
    l0 = Layer("c", "if", (1, 2, 3), bias=np.array([0]), v_init=np.array([1]),
               threshold=np.array([3]), v_bits=1, acc_bits=1,
               inputs=[Synapse(-1, "conv", np.array([[[[1]]]]), 8)])
    l1 = Layer("fc", "integrator", (2, 1, 1), bias=np.zeros(2, np.int64), v_init=np.zeros(2, np.int64),
               v_bits=1, acc_bits=1, inputs=[Synapse(0, "dense", np.ones((2, 6), np.int64), 8)])
    p = _finish(Program("hand", (1, 2, 3), levels=4, timesteps=2, t_max=2, layers=[l0, l1],
                        num_classes=2))
    return p, torch.tensor(pixels, dtype=torch.uint8).view(1, 1, 2, 3)


def test_hand_computed_image_and_dense_launches():
    p, img = _image_dense_program([[0, 255, 3], [1, 7, 0]])
    C_L, C_S, C_R = timing.C_LAUNCH, timing.C_STEP, timing.C_ROW
    hdr = regmap.header_beats(1)   # 2 + 4
    # image layer: words = popcounts 0,8,2 | 1,3,0 -> E=2 costs 1,4,1 | 1,2,1 = 10
    c0 = launch_cycles(p, 0, 0, {-1: img[0]})
    # timeline: STEP (cycle 0); row 0 needs the image's first row (3 beats): waits 2,
    # ROW_PRE (3) + 6 dispatch cycles (4-9), handed over C_HAND = 1 later, its drain
    # (T*W = 6) 11-16; row 1's conditions hold in row 0's last dispatch cycle 9 (its 6
    # beats are in), so it is prefetched (no ROW_PRE): dispatch (1 + 2 + 1) 10-13,
    # handed over at 14, drained 17-22 after row 0: cycles 14-22 are not hidden behind
    # the dispatcher: "aggregate" = 9 (without the prefetch: ROW_PRE 10, aggregate 8,
    # the same total: the launch is drain-bound)
    assert timing.C_ROW == 1 and timing.C_HAND == 1
    want0 = {"header_load": hdr, "weight_load": 72, "param_load": 72, "stream_in": 2,
             "accumulate": 4 + 1 + 1 + 2, "dispatch_empty": 2, "aggregate": 9,
             "stall": C_L + C_S + 1 * C_R, "stream_out": timing.C_OUT_TAIL}   # streamed
    assert {k: v for k, v in c0.items() if k != "total"} == want0
    assert c0["total"] == sum(want0.values())
    # dense layer: 6 one-channel words per step (each costs 1), 6 rows of 64 9-tap words
    spikes = trace(p, img[0]).spikes["c"]
    c1 = launch_cycles(p, 1, 0, {0: torch.from_numpy(spikes)})
    assert c1["header_load"] == hdr and c1["weight_load"] == 6 * 64 * 72 // 64
    assert c1["accumulate"] + c1["dispatch_empty"] == 2 * 6
    # the t=0 handover + drain (2 cycles) hide behind t=1's STEP + row; only the last
    # ones show
    assert c1["stall"] == C_L + 2 * (C_S + C_R) and c1["aggregate"] == timing.C_HAND + 1
    # t=0's row waits for its 6 input beats (after the STEP cycle: 5); t=1's 6 beats
    # arrive while t=0 computes (>= 6 cycles)
    assert c1["stream_in"] == 6 - C_S and c1["stream_out"] == 24
    # the whole inference is the sum of its launches
    assert run(p, img).image_cycles[0] == c0["total"] + c1["total"]


def test_hand_computed_pooled_strided_conv_and_timing_constants(monkeypatch):
    """pool 2 then conv 3x3 stride 2 pad 1: r_end(0) = min(2, 0*2+3-1) = 2 -> all 16
    source positions scanned, one 2-channel word each; the two words of each (pooled
    position, pool row) run are one issue unit (word pair): 8 units."""
    l0 = Layer("a", "if", (2, 4, 4), bias=np.zeros(2, np.int64), v_init=np.zeros(2, np.int64),
               threshold=np.array([1, 1]), v_bits=1, acc_bits=1,
               inputs=[Synapse(-1, "conv", np.ones((2, 1, 1, 1), np.int64), 8)])
    l1 = Layer("b", "integrator", (2, 1, 1), bias=np.zeros(2, np.int64),
               v_init=np.zeros(2, np.int64), v_bits=1, acc_bits=1,
               inputs=[Synapse(0, "conv", np.ones((2, 2, 3, 3), np.int64), 4, stride=2, padding=1,
                               pool=2)])
    p = _finish(Program("hand2", (1, 4, 4), levels=4, timesteps=1, t_max=1, layers=[l0, l1],
                        num_classes=2))
    s = np.zeros((1, 2, 4, 4), np.uint8)
    s[0, 0, 0, :] = 1            # channel 0: row 0
    s[0, 1, 0, 0] = s[0, 1, 1, 1] = 1
    # words n: (0,0)=2, (0,1..3)=1, (1,1)=1, 11 empty; pairs (dx = 0, 1) of each
    # (pooled column, dy): (0,0)+(0,1) = 3, (1,0)+(1,1) = 1, (0,2)+(0,3) = 2, 5 empty
    for E, acc in ((1, 3 + 1 + 2), (2, 2 + 1 + 1)):
        c = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=SIAConfig(events_per_cycle=E))
        assert (c["accumulate"], c["dispatch_empty"]) == (acc, 5)
        assert c["stream_in"] == 16 - timing.C_STEP   # the one row needs all 16 beats
        assert c["weight_load"] == 2 * 64 * 9 * 4 // 64   # 4-bit weights: narrow stream
        assert c["stall"] == timing.C_LAUNCH + timing.C_STEP + timing.C_ROW
    before = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)})["total"]
    monkeypatch.setattr(timing, "C_ROW", timing.C_ROW + 5)   # the model follows the RTL's constants
    monkeypatch.setattr(timing, "C_LAUNCH", timing.C_LAUNCH + 1)
    assert launch_cycles(p, 1, 0, {0: torch.from_numpy(s)})["total"] == before + 6


def test_hand_computed_word_pairs():
    """130 channels = 3 words per position (0-63, 64-127, 128-129): the dispatcher
    issues the run of a position's words in pairs, (w0, w1) then w2 alone, each at
    max(1, ceil(n / E)) cycles; an empty pair costs one cycle."""
    l0 = Layer("a", "if", (130, 1, 2), bias=np.zeros(130, np.int64),
               v_init=np.zeros(130, np.int64), threshold=np.ones(130, np.int64), v_bits=1,
               acc_bits=1, inputs=[Synapse(-1, "conv", np.ones((130, 1, 1, 1), np.int64), 8)])
    l1 = Layer("b", "integrator", (2, 1, 2), bias=np.zeros(2, np.int64),
               v_init=np.zeros(2, np.int64), v_bits=1, acc_bits=1,
               inputs=[Synapse(0, "conv", np.ones((2, 130, 1, 1), np.int64), 4)])
    p = _finish(Program("pairs", (1, 1, 2), levels=4, timesteps=1, t_max=1, layers=[l0, l1],
                        num_classes=2))
    s = np.zeros((1, 130, 1, 2), np.uint8)
    s[0, [0, 1, 2, 3, 4, 64, 128, 129], 0, 0] = 1   # (0,0): w0 5, w1 1, w2 2; (0,1) empty
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    for E, acc in ((1, 6 + 2), (2, 3 + 1), (4, 2 + 1)):
        c = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=SIAConfig(events_per_cycle=E))
        assert (c["accumulate"], c["dispatch_empty"]) == (acc, 2)
        assert c["stream_in"] == 2 * 3 - timing.C_STEP   # its one row needs all 6 beats
        r = rtl_cycles.launch_cycles(p, 1, 0, {0: s}, SIAConfig(events_per_cycle=E), detail=True)
        assert r["dispatch"] == acc + 2                 # the RTL's formula agrees


def test_hand_computed_decimated_shortcut_scan():
    """A 1x1 stride-2 conv (ResNet downsampling shortcut) scans only the even rows and
    columns of its 5x5 source, as a stride-1 group over the 3x3 view, and only the 9
    view positions stream in. Spikes at odd positions reach no output and cost nothing."""
    l0 = Layer("a", "if", (2, 5, 5), bias=np.zeros(2, np.int64), v_init=np.zeros(2, np.int64),
               threshold=np.array([1, 1]), v_bits=1, acc_bits=1,
               inputs=[Synapse(-1, "conv", np.ones((2, 1, 1, 1), np.int64), 8)])
    l1 = Layer("b", "if", (3, 3, 3), bias=np.zeros(3, np.int64), v_init=np.zeros(3, np.int64),
               threshold=np.array([1, 1, 1]), v_bits=1, acc_bits=1,
               inputs=[Synapse(0, "conv", np.ones((3, 2, 1, 1), np.int64), 4, stride=2)])
    p = _finish(Program("dec", (1, 5, 5), levels=4, timesteps=1, t_max=1, layers=[l0, l1],
                        num_classes=3))
    assert regmap.decimation(l1.inputs[0]) == 2
    assert regmap.decimation(Synapse(0, "conv", np.ones((3, 2, 1, 1), np.int64), 4, stride=2,
                                     padding=1)) == 1
    s = np.zeros((1, 2, 5, 5), np.uint8)
    s[0, :, 0, 0] = 1            # (0,0): both channels -> 2 events
    s[0, 0, 4, 2] = 1            # (4,2) -> view (2,1): 1 event
    s[0, :, 1, :] = 1            # odd row: never scanned
    s[0, 1, 2, 3] = 1            # odd column: never scanned
    C_S, C_R = timing.C_STEP, timing.C_ROW
    for E, acc in ((1, 2 + 1), (2, 1 + 1)):
        c = launch_cycles(p, 1, 0, {0: torch.from_numpy(s)}, config=SIAConfig(events_per_cycle=E))
        assert (c["accumulate"], c["dispatch_empty"]) == (acc, 9 - 2)
        # output row oy scans view row oy (source row 2*oy): it needs view rows
        # <= oy, i.e. 3, 6 and all 9 beats (3 per view row); row 0 costs
        # ceil(2/E) + 2 empty words, rows 1 and 2 three words each
        e0 = 3 + C_R + (-(-2 // E) + 2)
        e1 = max(e0, 6) + C_R + 3
        assert c["stream_in"] == (3 - C_S) + max(0, 6 - e0) + max(0, 9 - e1)
        assert S.stream_in_beats(p, 1, SIAConfig(events_per_cycle=E), 1) == 9
    g = regmap._groups(p, 1, 0, SIAConfig(), 1)[0][0]
    assert (g["stride"], g["hp"], g["wp"], g["reach"]) == (1, 3, 3, 1)
    assert (g["prow_stride"], g["pstride"]) == (3, 1)     # view rows / positions of 1 word
    assert regmap.pack_inputs(p, 1, 0, {0: s}, SIAConfig(), 1) == \
        [int(v) for v in s[0, 0, ::2, ::2].reshape(-1) + 2 * s[0, 1, ::2, ::2].reshape(-1)]
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    ins = {0: s}
    assert launch_cycles(p, 1, 0, {0: torch.from_numpy(s)})["total"] == \
        rtl_cycles.launch_cycles(p, 1, 0, ins, SIAConfig())


def test_static_beats_match_regmap_tile_packets():
    for seed in range(30):
        p = random_program(seed)
        for cfg in (SIAConfig(), SIAConfig(pes=4)):
            for i, layer in enumerate(p.layers):
                for k in range(S.tiles(layer, cfg)):
                    ti = regmap.tile_info(p, i, k, cfg)
                    ph = S.static_phases(p, i, cfg, p.timesteps, k)
                    mem = S.memory_static(p, i, cfg, p.timesteps, k)
                    assert (ph["header_load"], ph["weight_load"], ph["param_load"],
                            S.stream_in_beats(p, i, cfg, p.timesteps, k),
                            mem["stream_out_beats"]) == (ti.header_beats, ti.weight_beats,
                                                         ti.neuron_beats, ti.spike_beats,
                                                         ti.out_beats)
                    # if-layers stream their output during compute (only a tail is left)
                    assert ph["stream_out"] == (timing.C_OUT_TAIL if layer.kind == "if"
                                                else ti.out_beats)


def test_plane_issue_of_image_words_at_four_events():
    """E = 4: one cycle's image events share a bit plane, so an image word costs
    max(1, sum_b ceil(n_b / 4)); E = 2 keeps max(1, ceil(popcount / 2))."""
    p, img = _image_dense_program([[0, 255, 3], [1, 7, 0]])
    c4 = launch_cycles(p, 0, 0, {-1: img[0]}, config=SIAConfig(events_per_cycle=4))
    # one pixel per word: every set bit is its own plane -> 8 + 2 | 1 + 3 cycles
    assert (c4["accumulate"], c4["dispatch_empty"]) == (8 + 2 + 1 + 3, 2)
    c2 = launch_cycles(p, 0, 0, {-1: img[0]}, config=SIAConfig(events_per_cycle=2))
    assert (c2["accumulate"], c2["dispatch_empty"]) == (4 + 1 + 1 + 2, 2)
    # three pixels 3, 1, 2 in one word: planes b0 = {3, 1}, b1 = {3, 2} -> 2 cycles at
    # E = 4 (a plain popcount of 4 would take 1); five pixels 255: 8 planes of 5 -> 16
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    words = np.array([3 | 1 << 8 | 2 << 16, 0, 0xFF_FF_FF_FF_FF], np.uint64)
    assert rtl_cycles.word_costs(words, 4, image=True).tolist() == [2, 1, 16]
    assert rtl_cycles.word_costs(words, 4, image=False).tolist() == [1, 1, 10]
    assert rtl_cycles.word_costs(words, 2, image=True).tolist() == [2, 1, 20]


def test_launch_cycles_match_the_rtl_reference_formula():
    """The model's launch cycles == the RTL's formula (which the co-simulation holds the
    RTL to) on random programs and builds; rows are prefetched in some of them."""
    prefetched = 0
    for seed in range(12):
        p = random_program(seed, max_hw=8)
        prefetched += check_launch_cycles(p, seed, (
                    SIAConfig(), SIAConfig(pes=4, events_per_cycle=1),
                    SIAConfig(pes=8, events_per_cycle=4),
                    SIAConfig(pes=4, events_per_cycle=2, phase_pairs=True),
                    SIAConfig(pes=4, events_per_cycle=2, phase_pairs=True, identity_drain=True),
                    SIAConfig(pes=8, events_per_cycle=1, identity_drain=True),
                    SIAConfig(pes=4, events_per_cycle=2, row_prefetch=False),
                    SIAConfig(pes=4, events_per_cycle=2, phase_pairs=True, identity_drain=True,
                              psum_slots=8),
                    SIAConfig(pes=4, events_per_cycle=2, pool_hold=True),
                    SIAConfig(pes=8, events_per_cycle=1, pool_hold=True, psum_slots=8)))
    assert prefetched > 0


def check_launch_cycles(p: Program, seed: int, configs) -> int:
    """Every launch's model cycles == the RTL's formula on one image of `_images`, on each
    build; returns the rows the formula prefetched."""
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    img = _images(p, 1, seed)
    g = simulate(p, img, record=True)
    ins = {-1: img[0].numpy()}
    ins.update({i: g.traces[layer.name]["spikes"][:, 0].numpy()
                .astype(np.int8 if layer.signed else np.uint8)
                for i, layer in enumerate(p.layers) if layer.kind == "if"})
    prefetched = 0
    for cfg in configs:
        for i, layer in enumerate(p.layers):
            for k in range(S.tiles(layer, cfg)):
                ours = launch_cycles(p, i, k, {s.source: torch.from_numpy(ins[s.source])
                                               for s in layer.inputs}, config=cfg)
                ref = rtl_cycles.launch_cycles(p, i, k, ins, cfg, detail=True)
                assert ours["total"] == ref["total"], (seed, i, k)
                prefetched += ref["rows_prefetched"]
    return prefetched


def test_resident_weight_batches():
    """keep launches drop exactly the weight + neuron-param beats (model == RTL formula);
    run(weight_batch=B) charges them once per B images and changes nothing else."""
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    p = random_program(4, max_hw=8)
    imgs = _images(p, 4, 2)
    g = simulate(p, imgs[:1], record=True)
    ins = {-1: imgs[0].numpy()}
    ins.update({i: g.traces[layer.name]["spikes"][:, 0].numpy()
                for i, layer in enumerate(p.layers) if layer.kind == "if"})
    cfg = SIAConfig()
    loads = 0
    for i, layer in enumerate(p.layers):
        for k in range(S.tiles(layer, cfg)):
            t_in = {s.source: torch.from_numpy(ins[s.source]) for s in layer.inputs}
            full = launch_cycles(p, i, k, t_in, config=cfg)
            kept = launch_cycles(p, i, k, t_in, config=cfg, keep=True)
            assert kept["weight_load"] == kept["param_load"] == 0
            assert full["total"] - kept["total"] == full["weight_load"] + full["param_load"] > 0
            assert kept["total"] == rtl_cycles.launch_cycles(p, i, k, ins, cfg, keep=True)
            loads += full["weight_load"] + full["param_load"]
    r1, r4 = run(p, imgs, keep_scans=True), run(p, imgs, weight_batch=4)
    np.testing.assert_allclose(r1.image_cycles - r4.image_cycles, loads * 3 / 4)
    np.testing.assert_array_equal(r1.predictions, r4.predictions)
    s4 = report.summarize(r4)
    assert s4["weight_batch"] == 4 and s4["batch_latency_us"] == pytest.approx(4 * s4["latency_us"])
    row = dse.point(p, r1, cfg, 4)
    assert row["latency_cycles"] == pytest.approx(s4["latency_cycles"]["mean"])
    with pytest.raises(SiaError, match="weight_batch"):
        run(p, imgs, weight_batch=0)


def _conv_program(k=3, stride=1, cin=1, hw=6, pad=0):
    o = (hw + 2 * pad - k) // stride + 1
    l0 = Layer("c", "if", (1, o, o), bias=np.array([0]), v_init=np.array([0]), threshold=np.array([9]),
               v_bits=1, acc_bits=1, inputs=[Synapse(-1, "conv", np.ones((1, cin, k, k), np.int64), 8,
                                                     stride=stride, padding=pad)])
    l1 = Layer("fc", "integrator", (2, 1, 1), bias=np.zeros(2, np.int64), v_init=np.zeros(2, np.int64),
               v_bits=1, acc_bits=1, inputs=[Synapse(0, "dense", np.ones((2, o * o), np.int64), 8)])
    return _finish(Program("fit", (cin, hw, hw), levels=4, timesteps=4, t_max=32, layers=[l0, l1],
                           num_classes=2))


@pytest.mark.parametrize("prog, cfg, T, msg", [
    (lambda: _conv_program(k=5), SIAConfig(), 4, "kernel 5x5"),
    (lambda: _conv_program(stride=3), SIAConfig(), 4, "stride 3"),
    (lambda: _conv_program(cin=3), SIAConfig(max_channels_in=2), 4, "input channels need 3"),
    (lambda: _conv_program(), SIAConfig(max_width=4, max_height=4), 4, "exceeds"),
    (lambda: _conv_program(), SIAConfig(), 17, "T=17"),
    (lambda: _conv_program(), SIAConfig(acc_bits=8), 4, "acc_bits=8"),
    # an image if-layer runs T steps one row at a time: one row of membrane words
    (lambda: _conv_program(hw=12, k=1), SIAConfig(membrane_positions=8), 4,
     "12x12 membranes need 12 words per bank > membrane_positions=8"),
    (lambda: _conv_program(hw=12, k=1), SIAConfig(max_channels_in=100), 4, "dense input"),
])
def test_programs_that_do_not_fit_are_refused(prog, cfg, T, msg):
    with pytest.raises(SiaError, match=msg) as e:
        check_fits(prog(), cfg, T)
    assert "\n" not in str(e.value)


def test_membrane_positions_of_spiking_layers():
    """Spiking-input layers need one membrane word per output position: the 32x32
    ResNet-18 blocks do not fit the default 256-word banks, its config's 1024 do."""
    from sia.program.resolve import resolve_program
    p = resolve_program("resnet18_w025_cifar10")
    with pytest.raises(SiaError, match="32x32 membranes need 1024 words per bank > membrane_positions=256"):
        check_fits(p, SIAConfig(weight_bits=10), 8)
    check_fits(p, SIAConfig(weight_bits=10, membrane_positions=1024), 8)
    check_fits(_conv_program(hw=12, k=1), SIAConfig(membrane_positions=12), 4)


@pytest.mark.parametrize("launch_images", [1, 0])   # 0: packed launches
def test_dse_matches_direct_runs_and_writes(tmp_path, launch_images):
    p = random_program(11)
    imgs = _images(p, 3, 0)
    rows = dse.sweep(p, imgs, pes=(4, 64), events=(1, 2), timesteps=(2, 4), weight_bits=(8, 4),
                     batches=(1, 3), launch_images=launch_images)
    assert len(rows) == 32
    for q in rows:
        if not q["fits"]:
            assert q["weight_bits"] == 4
            continue
        cfg = SIAConfig(pes=q["pes"], events_per_cycle=q["events_per_cycle"])
        s = report.summarize(run(p, imgs, T=q["timesteps"], config=cfg,
                                 weight_batch=q["weight_batch"], launch_images=launch_images))
        assert q["latency_cycles"] == pytest.approx(s["latency_cycles"]["mean"])
        assert q["pe_utilisation"] == pytest.approx(s["pe_utilisation"])
        assert q["gops_per_pe_ceiling"] == pytest.approx(s["gops_per_pe_ceiling"])
    if launch_images == 0:    # the program's spiking layers are packed
        assert max(L.per_launch for L in run(p, imgs, T=2, weight_batch=3,
                                             launch_images=0).layers) == 3
    js, png = dse.write(rows, tmp_path)
    assert json.loads(js.read_text()) == rows and png.stat().st_size > 0


def test_dse_sweeps_build_options():
    """dse.sweep over phase pairs and identity in the drain == run() on each build."""
    p = random_program(4)            # holds a stride-2 3x3 conv and an identity group
    assert any(regmap.drain_group(layer, SIAConfig(identity_drain=True)) is not None
               for layer in p.layers)
    imgs = _images(p, 2, 0)
    rows = dse.sweep(p, imgs, pes=(4,), events=(2,), timesteps=(2,), weight_bits=(8,),
                     batches=(2,), phase_pairs=(False, True), identity_drain=(False, True))
    assert [(q["phase_pairs"], q["identity_drain"]) for q in rows] == [
        (False, False), (False, True), (True, False), (True, True)]
    for q in rows:
        cfg = SIAConfig(pes=4, phase_pairs=q["phase_pairs"], identity_drain=q["identity_drain"])
        s = report.summarize(run(p, imgs, T=2, config=cfg, weight_batch=2))
        assert q["latency_cycles"] == pytest.approx(s["latency_cycles"]["mean"])
        assert q["gops_per_pe_ceiling"] == pytest.approx(s["gops_per_pe_ceiling"])
    assert rows[2]["latency_cycles"] < rows[0]["latency_cycles"]
    assert rows[1]["latency_cycles"] < rows[0]["latency_cycles"]


def test_dse_sweeps_quads_and_narrow_streams():
    """dse.sweep over phase quads and narrow streams == run() on each build; quads are
    only swept with phase pairs; each option saves cycles on this program (a stride-2
    conv over an even 6-channel map)."""
    p = random_program(11, max_hw=8, max_channels=6, timesteps=3)
    imgs = _images(p, 2, 0)
    rows = dse.sweep(p, imgs, pes=(4,), events=(2,), timesteps=(2,), weight_bits=(8,),
                     batches=(2,), phase_pairs=(False, True), phase_quads=(False, True),
                     narrow_stream=(False, True))
    assert [(q["phase_pairs"], q["phase_quads"], q["narrow_stream"]) for q in rows] == [
        (False, False, False), (False, False, True), (True, False, False), (True, False, True),
        (True, True, False), (True, True, True)]
    for q in rows:
        cfg = SIAConfig(pes=4, phase_pairs=q["phase_pairs"], phase_quads=q["phase_quads"],
                        narrow_stream=q["narrow_stream"])
        s = report.summarize(run(p, imgs, T=2, config=cfg, weight_batch=2))
        assert q["latency_cycles"] == pytest.approx(s["latency_cycles"]["mean"])
        assert q["gops_per_pe_ceiling"] == pytest.approx(s["gops_per_pe_ceiling"])
        assert q["ramb36"] == design_ram36(cfg)["total"]   # the build's block RAM
    c = [q["latency_cycles"] for q in rows]
    assert c[4] < c[2] and c[1] < c[0] and c[5] < c[4]
    # 4 PEs x 512-row weights: pairs add the 6-tap part's third RAMB18 per PE, quads
    # (shared ports) the same; narrow streams split the spike buffer into four banks
    b = [q["ramb36"] for q in rows]
    assert b[2] == b[0] + 4 * 0.5 and b[4] == b[2] and b[1] >= b[0]
    assert dse.table_rows(rows)[0][-1] == f"{b[0]:g}"


def test_dse_sweeps_psum_slots(tmp_path):
    """dse.sweep over psum row slots == run() on each build; more slots never cost
    cycles, and here the fifth slot saves some (a row that drains slower than the next
    ones dispatch)."""
    p = random_program(7)
    imgs = _images(p, 2, 0)
    rows = dse.sweep(p, imgs, pes=(4,), events=(2,), timesteps=(2,), weight_bits=(8,),
                     batches=(2,), psum_slots=range(4, 9))
    assert [q["psum_slots"] for q in rows] == [4, 5, 6, 7, 8]
    for q in rows:
        s = report.summarize(run(p, imgs, T=2, config=SIAConfig(pes=4, psum_slots=q["psum_slots"]),
                                 weight_batch=2))
        assert q["latency_cycles"] == pytest.approx(s["latency_cycles"]["mean"])
    lat = [q["latency_cycles"] for q in rows]
    assert lat == sorted(lat, reverse=True) and lat[1] < lat[0]
    js, png = dse.write(rows, tmp_path)     # one P: plotted against the slots
    assert json.loads(js.read_text()) == rows and png.stat().st_size > 0
    with pytest.raises(SiaError, match="psum_slots must be in 4..8"):
        SIAConfig(psum_slots=9)


def test_build_name_lists_the_options_that_differ():
    assert report.build_name(SIAConfig().to_json()) == "P=64 E=2"
    cfg = SIAConfig(pes=16, phase_pairs=True, identity_drain=True, row_prefetch=False,
                    psum_slots=8)
    assert report.build_name(cfg.to_json()) == \
        "P=16 E=2, phase pairs, identity drain, no row prefetch, 8 psum slots"
    assert report.build_name(SIAConfig(pes=16, signed_count_bits=4).to_json()) == \
        "P=16 E=2, signed neurons (K=4)"


def test_report_fields_and_cli(tmp_path, capsys):
    from sia.cli import main
    p = random_program(3)
    s = report.summarize(run(p, _images(p, 2, 0)))
    assert s["gops_per_dsp"] is None and "n/a" in s["gops_per_dsp_note"]
    assert s["dsp"]["count"] == 0 and "estimate" in s["dsp"]["source"]
    assert "estimate" in s["energy"]["label"] and s["energy"]["uj_per_image"]["total"] > 0
    (tmp_path / "synth_report.json").write_text(json.dumps({"resources": {"DSP48E1": 4}}))
    dsp, src = report.synth_dsp(tmp_path / "synth_report.json")
    s4 = report.summarize(run(p, _images(p, 2, 0)), dsp=dsp, dsp_source=src)
    assert s4["gops_per_dsp"] == pytest.approx(s4["gops_acc"] / 4) and "synthesis" in s4["dsp"]["source"]
    assert sum(s["phases"].values()) == pytest.approx(s["latency_cycles"]["mean"])
    assert sum(x["cycles"] for x in s["layers"]) == pytest.approx(s["latency_cycles"]["mean"])
    loops = sum(x["compute_cycles"] for x in s["layers"] if not x["image_layer"])
    assert sum(s["cycles_per_timestep"]) == pytest.approx(loops)
    def sia(*args):
        with pytest.raises(SystemExit) as e:
            main(list(args))
        assert e.value.code == 0

    sia("simulate", "digits_cnn_l8", "--images", "20", "--out", str(tmp_path), "--batch", "8")
    out = json.loads((tmp_path / "sia_model.json").read_text())
    assert out["images"] == 20 and (tmp_path / "sia_model_layers.png").stat().st_size > 0
    assert out["weight_batch"] == 8
    sia("dse", "digits_cnn_l8", "--images", "4", "--T", "4,8", "--pes", "32,64",
        "--out", str(tmp_path))
    assert (tmp_path / "sia_dse.png").is_file()
    assert "images/s" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:   # a program that does not fit: one line, exit 2
        main(["simulate", "digits_cnn_l8", "--T", "17", "--images", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "T=17" in err[0]


def test_input_streams_in_while_computing():
    """Row oy of timestep t waits only for the input beats of the source rows it scans
    (`regmap.row_need`): the exposed stream-in is at least the first row's need (less
    the STEP cycle), never more than all beats, and strictly less over a real
    network; the needs grow row by row and step by step."""
    from sia.program.resolve import resolve_program
    p = resolve_program("digits_cnn_l8")
    imgs = _images(p, 2, 0)
    r = run(p, imgs)
    saved = 0
    for L in r.layers:
        for k in range(L.tiles):
            beats = S.stream_in_beats(p, L.index, SIAConfig(), p.timesteps, k)
            need = np.array(S.stream_need(p, L.index, SIAConfig(), p.timesteps, k))
            wait = L.launch_phases(k, r.images)["stream_in"]
            assert need[0, 0] - timing.C_STEP <= wait <= beats and need.max() <= beats
            assert (np.diff(need.reshape(-1)) >= 0).all()
            saved += beats - wait
    assert saved > 0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(0, 40),
       st.integers(0, 2 ** 31 - 1), st.booleans(), st.sampled_from([4, 8]))
def test_overlap_recurrence_equals_cycle_stepped_engines(steps, rows, wdrain, need_step, seed,
                                                         prefetch, slots):
    """schedule.overlap (closed form, vectorised) == trace._timeline (the two engines
    stepped one cycle at a time) for random row dispatch costs, drain lengths and
    input arrival: span, input waits and prefetched rows (which do happen)."""
    from sia.hw.model.trace import _timeline
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 12, size=(steps, rows, 3))          # 3 images
    need = np.cumsum(rng.integers(0, need_step + 1, size=(steps, rows)), axis=None)
    need = need.reshape(steps, rows).tolist()               # beats row (t, oy) waits for
    o = S.overlap(need, torch.from_numpy(d), wdrain, prefetch, slots)
    for b in range(3):
        span, waits, pre = _timeline(need, d[:, :, b].tolist(), wdrain, prefetch, slots)
        assert prefetch or pre == 0
        assert (int(o["span"][b]), int(o["wait"][b]), int(o["prefetched"][b])) == (span, waits, pre)
        assert int(o["per_t"][:, b].sum()) == span - waits


@pytest.mark.parametrize("seed", [1, 4])
def test_packed_launches_model_equals_formula(seed):
    """Packed launches (k images of a weight batch per launch): the model's launch
    count equals the RTL formula's for the same packet, and run() shares each packed
    launch's cycles among its images: the batch's cycles are the launches' sum."""
    from sia.hw.model.fast import launch_groups
    rtl_cycles = pytest.importorskip("sia.hw.rtl.cycles")
    from sia.hw.rtl.testprog import random_program as rtl_program
    p = rtl_program(seed, chans=(8, 12))
    cfg = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128, max_timesteps=8)
    imgs = _images(p, 5, seed)
    g = simulate(p, imgs, record=True)
    ins = [{-1: imgs[b]} for b in range(5)]
    for layer in p.layers:
        if layer.kind == "if":
            for b in range(5):
                ins[b][p.layers.index(layer)] = g.traces[layer.name]["spikes"][:, b]
    total, packed = 0, False
    for i, layer in enumerate(p.layers):
        k = regmap.launch_images(p, i, cfg, limit=3)
        packed |= k > 1
        for tile in range(regmap.num_tiles(p, i, cfg)):
            for j, (b0, m) in enumerate(launch_groups(5, 5, k)):
                x = ins[b0:b0 + m] if k > 1 else ins[b0]
                c = launch_cycles(p, i, tile, x, config=cfg, keep=j > 0)
                assert c["total"] == rtl_cycles.launch_cycles(p, i, tile, x, cfg, keep=j > 0)
                total += c["total"]
    assert packed
    r = run(p, imgs, config=cfg, weight_batch=5, launch_images=3, batch_size=2)
    assert r.image_cycles.sum() == pytest.approx(total)
    assert {L.name: L.per_launch for L in r.layers} == {
        layer.name: regmap.launch_images(p, i, cfg, limit=3) for i, layer in enumerate(p.layers)}
    unpacked = run(p, imgs, config=cfg, weight_batch=5)
    assert r.image_cycles.sum() < unpacked.image_cycles.sum()
    np.testing.assert_array_equal(r.predictions, unpacked.predictions)
    with pytest.raises(SiaError, match="launch_images"):
        run(p, imgs, config=cfg, launch_images=-1)


def test_identity_drain_benchmark_removes_only_identity_dispatch():
    """benchmarks/identity_drain.py: layers without identity groups keep their cycles,
    layers with them lose exactly those groups' dispatch (and no SOP), the JSON agrees
    with the two runs, and a program without identity groups is refused."""
    bench = load_benchmark("identity_drain")
    seeds = [s for s in range(40) if any(g.op == "identity" for layer in
                                         random_program(s).layers for g in layer.inputs)][:3]
    assert seeds
    cfg = SIAConfig(pes=4, events_per_cycle=2)
    saved = []
    for seed in seeds:
        p = _finish(random_program(seed))
        x = _images(p, 3, seed).numpy()
        res = bench.compare(p, x, cfg, weight_batch=1)
        off = run(p, x, config=cfg, launch_images=0)
        on = run(p, x, config=dataclasses.replace(cfg, identity_drain=True), launch_images=0)
        assert res["cycles_per_image_on"] == pytest.approx(float(np.mean(on.image_cycles)))
        saved.append(res["cycles_per_image_off"] - res["cycles_per_image_on"])
        assert np.array_equal(off.image_sops, on.image_sops)
        for i, (a, b) in enumerate(zip(off.layers, on.layers)):
            if regmap.drain_group(p.layers[i], on.config) is None:
                assert a.phases(3) == b.phases(3)
            assert b.accumulate.sum() <= a.accumulate.sum()
        assert {r["layer"] for r in res["layers"]} == {
            layer.name for layer in p.layers if any(g.op == "identity" for g in layer.inputs)}
    assert max(saved) > 0
    no_id = next(s for s in range(40) if not any(g.op == "identity" for layer in
                                                 random_program(s).layers for g in layer.inputs))
    p = _finish(random_program(no_id))
    with pytest.raises(SiaError, match="no identity groups"):
        bench.compare(p, _images(p, 1, 0).numpy(), cfg, weight_batch=1)


def test_cycles_floor_is_a_floor_exact_where_nothing_rounds():
    """report.cycles_floor (and benchmarks/dispatch_bound.py over it): per layer the floor
    never exceeds the model's cycles and the ceilings never fall under the model; at
    E = 1 without phase pairs a unit costs exactly its events, so the dispatcher's floor
    equals the model's accumulate cycles (every group counted once, k = 1); the gap
    breakdown sums to model - floor; identity shortcuts in the drain only lower the floor."""
    b = load_benchmark("dispatch_bound")
    cfgs = [SIAConfig(pes=4, events_per_cycle=1), SIAConfig(pes=4, events_per_cycle=2),
            SIAConfig(pes=4, events_per_cycle=4, phase_pairs=True),
            SIAConfig(pes=4, events_per_cycle=2, phase_pairs=True, phase_quads=True)]
    lowered = []
    for seed in range(5):   # seeds 1 and 4 have identity groups
        p = _finish(random_program(seed))
        x = _images(p, 2, seed).numpy()
        r = run(p, x, config=cfgs[0], launch_images=0)
        for L in r.layers:
            assert L.issue_floor.sum() == L.accumulate.sum(), (seed, L.name)
        for cfg in cfgs:
            summ = report.summarize(run(p, x, config=cfg, launch_images=0))
            for layer in summ["layers"]:
                assert 0 < layer["cycles_floor"] <= layer["cycles"]
                assert layer["utilisation_ceiling"] >= layer["pe_utilisation"]
            assert summ["gops_per_pe_ceiling"] >= summ["gops_per_pe"]
            res = b.bound(p, x, cfg, weight_batch=1)
            assert res["cycles_per_image_floor"] == pytest.approx(summ["cycles_floor_per_image"])
            assert sum(res["gap_per_image"].values()) == pytest.approx(
                res["cycles_per_image_model"] - res["cycles_per_image_floor"])
            no_id = b.bound(p, x, dataclasses.replace(cfg, identity_drain=True), weight_batch=1)
            assert all(a["cycles_floor"] >= c["cycles_floor"]
                       for a, c in zip(res["layers"], no_id["layers"]))
            lowered.append(no_id["cycles_per_image_floor"] < res["cycles_per_image_floor"])
    assert any(lowered)


def test_dispatch_options_projection_pool_carry_by_hand_and_never_slower():
    """benchmarks/dispatch_options_estimate.py: a pooled position costs max(its units,
    ceil(its events / E)) with --pool-carry (hand-counted on a 2x2 pool over a 4x4
    source), groups without a pool keep their dispatch, --skip-empty makes empty units
    free, and no option (nor all of them) ever adds cycles to a random program."""
    est = load_benchmark("dispatch_options_estimate")
    syn = Synapse(source=0, op="conv", weight=np.zeros((1, 1, 3, 3), np.int64), weight_bits=4,
                  padding=1, pool=2)
    words = torch.zeros(1, 1, 1, 4, 4, dtype=torch.int64)
    # pooled position (0, 0): source rows 0 and 1 are its two units (pool columns 0, 1
    # of a row are one unit): 2 + 1 and 2 + 1 events -> built 2 + 2 cycles at E = 2,
    # carried max(2 units, ceil(6 / 2)) = 3; the other pooled positions are empty: 2 each
    words[..., 0:2, 0:2] = torch.tensor([[2, 1], [2, 1]])
    built = S.row_dispatch(syn, words, 2, 2)
    carried = est.carried_row_dispatch(syn, words, 2, 2)
    assert int(built.sum()) == 4 + 3 * 2 and int(carried.sum()) == 3 + 3 * 2
    # pool hold (built: `row_dispatch(..., hold=True)`): unit 0 issues 2, holds 1; unit 1
    # issues 1 + 1, then 2: 3 cycles too
    assert int(S.row_dispatch(syn, words, 2, 2, hold=True).sum()) == 3 + 3 * 2
    # 0 + 5 events: carried max(2, 3) = 3 (look-ahead fills unit 0's cycle); held: unit 0
    # has nothing to hold (1 cycle), unit 1 ceil(5 / 2) = 3 -> 4, as without it
    words[..., 0:2, 0:2] = torch.tensor([[0, 0], [3, 2]])
    assert [int(f(syn, words, 2, 2).sum()) for f in
            (S.row_dispatch, est.carried_row_dispatch)] == [10, 9]
    assert int(S.row_dispatch(syn, words, 2, 2, hold=True).sum()) == 10
    flat = dataclasses.replace(syn, pool=1)
    w1 = torch.randint(0, 5, (2, 1, 1, 4, 4))
    assert torch.equal(est.carried_row_dispatch(flat, w1, 4, 2), S.row_dispatch(flat, w1, 4, 2))
    cfg = SIAConfig(pes=4, events_per_cycle=2)
    for seed in range(4):
        p = _finish(random_program(seed))
        x = _images(p, 2, seed).numpy()
        for opt in est.OPTIONS:
            res = est.estimate(p, x, cfg, 1, **{opt: True})
            assert res["cycles_per_image_projected"] <= res["cycles_per_image_model"]
        every = est.estimate(p, x, cfg, 1, **dict.fromkeys(est.OPTIONS, True))
        assert every["cycles_per_image_projected"] <= res["cycles_per_image_projected"]
    region = torch.tensor([0, 1, 3, 0])
    assert est.skipping_unit_costs(region, 2).tolist() == [0, 1, 2, 0]
    for E in (1, 2, 4):      # as built, scan_stats and row_dispatch count the same cycles
        for ph in (False, True):
            g, w = (flat if ph else syn), torch.randint(0, 4, (2, 1, 2, 6, 6))
            d = S.scan_stats(g, w, 3, E, None, ph)
            rows = S.row_dispatch(g, w, 3, E, None, ph).sum(-1)
            assert torch.equal(d["accumulate"] + d["dispatch_empty"], rows)
            d2 = est.counted_like_rows(False)(g, w, 3, E, None, ph)
            assert torch.equal(d2["accumulate"], d["accumulate"])
    with pytest.raises(SiaError, match="name an option"):
        est.estimate(p, x, cfg, 1)

"""Signed spikes on the SIA (sia/hw/planes.py, interface 1.9): the two-plane view, the
cycle-level model (per-event trace == golden, fast path == trace, == the RTL's cycle
formula) on random signed programs and builds, the packet fields and the output word.
The RTL co-simulation is in tests/test_rtl_cosim.py (`test_signed_*`)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sia.hw import regmap
from sia.hw.model import run
from sia.hw.model.fit import weight_rows
from sia.hw.params import SIAConfig
from sia.hw.planes import hardware_view
from sia.program.random import random_program, with_signed_neurons
from sia.snn import simulate

from test_hw_model import _check_trace, _images, check_launch_cycles


def _signed(seed, **kw):
    return with_signed_neurons(random_program(seed, max_hw=8, max_channels=6, timesteps=4, **kw),
                               seed)


def test_the_view_splits_signed_sources_into_two_planes():
    p = _signed(1)
    v = hardware_view(p)
    assert hardware_view(v) is v and hardware_view(random_program(1)) is not None
    unsigned = random_program(1, max_hw=8, max_channels=6, timesteps=4)
    assert hardware_view(unsigned) is unsigned
    signed = {i for i, layer in enumerate(p.layers) if layer.signed}
    for layer, lv in zip(p.layers, v.layers):
        planes = [s.plane for s in lv.inputs]
        want = [q for s in layer.inputs for q in ((1, -1) if s.source in signed else (0,))]
        assert planes == want
        # the -1 plane shares its +1 plane's weight array and weight rows
        assert weight_rows(v, lv) == weight_rows(p, layer)
        for a, b in zip(lv.inputs, lv.inputs[1:]):
            if b.plane < 0:
                assert b.weight is a.weight and a.plane == 1 and a.source == b.source


def test_packet_descriptors_of_the_planes():
    """The -1 plane: `neg` set, the +1 plane's `wrow`, no weight rows of its own; a sign
    pair: `spair`, two words per position; the layer's `signed` bit; the weight stream is
    as long as the unsigned layer's."""
    p = _signed(1)
    cfg = SIAConfig(pes=4, signed_count_bits=3)
    for i, layer in enumerate(p.layers):
        if all(s.source < 0 for s in layer.inputs):
            continue
        groups = regmap._groups(p, i, 0, cfg, 4)[0]
        for a, b in zip(groups, groups[1:]):
            if b["neg"]:
                assert b["wrow"] == a["wrow"] and b["_rows"] == 0 and not a["neg"]
        info = regmap.tile_info(p, i, 0, cfg, 4)
        plain = dataclasses.replace(p, layers=[dataclasses.replace(x, signed=False)
                                               for x in p.layers])
        assert info.weight_beats == regmap.tile_info(plain, i, 0, cfg, 4).weight_beats
        assert sum(g["neg"] + g["spair"] for g in groups) == sum(
            p.layers[s.source].signed for s in layer.inputs if s.source >= 0)
        for g in groups:
            if g["spair"]:
                assert (g["nw"], g["pstride"], g["pool"], g["phase"], g["neg"]) == (2, 2, 1, 0, 0)
                assert g["_beats"] == 2 * g["hp"] * g["wp"]


def test_signed_output_word_decodes_both_planes():
    """Bit p of a signed layer's output word: +1, bit P + p: -1 (one beat, P <= 32)."""
    p = _signed(1)
    cfg = SIAConfig(pes=4, signed_count_bits=3)
    i = next(j for j, layer in enumerate(p.layers) if layer.signed and j > 0)
    _, H, W = p.layers[i].shape
    n = regmap.tile_info(p, i, 0, cfg, 4).channels
    rng = np.random.default_rng(0)
    s = rng.integers(-1, 2, (4, n, H, W)).astype(np.int8)
    beats = [int(sum(1 << c for c in range(n) if s[t, c, y, x] == 1)
                 | sum(1 << (4 + c) for c in range(n) if s[t, c, y, x] == -1))
             for t in range(4) for y in range(H) for x in range(W)]
    out = regmap.unpack_output(p, i, 0, beats, cfg, 4)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, s)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), pes=st.sampled_from([4, 32]), E=st.sampled_from([1, 2, 4]),
       phase=st.booleans(), drain=st.booleans(), slots=st.sampled_from([4, 5]),
       hold=st.booleans(), quads=st.booleans(), narrow=st.booleans())
def test_random_signed_programs_trace_golden_fast(seed, pes, E, phase, drain, slots, hold,
                                                  quads, narrow):
    """Per-event trace == golden (+1 / -1 spikes, membranes), fast path == trace per
    launch (phases, SOPs, memory), on every build option."""
    p = _signed(seed)
    _check_trace(p, _images(p, 1, seed),
                 SIAConfig(pes=pes, events_per_cycle=E, phase_pairs=phase, identity_drain=drain,
                           psum_slots=slots, pool_hold=hold and E <= 2, phase_quads=phase and quads,
                           narrow_stream=narrow, signed_count_bits=3))


def test_minus_one_spikes_occur_and_cost_events():
    """The random signed programs do fire -1 (the tests above exercise the -1 paths); a
    -1 plane's events are dispatched and counted: the model's SOPs equal the golden
    simulator's count (which counts both signs)."""
    cfg = SIAConfig(pes=4, signed_count_bits=3)
    total = 0
    for seed in range(6):
        p = _signed(seed)
        img = _images(p, 2, seed)
        g = simulate(p, img, record=True)
        total += sum(int((g.traces[x.name]["spikes"] < 0).sum()) for x in p.layers if x.kind == "if")
        r = run(p, img, config=cfg)
        np.testing.assert_array_equal(r.predictions, g.predictions)
        assert int(r.image_sops.sum()) == sum(g.sops.values())
    assert total > 100


def test_signed_launch_cycles_match_the_rtl_reference_formula():
    for seed in range(8):
        check_launch_cycles(_signed(seed), seed, (
            SIAConfig(pes=4, events_per_cycle=1, signed_count_bits=3),
            SIAConfig(pes=8, events_per_cycle=2, phase_pairs=True, identity_drain=True,
                      pool_hold=True, psum_slots=5, signed_count_bits=3),
            SIAConfig(pes=4, events_per_cycle=4, phase_pairs=True, phase_quads=True,
                      narrow_stream=True, signed_count_bits=3)))


def test_no_minus_one_spike_at_an_images_first_step():
    """`c(0) = 0`, so no neuron fires -1 at an image's first step (docs/semantics.md): the
    property the first-step skip (interface 1.11) relies on. The later steps do fire -1."""
    later = 0
    for seed in range(8):
        p = _signed(seed)
        g = simulate(p, _images(p, 4, seed), record=True)
        for layer in p.layers:
            if layer.signed:
                s = g.traces[layer.name]["spikes"]
                assert int((s[0] < 0).sum()) == 0, (seed, layer.name)
                later += int((s[1:] < 0).sum())
    assert later > 50


def test_first_step_skip_saves_the_minus_one_planes_first_scan():
    """At an image's first step the dispatcher skips the -1 planes (interface 1.11): a
    launch saves exactly their empty units of that step against the same launch as a
    resumed chunk (whose first step is not an image's), model and RTL formula alike, and
    a packed launch saves them at every image's first step."""
    import torch

    from sia.hw.model import launch_cycles
    from sia.hw.model import schedule as S
    from sia.hw.rtl import cycles as rtl_cycles
    cfg = SIAConfig(pes=4, events_per_cycle=2, phase_pairs=True, signed_count_bits=3)
    saved = 0
    for seed in range(6):
        p = _signed(seed)
        v = hardware_view(p, cfg)
        img = _images(p, 2, seed)
        g = simulate(p, img, record=True)
        spikes = {i: g.traces[x.name]["spikes"].numpy().astype(np.int8 if x.signed else np.uint8)
                  for i, x in enumerate(p.layers) if x.kind == "if"}
        for i, layer in enumerate(v.layers):
            if any(s.source < 0 for s in layer.inputs):
                continue
            negs = [s for s in layer.inputs if s.plane < 0]
            for b in range(2):
                ins = {s.source: spikes[s.source][:, b] for s in layer.inputs}
                t_in = {j: torch.from_numpy(x) for j, x in ins.items()}
                fresh = launch_cycles(p, i, 0, t_in, config=cfg)
                resumed = launch_cycles(p, i, 0, t_in, config=cfg, resume=True)
                # the -1 planes' units at step 0: all empty, one cycle each
                units = 0
                for s in negs:
                    ph, qd = S.phase(s, v, cfg), S.quad(s, v, cfg)
                    sv, x = S.scan_view(s, torch.from_numpy(ins[s.source])[:, None])
                    words = S.group_words(v, layer, sv, x, 0, cfg)
                    assert int(words[0].sum()) == 0
                    # (resume: the units as scanned, without the first-step skip)
                    units += int(S.scan_stats(sv, words, layer.shape[1], 2, None, ph, False,
                                              qd, resume=True)["dispatch_empty"][0].sum())
                assert resumed["dispatch_empty"] - fresh["dispatch_empty"] == units
                assert resumed["accumulate"] == fresh["accumulate"]
                for r, model in ((False, fresh), (True, resumed)):
                    assert model["total"] == rtl_cycles.launch_cycles(p, i, 0, ins, cfg,
                                                                      resume=r), (seed, i)
                saved += units
            if layer.kind != "if":   # (only if-layers run packed launches)
                continue
            both = [{s.source: spikes[s.source][:, b] for s in layer.inputs} for b in range(2)]
            packed = rtl_cycles.launch_cycles(p, i, 0, both, cfg, detail=True)
            assert packed["total"] == launch_cycles(
                p, i, 0, [{j: torch.from_numpy(x) for j, x in d.items()} for d in both],
                config=cfg)["total"]
    assert saved > 0


def test_sign_pairs_in_the_view():
    """On a build with signed neurons a signed source's group whose positions fit one word
    and that is scanned word by word runs as one sign pair (plane 2, interface 1.12); a
    stride-2 3x3 phase-pair group, or any group with no build given, as two planes."""
    from sia.hw.planes import PAIR, sign_pair
    p = _signed(3)
    assert hardware_view(p).layers == hardware_view(p, SIAConfig()).layers   # (no signed neurons)
    for cfg in (SIAConfig(pes=4, signed_count_bits=3),
                SIAConfig(pes=4, signed_count_bits=3, phase_pairs=True)):
        v = hardware_view(p, cfg)
        assert hardware_view(v, cfg) is v
        pairs = 0
        for i, (layer, lv) in enumerate(zip(p.layers, v.layers)):
            want = []
            for s in layer.inputs:
                if s.source < 0 or not p.layers[s.source].signed:
                    want.append(0)
                elif sign_pair(s, p, i, cfg):
                    assert s.pool == 1 and not regmap.phase_pair(s, p.source_shape(s.source), cfg)
                    want.append(PAIR)
                else:
                    want += [1, -1]
            assert [s.plane for s in lv.inputs] == want
            pairs += want.count(PAIR)
        assert pairs > 0


def test_sign_pair_unit_costs():
    """A sign pair issues its +1 events, then its -1 events: max(1, ceil(n+/E) +
    ceil(n-/E)) cycles, never more than max(1, ceil(n+/E)) + max(1, ceil(n-/E)) as two
    planes (the formula and the RTL: `test_signed_launch_cycles_match_the_rtl_reference_formula`,
    tests/test_rtl_cosim.py)."""
    import torch

    from sia.hw.model import schedule as S
    n = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1], [2, 1], [3, 2], [4, 0]])
    region = n.T.reshape(1, 1, 2, 1, -1)               # [T', B, 2 words, R, W]
    for E, want in ((1, [1, 1, 1, 2, 3, 5, 4]), (2, [1, 1, 1, 2, 2, 3, 2])):
        cost = S.unit_costs(S.sign_units(region), E, signs=True).reshape(-1).tolist()
        assert cost == want
        planes = [max(1, -(-a // E)) + max(1, -(-b // E)) for a, b in n.tolist()]
        assert all(c <= q for c, q in zip(cost, planes))


@pytest.mark.parametrize("drain", [False, True])
def test_a_bitstream_before_sign_pairs_is_refused(drain):
    """A program image with sign pairs on a bitstream of interface 1.11 (which would read
    the -1 word as channels 64..127) is refused at load; 1.12 loads and runs it. With a
    drained signed identity (1.13; a 1.12 build would add its -1 word as +1 spikes): 1.12
    refuses it, 1.13 loads it."""
    from sia import SiaError
    from sia.deploy import regmap_bridge as rb
    from sia.deploy import transport as tp
    from sia.deploy.image import build_image
    from sia.deploy.pynq_driver import SiaDriver
    from sia.deploy.twin_device import PythonSia
    p = _signed(5)          # (identity shortcuts of signed sources in two layers)
    cfg = SIAConfig(pes=4, signed_count_bits=3, identity_drain=drain)
    image = build_image(p, cfg)
    assert any(rb.sign_pairs(image, k) for k in range(len(image.launches)))
    drained = any(rb.drained_sign_pair(image, k) for k in range(len(image.launches)))
    assert drained == drain
    refused = [(0x0001_000B, "sign pairs")] + [(0x0001_000C, "signed identity")] * drain
    for version, why in (*refused, (regmap.VERSION, None)):
        dev = PythonSia(cfg)
        reg = dev.reg_read
        dev.reg_read = (lambda v: lambda off: v if off == regmap.REGISTERS["VERSION"][0]
                        else reg(off))(version)
        d = SiaDriver(tp.TwinTransport(dev, length_width=26), timeout_s=0.3)
        if why is None:
            d.load(image)
        else:
            with pytest.raises(SiaError, match=why):
                d.load(image)


def test_signed_options_projection():
    """benchmarks/signed_options_estimate.py: a sign pair's mixed-sign unit costs
    max(1, ceil((n+ + n-) / E)); without the first step's -1 maps every later step's
    input need is that many words earlier (and a resumed chunk has no first step); on
    random signed programs no option changes the outputs, none adds cycles, and the
    built functions are back afterwards."""
    import torch
    from benchmark_common import load_benchmark

    from sia.hw.model import schedule as S

    est = load_benchmark("signed_options_estimate")
    n = torch.tensor([[0, 0], [1, 0], [1, 1], [3, 1], [4, 0]])
    region = n.T.reshape(1, 1, 2, 1, -1)
    assert est.mixed_unit_costs(S.sign_units(region), 2, signs=True).reshape(-1).tolist() == \
        [1, 1, 1, 2, 2]
    cfg = SIAConfig(pes=4, events_per_cycle=2, signed_count_bits=3, identity_drain=True)
    checked = 0
    for seed in range(10):
        p = _signed(seed)
        v = hardware_view(p, cfg)
        for i, layer in enumerate(v.layers):
            groups = regmap._groups(v, i, 0, cfg, 8)[0]
            if layer.kind != "if" or any(s.source < 0 for s in layer.inputs) \
                    or not any(g.get("neg") for g in groups):
                continue
            negw = sum(w for g, w in zip(groups, regmap._segment_words(groups)) if g.get("neg"))
            built = np.asarray(S.stream_need(v, i, cfg, 8))
            skip = np.asarray(est.skipped_need(v, i, cfg, 8, period=4))
            assert (skip <= built).all()
            np.testing.assert_array_equal(skip[1:4], built[1:4] - negw)
            np.testing.assert_array_equal(skip[5:], built[5:] - 2 * negw)
            assert est.skipped_need(v, i, cfg, 8, period=4, resume=True) == built.tolist()
            checked += 1
        if seed >= 5:
            continue
        img = _images(p, 2, seed)
        base = est.run_options(p, img, cfg, 2)
        for names in ((o,) for o in est.OPTIONS):
            r = est.run_options(p, img, cfg, 2, names=names)
            assert r["accuracy"] == base["accuracy"]
            assert r["latency_cycles"]["mean"] <= base["latency_cycles"]["mean"]
    assert checked > 3
    assert S.unit_costs is est._BUILT_UNITS and S.stream_need is est._BUILT_NEED

"""Verilator co-simulation of the RTL against the golden simulator (bit-exact spikes
and membranes) and the RTL cycle formula (cycle-exact), with and without random
TVALID/TREADY stalls. The shared small build (tests/rtl_common.py) and the P = 4 builds
of the option tests are cached under build/rtl/."""

import numpy as np
import pytest

from sia.hw import regmap
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim import harness
from sia.hw.rtl.cosim.program import run_program
from sia.hw.rtl.testprog import random_program

from rtl_common import SIGNED_BUILD, SMALL_BUILD

CFG = SMALL_BUILD   # shared with tests/test_deploy_rtl.py: one build

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def built():
    return harness.build(CFG)


def _check_exact(p, r):
    """Every launch cycle-exact (RTL == formula == model) and the SOPS register summed
    per layer == the golden simulator's count."""
    sops = {}
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch
        name = p.layers[launch["layer"]].name
        sops[name] = sops.get(name, 0) + launch["sops"]
    assert sops == dict(r["golden"].sops)


def _image(p, seed):
    return np.random.default_rng(seed).integers(0, 256, p.input_shape).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_program_bit_and_cycle_exact(built, seed):
    p = random_program(seed, chans=(5 + 3 * seed, 12 - seed % 2))  # 1-2 tiles
    r = run_program(p, _image(p, seed), CFG)          # raises on any golden mismatch
    _check_exact(p, r)


@pytest.mark.parametrize("seed", [5, 6])
def test_random_stalls_same_results(built, seed):
    p = random_program(seed, timesteps=2)
    r = run_program(p, _image(p, seed), CFG, seed=seed, p_valid=0.6, p_ready=0.5)
    for launch in r["launches"]:
        assert launch["cycles"] >= launch["expected"]


def test_bad_header_sets_error(built):
    p = random_program(0)
    ins = {-1: _image(p, 0)}
    pk = regmap.pack_tile(p, 0, 0, ins, CFG)
    bad = [pk[0] ^ 1] + pk[1:2]
    res, _ = harness.run(CFG, [bad, pk])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 1
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


def test_resident_weight_batch(built):
    """Launch-major batch of 3 images: the first launch of each tile loads its weights,
    the next two keep them (keep=1, no weight/param beats). Every image bit-exact,
    every launch cycle-exact with the formula and the model (with random stalls too)."""
    from sia.hw.rtl.cosim.program import run_images
    p = random_program(1, chans=(8, 12))     # 2 tiles in the second layer
    imgs = np.stack([_image(p, s) for s in (7, 8, 9)])
    r = run_images(p, imgs, CFG)              # raises on any golden mismatch
    kept = [x for x in r["launches"] if x["keep"]]
    assert len(kept) == 2 * sum(regmap.num_tiles(p, i, CFG) for i in range(len(p.layers)))
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch
    run_images(p, imgs, CFG, seed=3, p_valid=0.7, p_ready=0.6)


def test_parallel_processes_same_launches(built):
    """jobs=2 (all layers at once from the golden inputs, split between two simulator
    processes) gives every launch the same outputs, CYCLES, SOPS and order as one
    process walking the layers with the RTL's own outputs."""
    from sia.hw.rtl.cosim.program import run_images
    p = random_program(1, chans=(8, 12))
    imgs = np.stack([_image(p, s) for s in (7, 8)])
    one, two = run_images(p, imgs, CFG, jobs=1), run_images(p, imgs, CFG, jobs=2)
    assert two["sim"]["jobs"] == 2 and two["sim"]["cycles"] > 0
    keys = ("layer", "tile", "images", "keep", "cycles", "sops", "image_ops")
    assert [[x[k] for k in keys] for x in one["launches"]] == \
        [[x[k] for k in keys] for x in two["launches"]]
    for a, b in zip(one["outputs"], two["outputs"]):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_shards_cut_only_before_fresh_launches():
    """A process may only start at a launch that carries its weights; runs are
    contiguous, cover every launch once and are balanced by beats."""
    packets = [[0] * n for n in (10, 1, 1, 10, 1, 1, 10, 1, 1, 10, 1, 1)]
    fresh = [i % 3 == 0 for i in range(12)]
    parts = harness.shards(packets, fresh, 2)
    assert [list(r) for r in parts] == [list(range(6)), list(range(6, 12))]
    assert all(fresh[r.start] or r.start == 0 for r in parts)
    assert harness.shards(packets, fresh, 1) == [range(12)]
    assert harness.shards(packets[:3], fresh[:3], 4) == [range(3)]   # no allowed cut
    parts = harness.shards(packets, fresh, 8)       # more jobs than cuts: one per run
    assert [r.start for r in parts] == [0, 3, 6, 9] and parts[-1].stop == 12


def test_build_cache_key_covers_every_design_source():
    """The Verilator cache key (harness._SOURCES) holds every sia module the elaborated
    design imports, so editing any of them rebuilds (params.py enters as the config)."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys, sia.hw.rtl.top, sia.hw.rtl.export; print('\\n'.join(sorted("
            "m.__file__ for n, m in sys.modules.items() if n.startswith('sia.hw'))))")
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    need = {f for f in files if not f.endswith(("__init__.py", "params.py"))}
    assert need and need <= {str(Path(k)) for k in harness._SOURCES}, need - set(harness._SOURCES)


def test_keep_without_resident_weights_is_refused(built):
    """keep=1 after reset or after a failed launch: error code 3, nothing computed; a
    full launch then restores residency."""
    p = random_program(0)
    ins = {-1: _image(p, 0)}
    full = regmap.pack_tile(p, 0, 0, ins, CFG)
    kept = regmap.pack_tile(p, 0, 0, ins, CFG, keep=True)
    bad = [full[0] ^ 1] + full[1:2]
    res, _ = harness.run(CFG, [kept, full, kept, bad, kept])
    codes = [(x.status >> 8) & 0xFF if x.status & regmap.STATUS_ERROR else 0 for x in res]
    assert codes == [3, 0, 0, 1, 3]
    assert res[1].beats == res[2].beats


def test_digits_network_end_to_end(built):
    """The trained digits program (zoo), one test image: every layer bit-exact (each
    layer reads the RTL's own spikes: one process, layer by layer), logits equal, every
    launch cycle-exact."""
    from sia.data.registry import load_split
    from sia.zoo import load_zoo_program
    p = load_zoo_program("digits_cnn_l8")
    images, labels = load_split("digits", "test")
    img = np.asarray(images[3])
    r = run_program(p, img, CFG, jobs=1)
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch
    logits = r["outputs"][p.layers[-1].name].reshape(-1)
    assert int(np.argmax(logits)) == int(r["golden"].predictions[-1, 0])


def test_model_engineers_random_programs(built):
    """Programs from sia.program.random (another generator than testprog): every one
    the RTL accepts runs bit-exact and cycle-exact; refusals are clear SiaErrors."""
    from sia import SiaError
    from sia.program.random import random_program as rp
    ran = 0
    for seed in range(8):
        p = rp(seed, max_hw=8, max_channels=12, timesteps=3)
        try:
            for i in range(len(p.layers)):
                regmap.check_layer(p, i, CFG)
        except SiaError:
            continue
        r = run_program(p, _image(p, seed), CFG)
        for launch in r["launches"]:
            assert launch["cycles"] == launch["expected"] == launch["model"], launch
        ran += 1
    assert ran >= 3


@pytest.mark.parametrize("E,chans,hw", [(4, (6, 7), 8), (4, (70, 66), 8), (2, (70, 66), 8)])
def test_events_per_cycle_and_word_pairs(E, chans, hw):
    """E = 4 (the DSE's high-throughput point), and layers wider than one 64-channel
    word (2 words per position: word pairs within a position and, pooled, across the
    pool columns): bit-exact and cycle-exact too."""
    wide = max(chans) > 64
    cfg = SIAConfig(pes=4, events_per_cycle=E, max_width=8, max_height=8,
                    max_channels_in=1024 if wide else 64, max_timesteps=4,
                    buffer_timesteps=16 if wide else 8)
    p = random_program(2, chans=chans, hw=hw, timesteps=2 if wide else 3)
    r = run_program(p, _image(p, 2), cfg)
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch


def test_rtl_run_cli_batch(built, tmp_path):
    """`sia rtl run --batch 2`: the JSON report says bit-exact and cycle-exact."""
    import json

    from sia.cli import main
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(CFG.to_json()))
    with pytest.raises(SystemExit) as e:
        main(["rtl", "run", "digits_cnn_l8", "--config", str(cfg), "--batch", "2",
              "--out", str(tmp_path / "r.json")])
    assert e.value.code == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["batch"] == 2 and rep["cycle_exact_vs_formula"] and rep["cycle_equal_to_model"]
    assert sum(x["keep"] for x in rep["per_launch"]) == len(rep["per_launch"]) // 2


def test_packed_launches(built):
    """Packed launches (interface 1.3): up to k images of a spiking layer per launch,
    membranes restarting from v_init every `period` steps. Every image bit-exact, every
    launch cycle-exact with the formula and the model, with random stalls too; a packed
    header for an integrator is refused (error code 2)."""
    from sia.hw.rtl.cosim.program import run_images
    p = random_program(1, chans=(8, 12))
    imgs = np.stack([_image(p, s) for s in (7, 8, 9, 10)])
    r = run_images(p, imgs, CFG, launch_images=3)   # raises on any golden mismatch
    sizes = {len(x["images"]) for x in r["launches"]}
    assert sizes >= {1, 2, 3}
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch
    run_images(p, imgs, CFG, seed=4, p_valid=0.7, p_ready=0.6, launch_images=0)
    fc = len(p.layers) - 1
    assert p.layers[fc].kind == "integrator"
    ins = {s.source: np.zeros((p.timesteps,) + p.source_shape(s.source), np.uint8)
           for s in p.layers[fc].inputs}
    pk = regmap.pack_tile(p, fc, 0, ins, CFG)
    hdr = regmap.unpack_fields(regmap.LAYER_LAYOUT, pk[:regmap.LAYER_BEATS])
    b, lsb, _ = regmap.LAYER_LAYOUT["period"]
    assert hdr["period"] == p.timesteps and p.timesteps > 1
    bad = list(pk)
    bad[b] = bad[b] & ~(0x1FF << lsb) | (1 << lsb)    # period 1 < timesteps: packed
    res, _ = harness.run(CFG, [bad, pk])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


def _phase_cfg(E):   # one phase-pair build per E serves every phase test (2 Verilator builds;
    # the E = 4 one also adds identity shortcuts in the drain, E = 2 dispatches them and
    # has no row prefetch, like configs/sia/xc7z020.json; E = 4 has 8 psum row slots)
    return SIAConfig(pes=4, events_per_cycle=E, max_width=8, max_height=8, max_channels_in=1024,
                     max_timesteps=4, buffer_timesteps=16, phase_pairs=True,
                     identity_drain=E == 4, row_prefetch=E == 4, psum_slots=8 if E == 4 else 4)


def test_identity_drain_bit_and_cycle_exact():
    """Identity shortcuts added by the aggregation core (`identity_drain`): testprog's
    conv2 (3x3 conv + identity) with one and two words per position, narrow weight
    streams, resident-weight batches and packed launches, random stalls; bit-exact,
    cycle-exact, SOPS = the golden count (its identity events counted at the drain)."""
    from sia.hw.rtl.cosim.program import run_images
    cfg = _phase_cfg(4)
    for seed, chans in ((0, (5, 7)), (2, (70, 66))):
        p = random_program(seed, chans=chans, timesteps=2)
        assert regmap._groups(p, 2, 0, cfg, 2)[0][0]["drain"] == 1
        _check_exact(p, run_program(p, _image(p, seed), cfg))
    p = random_program(1, chans=(6, 9), timesteps=2)
    imgs = np.stack([_image(p, s) for s in range(3)])
    r = run_images(p, imgs, cfg, launch_images=0)
    assert any(len(launch["images"]) > 1 for launch in r["launches"])
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch
    run_images(p, imgs, cfg, seed=4, p_valid=0.6, p_ready=0.5)


def test_drain_packets_refused():
    """A drain group on a build without identity_drain, and a drain bit on a group other
    than 0 on a build with it, end in error code 2; the next good launch runs."""
    import dataclasses
    p = random_program(0)
    spikes = np.zeros((p.timesteps, *p.layers[1].shape), np.uint8)
    cases = [(CFG, regmap.pack_tile(p, 2, 0, {1: spikes}, dataclasses.replace(CFG, identity_drain=True)))]
    cfg = _phase_cfg(4)
    pk = regmap.pack_tile(p, 2, 0, {1: spikes}, cfg)
    b, lsb, _ = regmap.GROUP_LAYOUT["drain"]
    bad = list(pk)
    bad[regmap.LAYER_BEATS + regmap.GROUP_BEATS + b] |= 1 << lsb
    cases.append((cfg, bad))
    for build, pk_bad in cases:
        ok = regmap.pack_tile(p, 2, 0, {1: spikes}, build)
        res, _ = harness.run(build, [pk_bad, ok])
        assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
        assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


@pytest.mark.parametrize("E", [2, 4])
def test_phase_pairs_bit_and_cycle_exact(E):
    """A phase-pair build (stride-2 3x3 convs take E events from each word of a column
    pair): testprog's conv1 is ResNet's downsampling pattern (a stride-2 3x3 conv beside
    a decimated 1x1 shortcut), with one and with two words per position; bit-exact,
    cycle-exact, SOPS = the golden count, and unchanged results under stalls."""
    cfg = _phase_cfg(E)
    for chans in ((6, 7), (70, 66)):
        p = random_program(2, chans=chans, timesteps=2)
        assert any(regmap.phase_pair(s, p.source_shape(s.source), cfg) for s in p.layers[1].inputs)
        _check_exact(p, run_program(p, _image(p, 2), cfg))
    run_program(p, _image(p, 2), cfg, seed=E, p_valid=0.6, p_ready=0.5)


def _check_packed_batch(cfg):
    """testprog's seed-4 program on 3 images in resident-weight batches and packed
    launches: bit-exact (run_images raises on any golden mismatch), every launch
    cycle-exact."""
    from sia.hw.rtl.cosim.program import run_images
    p = random_program(4, timesteps=2)
    r = run_images(p, np.stack([_image(p, s) for s in range(3)]), cfg, launch_images=0)
    assert any(len(launch["images"]) > 1 for launch in r["launches"])
    for launch in r["launches"]:
        assert launch["cycles"] == launch["expected"] == launch["model"], launch


def test_phase_pairs_in_packed_batches():
    """Phase groups in resident-weight batches and packed launches (3 images)."""
    _check_packed_batch(_phase_cfg(2))


def test_phase_pairs_on_model_engineers_programs():
    """sia.program.random programs with stride-2 3x3 convs on a phase-pair build."""
    from sia.program.random import random_program as rp
    cfg = _phase_cfg(2)
    for seed in (13, 24, 29):
        p = rp(seed, max_hw=8, max_channels=12, timesteps=3)
        assert any(regmap.phase_pair(s, p.source_shape(s.source), cfg)
                   for layer in p.layers for s in layer.inputs)
        r = run_program(p, _image(p, seed), cfg)
        for launch in r["launches"]:
            assert launch["cycles"] == launch["expected"] == launch["model"], launch


def _quad_cfg(E):   # the phase-pair builds above with phase quads (2 more Verilator builds;
    # the E = 4 one has narrow streams too)
    import dataclasses
    return dataclasses.replace(_phase_cfg(E), phase_quads=True, narrow_stream=E == 4)


@pytest.mark.parametrize("E", [2, 4])
def test_phase_quads_bit_and_cycle_exact(E):
    """A phase-quad build (stride-2 3x3 convs over even maps take E events from each of
    the four words of a 2x2 source block): testprog's conv1 (beside its decimated
    shortcut, which stays in pairs) with one word per position, and with two at E = 2;
    a sia.program.random program; bit-exact, cycle-exact (RTL == formula == model),
    SOPS = the golden count, unchanged results under stalls; resident-weight packed
    batches (E = 2). The E = 4 build has narrow streams too (the 6-channel maps stream
    4 words per beat)."""
    from sia.program.random import random_program as rp
    cfg = _quad_cfg(E)
    for chans in ((6, 7), (70, 66)) if E == 2 else ((6, 7),):
        p = random_program(2, chans=chans, timesteps=2)
        assert [regmap.phase_quad(s, p.source_shape(s.source), cfg) for s in p.layers[1].inputs] \
            == [True, False]
        _check_exact(p, run_program(p, _image(p, 2), cfg))
    p = random_program(2, chans=(6, 7), timesteps=2)
    run_program(p, _image(p, 2), cfg, seed=E, p_valid=0.6, p_ready=0.5)
    p = rp(13 if E == 2 else 33, max_hw=8, max_channels=12, timesteps=3)
    assert any(regmap.phase_quad(s, p.source_shape(s.source), cfg)
               for layer in p.layers for s in layer.inputs)
    _check_exact(p, run_program(p, _image(p, 0), cfg))
    if E == 2:
        _check_packed_batch(cfg)


def test_narrow_streams_bit_and_cycle_exact():
    """Narrow streams (maps of <= 32 channels stream 2 or 4 buffer words per beat) on the
    E = 4 phase-quad build with identity in the drain (its shortcut copy is written 4
    words a beat too): testprog with 6/7 channels (4 words per beat) and 70/66 (only the
    drain slice narrow) run in `test_phase_quads_bit_and_cycle_exact` on this build;
    here 20/24 (2 words per beat, the 4-channel drain slice 4); bit-exact, cycle-exact,
    SOPS = golden; under stalls; in packed batches."""
    cfg = _quad_cfg(4)
    for chans, npos in (((6, 7), {2}), ((20, 24), {1, 2}), ((70, 66), {0, 2})):
        p = random_program(2, chans=chans, timesteps=2)
        used = {g["npos"] for i in range(1, len(p.layers)) for g in regmap._groups(p, i, 0, cfg, 2)[0]}
        assert used == npos, (chans, used)
    p = random_program(2, chans=(20, 24), timesteps=2)
    _check_exact(p, run_program(p, _image(p, 2), cfg))
    p = random_program(2, chans=(6, 7), timesteps=2)
    run_program(p, _image(p, 2), cfg, seed=1, p_valid=0.6, p_ready=0.5)
    _check_packed_batch(cfg)


def test_narrow_packet_refused_by_a_build_without_narrow_streams():
    """npos > 0 on a build without narrow streams: error code 2; the next launch runs."""
    import dataclasses
    p = random_program(0)
    spikes = np.zeros((p.timesteps, *p.layers[0].shape), np.uint8)
    cfg = _phase_cfg(2)
    pk = regmap.pack_tile(p, 1, 0, {0: spikes}, dataclasses.replace(cfg, narrow_stream=True))
    ok = regmap.pack_tile(p, 1, 0, {0: spikes}, cfg)
    res, _ = harness.run(cfg, [pk, ok])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


def test_quad_packet_refused_by_a_build_without_phase_quads():
    """A quad group on a phase-pair build without phase quads: error code 2; the same
    layer packed for that build runs next."""
    p = random_program(0)
    spikes = np.zeros((p.timesteps, *p.layers[0].shape), np.uint8)
    cfg = _phase_cfg(2)
    pk = regmap.pack_tile(p, 1, 0, {0: spikes}, _quad_cfg(2))
    ok = regmap.pack_tile(p, 1, 0, {0: spikes}, cfg)
    assert pk != ok
    res, _ = harness.run(cfg, [pk, ok])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


def test_phase_packet_refused_by_a_build_without_phase_pairs(built):
    import dataclasses
    p = random_program(0)
    spikes = np.zeros((p.timesteps, *p.layers[0].shape), np.uint8)
    pk = regmap.pack_tile(p, 1, 0, {0: spikes}, dataclasses.replace(CFG, phase_pairs=True))
    ok = regmap.pack_tile(p, 1, 0, {0: spikes}, CFG)
    res, _ = harness.run(CFG, [pk, ok])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


@pytest.mark.parametrize("seed", [8, 14])
def test_five_psum_slots_bit_and_cycle_exact(seed):
    """5 psum row slots (not a power of two: the drain's slot counter and the dispatcher's
    row slots wrap at 5): programs whose rows need the fifth slot (sia.program.random
    seeds whose model cycles drop from 4 to 5 slots) run bit- and cycle-exact, in fewer
    cycles than the 4-slot model gives."""
    import dataclasses

    from sia.hw.model import run
    from sia.program.random import random_program as model_program
    cfg = SIAConfig(pes=4, events_per_cycle=2, max_width=8, max_height=8, max_channels_in=128,
                    max_timesteps=8, pool_hold=True, psum_slots=5)
    p = model_program(seed, max_hw=8, max_channels=6, timesteps=3)
    img = np.random.default_rng(seed).integers(0, 256, p.input_shape, dtype=np.uint8)
    r = run_program(p, img, cfg)                     # raises on any golden mismatch
    _check_exact(p, r)
    four = run(p, img[None], config=dataclasses.replace(cfg, psum_slots=4)).launches()
    assert sum(x["cycles"] for x in r["launches"]) < sum(x["cycles"] for x in four)



def _signed(seed):
    from sia.hw.rtl.testprog import random_signed_program
    return random_signed_program(seed, chans=(5 + 3 * seed, 12 - seed % 2))   # 1-2 tiles


def _minus_ones(outputs) -> int:
    return sum(int((np.asarray(v) < 0).sum()) for v in outputs.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_signed_spikes_bit_and_cycle_exact(seed):
    """Random programs with signed IF neurons that fire -1 often: every layer's +1 / -1
    spikes and the integrator's membranes bit-exact with the golden simulator (its
    signed_if_step), every launch cycle-exact with the formula and the model, SOPs
    (a -1 plane's events included) equal to the golden count; seed 2 with stalls."""
    p = _signed(seed)
    stalls = dict(seed=seed, p_valid=0.7, p_ready=0.6) if seed == 2 else {}
    r = run_program(p, _image(p, seed), SIGNED_BUILD, **stalls)
    assert _minus_ones(r["outputs"]) > 50        # the -1 paths did run
    assert any(x["steps"][0] > 0 for x in r["launches"])   # and split launches resumed
    if stalls:
        assert all(x["cycles"] >= x["expected"] for x in r["launches"])
    else:
        _check_exact(p, r)


def test_signed_packed_launches_restart_the_counts():
    """Packed launches of a signed layer: membranes and net counts restart every `period`
    steps (image b's counts never see image b - 1's spikes); unsigned programs run on
    the signed build as on any other."""
    from sia.hw.rtl.cosim.program import run_images
    from sia.hw.rtl.testprog import random_signed_program
    p = random_signed_program(1, timesteps=2, chans=(8, 11))   # 2 steps: some layers pack
    imgs = np.stack([_image(p, s) for s in (7, 8, 9)])
    r = run_images(p, imgs, SIGNED_BUILD, launch_images=0)   # raises on any golden mismatch
    assert max(len(x["images"]) for x in r["launches"]) == 3
    assert all(x["cycles"] == x["expected"] == x["model"] for x in r["launches"])
    assert sum(_minus_ones(o) for o in r["outputs"]) > 0
    q = random_program(3)
    _check_exact(q, run_program(q, _image(q, 3), SIGNED_BUILD))


def test_signed_identity_drain_bit_and_cycle_exact():
    """A signed identity shortcut added by the aggregation core (interface 1.13): on the
    signed build with identity_drain and phase pairs (whose identity groups are otherwise
    phase pairs), testprog's conv2 identity drains as a sign pair - +1 and -1 spikes of
    every layer bit-exact, every launch cycle-exact, SOPS = the golden count; packed
    launches; random stalls (cycles >= the formula); a -1 plane (`neg`) with the drain
    bit is refused (error code 2) and the next launch runs."""
    import dataclasses

    from sia.hw.rtl.cosim.program import run_images
    cfg = dataclasses.replace(SIGNED_BUILD, identity_drain=True, phase_pairs=True)
    for seed in (0, 1):
        p = _signed(seed)
        g0 = regmap._groups(p, 2, 0, cfg, 2)[0][0]
        assert g0["drain"] == 1 and g0["spair"] == 1 and g0["nw"] == 2
        r = run_program(p, _image(p, seed), cfg)
        assert _minus_ones(r["outputs"]) > 50
        _check_exact(p, r)
    from sia.hw.rtl.testprog import random_signed_program
    p = random_signed_program(1, timesteps=2, chans=(8, 11))
    imgs = np.stack([_image(p, s) for s in (7, 8, 9)])
    r = run_images(p, imgs, cfg, launch_images=0)
    assert all(x["cycles"] == x["expected"] == x["model"] for x in r["launches"])
    r = run_images(p, imgs, cfg, launch_images=0, seed=5, p_valid=0.7, p_ready=0.3)
    assert all(x["cycles"] >= x["expected"] for x in r["launches"])
    pk = regmap.pack_tile(p, 2, 0, {0: np.zeros((2, *p.layers[0].shape), np.int8),
                                    1: np.zeros((2, *p.layers[1].shape), np.int8)}, cfg, 2)
    b, lsb, _ = regmap.GROUP_LAYOUT["neg"]
    bad = list(pk)
    bad[regmap.LAYER_BEATS + b] |= 1 << lsb      # the drained pair marked a -1 plane
    res, _ = harness.run(cfg, [bad, pk])
    assert (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


def test_output_ring_full_pauses_the_drain(built):
    """The output buffer is a ring of `regmap.out_ring_words` words (session 30): with the
    output stream held back (TREADY 1 cycle in 20) launches of up to 384 output words
    (the image layer, 6 steps of 8x8) through a 128-word ring stay bit-exact, the drain
    pausing while the ring is full (cycles > the formula); with TREADY high they are
    cycle-exact."""
    from sia.hw.rtl.cosim.program import run_images
    assert regmap.out_ring_words(CFG) == 128
    p = random_program(3, timesteps=6, chans=(6, 9))
    imgs = np.stack([_image(p, s) for s in range(3)])
    r = run_images(p, imgs, CFG, launch_images=0)
    assert all(x["cycles"] == x["expected"] == x["model"] for x in r["launches"])
    words = [len(x["images"]) * 6 * int(np.prod(p.layers[x["layer"]].shape[1:]))
             for x in r["launches"]]
    assert max(words) > 2 * regmap.out_ring_words(CFG)
    r = run_images(p, imgs, CFG, launch_images=0, seed=1, p_valid=1.0, p_ready=0.05)
    assert all(x["cycles"] >= x["expected"] for x in r["launches"])
    assert any(x["cycles"] > x["expected"] for x in r["launches"])


def test_signed_packets_refused_by_a_build_without_them(built):
    """A layer with the `signed` bit or a group with the `neg` or `spair` bit on a build
    without signed_count_bits: error code 2; the next launch runs. On the signed build, a
    signed layer of more steps per image than its counts hold, or a sign pair that is not
    one word pair per position: error code 2 too."""
    p = _signed(0)
    spikes = np.zeros((2, *p.layers[0].shape), np.int8)     # a launch of 2 steps
    pk = regmap.pack_tile(p, 1, 0, {0: spikes}, SIGNED_BUILD, 2)
    hdr = regmap.unpack_fields(regmap.LAYER_LAYOUT, pk[:regmap.LAYER_BEATS])
    assert hdr["signed"] == 1 and hdr["ngroups"] == 2     # two sign pairs (1.12)

    def group_field(packet, g, name, value):
        b, lsb, bits = regmap.GROUP_LAYOUT[name]
        b += regmap.LAYER_BEATS + regmap.GROUP_BEATS * g
        out = list(packet)
        out[b] = out[b] & ~(((1 << bits) - 1) << lsb) | value << lsb
        return out

    assert all(regmap.unpack_fields(regmap.GROUP_LAYOUT, pk[regmap.LAYER_BEATS + regmap.GROUP_BEATS * g:
                                                           regmap.LAYER_BEATS + regmap.GROUP_BEATS * (g + 1)])
               ["spair"] for g in range(2))
    ok = regmap.pack_tile(random_program(0), 1, 0, {0: spikes.astype(np.uint8)}, CFG, 2)
    res, _ = harness.run(CFG, [pk, ok])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR
    b, lsb, _ = regmap.LAYER_LAYOUT["signed"]
    unsigned_layer = list(pk)
    unsigned_layer[b] &= ~(1 << lsb)           # only the groups' spair bits left
    neg_only = group_field(group_field(group_field(unsigned_layer, 1, "spair", 0), 0, "spair", 0),
                           0, "neg", 1)        # one neg bit left
    bad_pair = group_field(pk, 0, "nw", 1)     # a sign pair of one word per position
    b, lsb, _ = regmap.LAYER_LAYOUT["period"]
    long = list(pk)                  # period 8 > 2^3 - 1 steps (<= max_timesteps = 8)
    tb, tlsb, _ = regmap.LAYER_LAYOUT["timesteps"]
    assert tb == b and SIGNED_BUILD.max_timesteps == 8
    long[b] = long[b] & ~(0x1FF << lsb) & ~(0x1FF << tlsb) | (8 << lsb) | (8 << tlsb)
    res, _ = harness.run(CFG, [unsigned_layer, neg_only])
    assert [(r.status >> 8) & 0xFF for r in res] == [2, 2]
    res, _ = harness.run(SIGNED_BUILD, [long, bad_pair, pk])
    assert [(r.status >> 8) & 0xFF for r in res[:2]] == [2, 2]
    assert res[2].status & regmap.STATUS_DONE and not res[2].status & regmap.STATUS_ERROR


def test_split_launches_resume_bit_and_cycle_exact(built):
    """A layer whose T steps of input maps do not fit the buffers runs each image as
    launches of fewer steps (interface 1.10, `regmap.launch_chunks`), the later ones
    resuming the membranes: a batch of images bit-exact with golden, every launch
    cycle-exact with the formula and the model, with stalls too; `resume` on an image
    layer is refused (error code 2) and the next launch runs."""
    from sia.hw.rtl.cosim.program import run_images
    p = random_program(1, timesteps=8, chans=(8, 12))
    assert regmap.launch_chunks(p, 1, CFG) == [(0, 6), (6, 8)]
    imgs = np.stack([_image(p, s) for s in (3, 4)])
    r = run_images(p, imgs, CFG)                  # raises on any golden mismatch
    assert all(x["cycles"] == x["expected"] == x["model"] for x in r["launches"])
    assert sum(x["steps"][0] > 0 for x in r["launches"]) >= 2 * 2
    run_images(p, imgs, CFG, seed=2, p_valid=0.7, p_ready=0.6)
    pk = regmap.pack_tile(p, 0, 0, {-1: imgs[0]}, CFG)
    b, lsb, _ = regmap.LAYER_LAYOUT["resume"]
    bad = list(pk)
    bad[b] |= 1 << lsb
    res, _ = harness.run(CFG, [bad, pk])
    assert res[0].status & regmap.STATUS_ERROR and (res[0].status >> 8) & 0xFF == 2
    assert res[1].status & regmap.STATUS_DONE and not res[1].status & regmap.STATUS_ERROR


"""Split launches (interface 1.10, `regmap.launch_chunks`): a layer whose T steps of input
maps do not fit the buffers runs each image as launches of fewer steps, the later ones
resuming the membranes (and net counts). The chunking rule, the model against the RTL's
cycle formula over the host's schedule, the twin and the driver. The RTL co-simulation
is in tests/test_rtl_cosim.py (`test_split_launches_resume_bit_and_cycle_exact`,
`test_signed_spikes_bit_and_cycle_exact`)."""

import dataclasses

import numpy as np
import pytest
import torch

from sia import SiaError
from sia.deploy.backends import run, same_result
from sia.hw import regmap
from sia.hw.model import run as model_run
from sia.hw.model import trace
from sia.hw.model.report import rtl_refusals
from sia.hw.rtl.testprog import random_program, random_signed_program
from sia.snn import simulate

from rtl_common import SIGNED_BUILD


def _images(p, n=3):
    return np.random.default_rng(0).integers(0, 256, (n, *p.input_shape)).astype(np.uint8)


def test_chunks_are_even_the_last_shorter_image_layers_whole():
    p = random_signed_program(2, chans=(5, 11))
    chunks = [regmap.launch_chunks(p, i, SIGNED_BUILD) for i in range(len(p.layers))]
    assert chunks[0] == [(0, 6)]                          # the image layer: never split
    assert chunks[1] == [(0, 2), (2, 4), (4, 6)]           # four 0/1 planes of 8x8
    for ch in chunks:
        assert ch[0][0] == 0 and ch[-1][1] == 6
        assert all(a[1] == b[0] for a, b in zip(ch, ch[1:]))
        assert all((t1 - t0) % 2 == 0 for t0, t1 in ch[:-1])
    q = random_program(1, timesteps=7, chans=(8, 12))
    assert regmap.launch_chunks(q, 1, SIGNED_BUILD) == [(0, 6), (6, 7)]
    # what does fit is never split, and the RTL-refusal report lists no split layer
    assert regmap.launch_chunks(p, 1, dataclasses.replace(SIGNED_BUILD, buffer_timesteps=32)) == [(0, 6)]
    assert rtl_refusals(p, SIGNED_BUILD, 6) == []


def test_signed_counts_hold_the_whole_image_not_one_chunk():
    """A signed layer's net counts run over all T steps of an image, whatever the chunks:
    T above 2^K - 1 is refused even where each chunk would be short enough."""
    p = random_signed_program(2, timesteps=8, chans=(5, 11))
    with pytest.raises(SiaError, match=r"count at most 7 spikes .* T=8 > 7"):
        regmap.launch_chunks(p, 1, SIGNED_BUILD)
    with pytest.raises(SiaError, match=r"T=8 > 7"):
        regmap.check_launches(p, 1, SIGNED_BUILD)
    assert len(regmap.launch_chunks(p, 1, dataclasses.replace(SIGNED_BUILD, signed_count_bits=4))) == 4


def test_a_layer_whose_two_steps_do_not_fit_is_refused():
    p = random_signed_program(2, chans=(5, 11))
    tiny = dataclasses.replace(SIGNED_BUILD, buffer_timesteps=1)
    with pytest.raises(SiaError, match=r"layer 1 \(conv1\): input maps need \d+ beats > input buffer 64"):
        regmap.launch_chunks(p, 1, tiny)
    assert rtl_refusals(p, tiny, 6)


@pytest.mark.parametrize("weight_batch", [1, 3])
@pytest.mark.parametrize("signed", [False, True])
def test_model_equals_the_formula_over_the_hosts_schedule(signed, weight_batch):
    """The whole-run model's cycles == the RTL formula's, summed over the launches the host
    runs (per tile, per image, per chunk; weights resident after a tile's first launch)."""
    from sia.hw.rtl.cycles import launch_cycles
    p = (random_signed_program(2, chans=(5, 11)) if signed
         else random_program(1, timesteps=8, chans=(8, 12)))
    imgs = _images(p)
    r = model_run(p, torch.from_numpy(imgs), config=SIGNED_BUILD, weight_batch=weight_batch)
    g = simulate(p, torch.from_numpy(imgs), record=True)
    total, resumed = 0, 0
    for i, layer in enumerate(p.layers):
        chunks = regmap.launch_chunks(p, i, SIGNED_BUILD)
        for k in range(regmap.num_tiles(p, i, SIGNED_BUILD)):
            for b in range(len(imgs)):
                ins = {-1: imgs[b]}
                ins.update({j: g.traces[x.name]["spikes"][:, b].numpy().astype(np.int8)
                            for j, x in enumerate(p.layers) if x.kind == "if"})
                for c, (t0, t1) in enumerate(chunks):
                    x = {s: v if s == -1 else v[t0:t1] for s, v in ins.items()}
                    total += launch_cycles(p, i, k, x, SIGNED_BUILD, t1 - t0,
                                           keep=b % weight_batch != 0 or c > 0, resume=c > 0)
                    resumed += c > 0
    assert resumed > 0
    assert int(r.image_cycles.sum()) == total
    np.testing.assert_array_equal(r.predictions, g.predictions)


def test_the_trace_refuses_split_launches():
    p = random_signed_program(2, chans=(5, 11))
    with pytest.raises(SiaError, match="split over steps"):
        trace(p, _images(p, 1)[0], config=SIGNED_BUILD)


@pytest.mark.parametrize("signed", [False, True])
def test_twin_and_driver_run_split_launches(signed):
    """Through the driver and the twin: bit-exact with golden, CYCLES equal to the model's,
    one image at a time and in weight batches; a bitstream before interface 1.10 (which
    would restart the membranes) is refused when the image needs split launches."""
    from sia.deploy import transport as tp
    from sia.deploy.image import build_image
    from sia.deploy.pynq_driver import SiaDriver
    from sia.deploy.twin_device import PythonSia
    p = (random_signed_program(2, chans=(5, 11)) if signed
         else random_program(1, timesteps=8, chans=(8, 12)))
    x = _images(p)
    g = run(p, x, "golden")
    for batch in (1, 3):
        r = run(p, x, "twin", cfg=SIGNED_BUILD, batch=batch)
        assert same_result(r, g) == []
        assert r.cycles == run(p, x, "model", cfg=SIGNED_BUILD, batch=batch).cycles
    dev = PythonSia(SIGNED_BUILD)
    reg = dev.reg_read
    dev.reg_read = lambda off: 0x0001_0009 if off == regmap.REGISTERS["VERSION"][0] else reg(off)
    d = SiaDriver(tp.TwinTransport(dev, length_width=26), timeout_s=0.3)
    with pytest.raises(SiaError, match="cannot resume"):
        d.load(build_image(p, SIGNED_BUILD))


def test_dse_points_of_signed_and_split_programs_equal_direct_runs():
    """`sia dse` (which re-times a run's scanned words for each build) gives the direct
    model run's cycles for a signed program on builds with and without split launches,
    with and without phase pairs (which change the groups that run as sign pairs)."""
    from sia.hw.model import dse, report
    p = random_signed_program(2, chans=(5, 11))
    imgs = torch.from_numpy(_images(p))
    for buf in (8, 32):      # layers 1 and 3 split at 8 maps, nothing at 32
        base = dataclasses.replace(SIGNED_BUILD, buffer_timesteps=buf)
        rows = dse.sweep(p, imgs, pes=(4, 8), events=(2,), timesteps=(6,), weight_bits=(8,),
                         batches=(1, 3), base=base, phase_pairs=(False, True))
        assert rows and all(q["fits"] for q in rows)
        assert {q["phase_pairs"] for q in rows} == {False, True}
        for q in rows:
            cfg = dataclasses.replace(base, pes=q["pes"], phase_pairs=q["phase_pairs"])
            s = report.summarize(model_run(p, imgs, T=6, config=cfg, weight_batch=q["weight_batch"]))
            assert q["latency_cycles"] == pytest.approx(s["latency_cycles"]["mean"])


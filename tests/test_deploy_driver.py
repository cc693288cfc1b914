"""The PYNQ driver's register and DMA sequence against the simulated AXI DMA twin:
bit-exact results, and the sequences that hang real boards."""

import functools

import numpy as np
import pytest

from deploy_common import images, program
from sia import SiaError
from sia.deploy import transport as tp
from sia.deploy.backends import run, same_result, twin_driver
from sia.deploy.image import build_image
from sia.deploy.pynq_driver import SiaDriver, SiaTimeout
from sia.deploy.twin_device import PythonSia
from sia.hw import regmap
from sia.hw.params import SIAConfig

REG = {n: off for n, (off, _, _) in regmap.REGISTERS.items()}


@pytest.fixture(scope="module")
def prog():
    return program()


@pytest.fixture(scope="module")
def img(prog):
    return build_image(prog, SIAConfig())


def driver(img, length_width=26, timeout_s=0.3, device=None, **kw):
    dev = device or PythonSia(SIAConfig())
    t = tp.TwinTransport(dev, length_width=length_width, **kw)
    d = SiaDriver(t, timeout_s=timeout_s)
    return d, t, dev


def test_digits_on_twin_bit_exact_with_golden(prog):
    x, y = images(4)
    g = run(prog, x, "golden", labels=y)
    w = run(prog, x, "twin", labels=y)
    assert same_result(w, g) == []
    assert all(v > 0 for k, v in g.spikes.items() if k != prog.layers[-1].name)  # a live network
    assert w.predictions.tolist() == g.predictions.tolist()


def test_register_and_dma_sequence(img):
    d, t, _ = driver(img)
    d.load(img)
    t.log.clear()
    x, _ = images(1)
    d.run(x)
    writes = [(kind, off) for kind, off, _ in t.log if kind.endswith("wr")]
    # per launch: S2MM armed (DA then LENGTH) before START, START before MM2S LENGTH
    for k in range(len(img.launches)):
        i_da = [i for i, w in enumerate(writes) if w == ("dma_wr", tp.S2MM_DA)][k]
        i_len = [i for i, w in enumerate(writes) if w == ("dma_wr", tp.S2MM_LENGTH)][k]
        i_go = [i for i, w in enumerate(writes) if w == ("sia_wr", REG["CTRL"])][k]
        i_mm = [i for i, w in enumerate(writes) if w == ("dma_wr", tp.MM2S_LENGTH)][k]
        assert i_da < i_len < i_go < i_mm
    assert t.violations == []


def test_identify_and_refuse_other_accelerator(img):
    d, t, _ = driver(img, device=PythonSia(SIAConfig(pes=32, v_bits=28)))
    assert d.identify().pes == 32
    with pytest.raises(SiaError, match=r"another SIA parameter set: pes=64 \(accelerator: 32\)"):
        d.load(img)


def test_wrong_id_is_reported(img):
    class NotSia(PythonSia):
        def reg_read(self, off):
            return 0xDEADBEEF if off == REG["ID"] else super().reg_read(off)
    d, _, _ = driver(img, device=NotSia())
    with pytest.raises(SiaError, match="no SIA accelerator at this address: ID reads 0xDEADBEEF"):
        d.load(img)


def test_interface_1_1_bitstream_reads_full_map_membranes():
    """A 1.1 build has no PARAM_MEMBRANE_POSITIONS (reads 0): its banks held full maps."""
    from sia.deploy.regmap_bridge import read_hw_config
    dev = PythonSia()
    old = {REG["VERSION"]: 0x0001_0001, REG["PARAM_MEMBRANE_POSITIONS"]: 0}
    cfg = read_hw_config(lambda off: old.get(off, dev.reg_read(off)))
    assert cfg.membrane_positions == cfg.max_height * cfg.max_width == 1024
    assert read_hw_config(dev.reg_read).membrane_positions == SIAConfig().membrane_positions


def test_default_14_bit_length_register_splits_the_packet(img, prog):
    """AXI DMA's default 14-bit length register: 16383 bytes per transfer. The classifier's
    packet (~75 KB) goes out as several MM2S transfers, each <= 16383 bytes."""
    d, t, _ = driver(img, length_width=14)
    d.load(img)
    x, y = images(2)
    r = d.run(x, y)
    assert same_result(r, run(prog, x, "golden")) == []
    lengths = [v for kind, off, v in t.log if kind == "dma_wr" and off == tp.MM2S_LENGTH]
    assert max(lengths) <= 16383 and len(lengths) > 2 * len(img.launches)
    assert t.violations == []


def test_length_register_too_narrow_refused_before_running(img):
    d, t, _ = driver(img, length_width=10)           # outputs (2-4 KB) cannot be split
    with pytest.raises(SiaError, match=r"largest tile output is \d+ bytes but the AXI DMA's "
                                       r"buffer length register is 10 bits \(1023 bytes max.*"
                                       r"--dma-length-width 23"):
        d.load(img)
    d, t, _ = driver(img, length_width=14)
    d.split_mm2s = False
    with pytest.raises(SiaError, match=r"largest tile packet is \d+ bytes.* 14 bits \(16383"):
        d.load(img)
    assert not [e for e in t.log if e[1] == tp.MM2S_LENGTH]        # nothing was started


def test_length_register_truncation_hangs_and_times_out(img):
    """Driver believes 26 bits, the bitstream has 16: the hardware keeps the low bits of
    LENGTH, the packet arrives short and the launch never completes."""
    d, t, _ = driver(img, length_width=16)
    d.length_width = 26
    d.load(img)
    x, _ = images(1)
    with pytest.raises(SiaTimeout, match=r"S2MM \(receive\) did not complete within 0.3 s"):
        d.run(x)
    assert any("exceeds the 16-bit buffer length register" in v for v in t.violations)


def test_missing_tlast_times_out_with_clear_error(img):
    d, t, _ = driver(img, drop_tlast=True)
    d.load(img)
    x, _ = images(1)
    with pytest.raises(SiaTimeout, match="S2MM.*no TLAST"):
        d.run(x)


def test_output_longer_than_armed_receive_is_dmainterr(img):
    d, t, _ = driver(img)
    d.load(img)
    x, _ = images(1)
    real = d.launch

    def short_receive(k, inputs, keep=False, images=1):
        import sia.deploy.regmap_bridge as rb
        n = rb.output_nbytes(d.image, k)
        orig = rb.output_nbytes
        rb.output_nbytes = lambda image, kk, steps=None: n - 8
        try:
            return real(k, inputs, keep, images)
        finally:
            rb.output_nbytes = orig
    d.launch = short_receive
    with pytest.raises(SiaError, match=r"S2MM \(receive\) error: .*DMAIntErr"):
        d.run(x)


def test_send_before_arming_receive_stalls(img):
    """The wrong order (MM2S, wait, then S2MM) on the twin: the violation is recorded and
    the wait on MM2S times out, as the board hangs."""
    d, t, _ = driver(img)
    d.load(img)
    static = img.tile_static(0)
    x, _ = images(1)
    import sia.deploy.regmap_bridge as rb
    packet = static + rb.pack_inputs(img, 0, {}, x[0])
    np.asarray(d._send)[:len(packet)] = np.frombuffer(packet, np.uint8)
    d._send.flush()
    t.sia_write(REG["CTRL"], regmap.CTRL_START)
    t.dma_write(tp.MM2S_SA, d._send.physical_address)
    t.dma_write(tp.MM2S_LENGTH, len(packet))
    import time
    with pytest.raises(SiaTimeout, match="MM2S"):
        d._wait_channel(tp.MM2S_DMASR, "MM2S (send)", time.monotonic() + 0.2, "arm S2MM first")
    assert any("before an S2MM receive was armed" in v for v in t.violations)


def test_missing_cache_flush_is_caught(img):
    """Without flush() the DMA reads stale DDR: the accelerator sees no header magic."""
    d, t, _ = driver(img)
    d.load(img)
    type(d._send)  # TwinBuffer
    d._send.flush = lambda: None
    x, _ = images(1)
    with pytest.raises(SiaError, match="accelerator reported error 1 \\(bad header magic\\)"):
        d.run(x)


def test_driver_needs_an_image_and_checks_images(img):
    d, _, _ = driver(img)
    with pytest.raises(SiaError, match="no program image loaded"):
        d.run(np.zeros((1, 1, 8, 8), np.uint8))
    d.load(img)
    with pytest.raises(SiaError, match=r"images must be uint8 \[N, 1, 8, 8\]"):
        d.run(np.zeros((1, 1, 8, 8), np.float32))


def test_twin_driver_and_backend_errors(prog):
    x, _ = images(1)
    with pytest.raises(SiaError, match="unknown backend 'fpga'"):
        run(prog, x, "fpga")
    with pytest.raises(SiaError, match="pynq"):
        run(prog, x, "pynq")
    drv = twin_driver(prog)
    assert drv.run(x).logits.shape == (1, 10)


def test_model_backend_same_result(prog):
    x, y = images(4)
    m = run(prog, x, "model", labels=y)
    assert same_result(m, run(prog, x, "golden", labels=y)) == [] and m.cycles > 0


@pytest.mark.parametrize("pes,phase", [(64, False), (4, False), (4, True)])
def test_every_op_on_twin_bit_exact(pes, phase):
    """Strided, 1x1, multi-group, identity, pooled and dense groups (sia.hw.rtl.testprog),
    one tile and many tiles per layer; phase pairs (its stride-2 3x3 conv) with the
    identity shortcut in the drain; with and without row prefetch; the twin's CYCLES
    equal the model's."""
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    p = testprog.random_program(0)
    x = np.random.default_rng(0).integers(0, 256, (2, *p.input_shape)).astype(np.uint8)
    cfg = SIAConfig(pes=pes, phase_pairs=phase, identity_drain=phase,
                    row_prefetch=pes == 64 or phase)
    r = run(p, x, "twin", cfg=cfg)
    assert same_result(r, run(p, x, "golden")) == []
    assert r.cycles == run(p, x, "model", cfg=cfg).cycles


def _set_drain(pk, group):
    """A tile packet with the `drain` bit set on descriptor `group` (a bad packet)."""
    b, lsb, _ = regmap.GROUP_LAYOUT["drain"]
    pk = list(pk)
    pk[regmap.LAYER_BEATS + regmap.GROUP_BEATS * group + b] |= 1 << lsb
    return pk


@pytest.mark.parametrize("option,minor,layer", [("phase_pairs", 4, 1), ("identity_drain", 5, 2)])
def test_build_option_register_and_refusal(option, minor, layer):
    """Builds before interface 1.`minor` lack the option (and its register); a build
    without it refuses a packet that uses it (phase groups; a drain group) with error
    code 2, like the RTL; every build refuses a drain bit on a group other than 0."""
    from sia.deploy.regmap_bridge import read_hw_config
    on = SIAConfig(**{option: True})
    dev = PythonSia(on)
    assert getattr(read_hw_config(dev.reg_read), option)
    old = {REG["VERSION"]: 0x0001_0000 + minor - 1, REG[f"PARAM_{option.upper()}"]: 0}
    assert not getattr(read_hw_config(lambda off: old.get(off, dev.reg_read(off))), option)
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    p = testprog.random_program(0)
    spikes = np.zeros((p.timesteps, *p.layers[layer - 1].shape), np.uint8)
    pk = regmap.pack_tile(p, layer, 0, {layer - 1: spikes}, on)
    assert _device_launch(PythonSia(SIAConfig()), pk)[0] == 2
    assert _device_launch(PythonSia(on), pk)[0] == 0
    if option == "identity_drain":
        assert _device_launch(PythonSia(on), _set_drain(pk, 1))[0] == 2


def test_row_prefetch_register():
    """PARAM_ROW_PREFETCH tells the driver which cycle formula the bitstream follows;
    builds before interface 1.5 had no row prefetch."""
    from sia.deploy.regmap_bridge import read_hw_config
    for on in (False, True):
        dev = PythonSia(SIAConfig(row_prefetch=on))
        assert read_hw_config(dev.reg_read).row_prefetch is on
    old = {REG["VERSION"]: 0x0001_0004}
    assert not read_hw_config(lambda off: old.get(off, dev.reg_read(off))).row_prefetch


def test_pool_hold_register_and_twin_cycles():
    """PARAM_POOL_HOLD tells the driver the cycle formula (a 1.5 bitstream has no pool
    hold); the twin device's CYCLES follow it: fewer on a pooled program, same outputs."""
    from sia.deploy.regmap_bridge import read_hw_config
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    cycles, outs = {}, {}
    for on in (False, True):
        dev = PythonSia(SIAConfig(pes=4, pool_hold=on))
        assert read_hw_config(dev.reg_read).pool_hold is on
        p = testprog.random_program(3)       # layer 3: a conv over a 2x2-pooled source
        # its input: layer 0's spikes (random, as the packet does not care where they came from)
        spikes = np.random.default_rng(3).integers(0, 2, (p.timesteps, *p.layers[0].shape))
        pk = regmap.pack_tile(p, 3, 0, {0: spikes.astype(np.uint8)}, dev.cfg)
        err, outs[on] = _device_launch(dev, pk)
        assert err == 0
        cycles[on] = dev.reg_read(REG["CYCLES_LO"])
    assert outs[True] == outs[False] and cycles[True] < cycles[False]
    old = {REG["VERSION"]: 0x0001_0005}
    dev = PythonSia(SIAConfig(pes=4, pool_hold=True))
    assert not read_hw_config(lambda off: old.get(off, dev.reg_read(off))).pool_hold


def test_phase_quads_register_refusal_and_twin():
    """PARAM_PHASE_QUADS (interface 1.7): a 1.6 bitstream has none; a build without quads
    refuses a quad packet (error code 2); the twin runs it with the same outputs as the
    pair packet of the same launch, in fewer cycles."""
    from sia.deploy.regmap_bridge import read_hw_config
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    pairs = SIAConfig(pes=4, phase_pairs=True)
    quads = SIAConfig(pes=4, phase_pairs=True, phase_quads=True)
    dev = PythonSia(quads)
    assert read_hw_config(dev.reg_read).phase_quads
    old = {REG["VERSION"]: 0x0001_0006, REG["PARAM_PHASE_QUADS"]: 0}
    assert not read_hw_config(lambda off: old.get(off, dev.reg_read(off))).phase_quads
    p = testprog.random_program(2)            # layer 1: a stride-2 3x3 conv over 8x8 maps
    spikes = np.random.default_rng(2).integers(0, 2, (p.timesteps, *p.layers[0].shape))
    outs, cycles = {}, {}
    for cfg in (pairs, quads):
        pk = regmap.pack_tile(p, 1, 0, {0: spikes.astype(np.uint8)}, cfg)
        d = PythonSia(cfg)
        err, outs[cfg.phase_quads] = _device_launch(d, pk)
        assert err == 0
        cycles[cfg.phase_quads] = d.reg_read(REG["CYCLES_LO"])
        if cfg.phase_quads:
            assert _device_launch(PythonSia(pairs), pk)[0] == 2
    assert outs[True] == outs[False] and cycles[True] < cycles[False]


def test_narrow_stream_register_refusal_and_twin():
    """PARAM_NARROW_STREAM (interface 1.8): a 1.7 bitstream has none; a build without it
    refuses a packet with narrow groups (error code 2); the twin runs the packed packet
    (fewer beats) with the same outputs, in fewer cycles when the stream was the limit."""
    from sia.deploy.regmap_bridge import read_hw_config
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    plain, narrow = SIAConfig(pes=4), SIAConfig(pes=4, narrow_stream=True)
    dev = PythonSia(narrow)
    assert read_hw_config(dev.reg_read).narrow_stream
    old = {REG["VERSION"]: 0x0001_0007, REG["PARAM_NARROW_STREAM"]: 0}
    assert not read_hw_config(lambda off: old.get(off, dev.reg_read(off))).narrow_stream
    p = testprog.random_program(2)           # layer 2: a 3x3 conv + identity over 7 channels
    spikes = np.random.default_rng(2).integers(0, 2, (p.timesteps, *p.layers[1].shape))
    outs, cycles, sizes = {}, {}, {}
    for cfg in (plain, narrow):
        pk = regmap.pack_tile(p, 2, 0, {1: spikes.astype(np.uint8)}, cfg)
        d = PythonSia(cfg)
        err, outs[cfg.narrow_stream] = _device_launch(d, pk)
        assert err == 0
        cycles[cfg.narrow_stream], sizes[cfg.narrow_stream] = d.reg_read(REG["CYCLES_LO"]), len(pk)
        if cfg.narrow_stream:
            assert _device_launch(PythonSia(plain), pk)[0] == 2
    assert outs[True] == outs[False] and sizes[True] < sizes[False]
    assert cycles[True] <= cycles[False]


def _device_launch(dev, beats):
    """One launch on a twin device through its registers and streams: (error code or 0,
    output bytes)."""
    dev.reg_write(REG["CTRL"], regmap.CTRL_START)
    dev.stream_in(np.asarray(beats, dtype="<u8").tobytes(), True)
    out = b""
    while dev.output_pending():
        out += dev.stream_out(1 << 20)[0]
    st = dev.reg_read(REG["STATUS"])
    return (st >> 8) & 0xFF if st & regmap.STATUS_ERROR else 0, out


def test_twin_resident_weights_like_the_rtl():
    """keep=1 launches reuse the last full load's weights (same output beats as full
    launches); keep=1 with nothing resident, or after SOFT_RESET, is error code 3."""
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    cfg = SIAConfig(pes=4)
    p = testprog.random_program(1)
    x = np.random.default_rng(1).integers(0, 256, (2, *p.input_shape)).astype(np.uint8)
    dev = PythonSia(cfg)

    launch = functools.partial(_device_launch, dev)

    pk = [regmap.pack_tile(p, 0, 0, {-1: x[b]}, cfg) for b in range(2)]
    kp = [regmap.pack_tile(p, 0, 0, {-1: x[b]}, cfg, keep=True) for b in range(2)]
    assert launch(kp[0])[0] == 3
    assert launch(pk[0])[0] == 0
    code, kept = launch(kp[1])
    assert code == 0 and kept == launch(pk[1])[1]
    dev.reg_write(REG["CTRL"], regmap.CTRL_SOFT_RESET)
    assert launch(kp[1])[0] == 3


def test_driver_batches_reuse_weights(prog):
    """run(batch=B): launch-major over chunks of B images, keep launches after the first;
    results bit-exact with golden, and the MM2S traffic shrinks by the weights."""
    x, y = images(5)
    d1, _, dev1 = driver(None)
    d3, _, dev3 = driver(None)
    for d in (d1, d3):
        d.load(build_image(prog, SIAConfig()))
    r1, r3 = d1.run(x, y), d3.run(x, y, batch=3)
    assert same_result(r3, run(prog, x, "golden", labels=y)) == [] and same_result(r1, r3) == []
    assert dev3.bytes_in < dev1.bytes_in
    with pytest.raises(SiaError, match="batch"):
        d3.run(x, y, batch=0)


def test_twin_cycle_counter_equals_the_model(prog):
    """The Python twin's CYCLES register = the RTL's cycle formula for each packet it
    gets, so the driver's cycle total over the twin equals the model's, batched too."""
    x, y = images(4)
    for batch in (1, 3):
        t = run(prog, x, "twin", labels=y, batch=batch)
        assert t.cycles == run(prog, x, "model", batch=batch).cycles > 0


def test_twin_runs_packed_launches():
    """The Python twin takes packed launches (interface 1.3) like the RTL: the packed
    output is the images' outputs in order, CYCLES is the formula's; a packed
    integrator launch is refused (error code 2)."""
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    from sia.hw.rtl.cycles import launch_cycles
    from sia.snn import simulate
    cfg = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128, max_timesteps=8)
    p = testprog.random_program(1, chans=(8, 12))
    x = np.random.default_rng(2).integers(0, 256, (2, *p.input_shape)).astype(np.uint8)
    g = simulate(p, x, record=True)
    li = next(i for i in range(len(p.layers)) if regmap.launch_images(p, i, cfg) > 1)
    ins = [{s.source: g.traces[p.layers[s.source].name]["spikes"][:, b].numpy()
            for s in p.layers[li].inputs} for b in range(2)]
    dev = PythonSia(cfg)

    launch = functools.partial(_device_launch, dev)

    singles = [launch(regmap.pack_tile(p, li, 0, ins[b], cfg))[1] for b in range(2)]
    code, both = launch(regmap.pack_tile(p, li, 0, ins, cfg))
    assert code == 0 and both == singles[0] + singles[1]
    cyc = dev.reg_read(REG["CYCLES_LO"]) | dev.reg_read(REG["CYCLES_HI"]) << 32
    assert cyc == launch_cycles(p, li, 0, ins, cfg)
    fc = len(p.layers) - 1
    pk = regmap.pack_tile(p, fc, 0, {s.source: np.zeros((p.timesteps,) + p.source_shape(s.source),
                                                        np.uint8) for s in p.layers[fc].inputs}, cfg)
    b, lsb, _ = regmap.LAYER_LAYOUT["period"]
    pk[b] = pk[b] & ~(0x1FF << lsb) | (1 << lsb)
    assert launch(pk)[0] == 2


def test_driver_packed_launches(prog):
    """run(batch=B, launch_images=0): the driver packs the images of a chunk into as few
    launches as the buffers allow; results bit-exact with golden, the twin's cycle total
    equals the model's for the same schedule and is below the unpacked one."""
    x, y = images(5)
    packed = run(prog, x, "twin", labels=y, batch=3, launch_images=0)
    plain = run(prog, x, "twin", labels=y, batch=3)
    assert same_result(packed, run(prog, x, "golden", labels=y)) == []
    assert packed.cycles == run(prog, x, "model", batch=3, launch_images=0).cycles
    assert 0 < packed.cycles < plain.cycles
    with pytest.raises(SiaError, match="launch_images"):
        run(prog, x, "twin", batch=3, launch_images=-1)


def test_signed_spikes_on_the_twin_and_its_register():
    """Signed IF neurons (interface 1.9) through the driver and the twin: +1 / -1 spikes
    and logits bit-exact with the golden simulator, CYCLES equal to the model's, batches
    with resident weights and packed launches included; PARAM_SIGNED_COUNT_BITS reads 0
    on a 1.8 bitstream; a build without it refuses the program's packets (error code 2),
    and the driver refuses the program in one line before any launch."""
    from sia.deploy.regmap_bridge import read_hw_config
    testprog = pytest.importorskip("sia.hw.rtl.testprog")
    p = testprog.random_signed_program(0)
    x = np.random.default_rng(0).integers(0, 256, (3, *p.input_shape)).astype(np.uint8)
    cfg = SIAConfig(pes=4, signed_count_bits=3)
    g = run(p, x, "golden")
    assert sum(g.spikes.values()) > 0
    for launch_images in (1, 0):
        r = run(p, x, "twin", cfg=cfg, batch=3, launch_images=launch_images)
        assert same_result(r, g) == []
        assert r.cycles == run(p, x, "model", cfg=cfg, batch=3, launch_images=launch_images).cycles
    dev = PythonSia(cfg)
    assert read_hw_config(dev.reg_read).signed_count_bits == 3
    old = {REG["VERSION"]: 0x0001_0008, REG["PARAM_SIGNED_COUNT_BITS"]: 0}
    assert read_hw_config(lambda off: old.get(off, dev.reg_read(off))).signed_count_bits == 0
    spikes = np.zeros((p.timesteps, *p.layers[0].shape), np.int8)
    pk = regmap.pack_tile(p, 1, 0, {0: spikes}, cfg)
    assert _device_launch(PythonSia(SIAConfig(pes=4)), pk)[0] == 2
    assert _device_launch(PythonSia(cfg), pk)[0] == 0
    # a sign pair (1.12) that is not one word pair per position: error code 2, as in the RTL
    g = next(j for j in range(regmap.MAX_GROUPS) if regmap.unpack_fields(
        regmap.GROUP_LAYOUT, pk[regmap.LAYER_BEATS + regmap.GROUP_BEATS * j:])["spair"])
    b, lsb, bits = regmap.GROUP_LAYOUT["nw"]
    bad = list(pk)
    b += regmap.LAYER_BEATS + regmap.GROUP_BEATS * g
    bad[b] = bad[b] & ~(((1 << bits) - 1) << lsb) | 1 << lsb
    assert _device_launch(PythonSia(cfg), bad)[0] == 2
    with pytest.raises(SiaError, match="signed_count_bits > 0"):
        run(p, x, "twin", cfg=SIAConfig(pes=4))

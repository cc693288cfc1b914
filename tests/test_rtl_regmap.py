"""Register map and tile-packet format (pure Python, no simulator)."""

import numpy as np
import pytest

from sia import SiaError
from sia.hw import regmap
from sia.hw.params import SIAConfig
from sia.hw.rtl.testprog import random_program


def test_bitstream_roundtrip():
    vals = [-3, 7, 0, -128, 127, 5, -1]
    beats = regmap.bits_to_beats(vals, 8)
    assert len(beats) == 1
    assert regmap.beats_to_values(beats, 8, len(vals)) == vals
    vals = list(range(-50, 50, 7))
    assert regmap.beats_to_values(regmap.bits_to_beats(vals, 24), 24, len(vals)) == vals


def test_fields_fit_beats():
    for layout in (regmap.LAYER_LAYOUT, regmap.GROUP_LAYOUT):
        for _, (b, lsb, bits) in layout.items():
            assert lsb + bits <= 64
    hdr = regmap._pack_fields(regmap.LAYER_LAYOUT, regmap.LAYER_BEATS,
                              {"magic": regmap.HDR_MAGIC, "timesteps": 8, "h_out": 32})
    f = regmap.unpack_fields(regmap.LAYER_LAYOUT, hdr)
    assert f["magic"] == regmap.HDR_MAGIC and f["timesteps"] == 8 and f["h_out"] == 32
    with pytest.raises(SiaError):
        regmap._pack_fields(regmap.LAYER_LAYOUT, regmap.LAYER_BEATS, {"timesteps": 1 << 9})


def test_register_map_json():
    rm = regmap.register_map(SIAConfig())
    regs = rm["registers"]
    offs = [r["offset"] for r in regs.values()]
    assert len(offs) == len(set(offs))
    assert regs["ID"]["value"] == 0x53494131
    assert regs["PARAM_PES"]["value"] == 64
    # docs/architecture.md holds the generated register map and descriptor layouts
    from pathlib import Path
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    assert regmap.docs_markdown() in doc


def test_pack_counts_and_output_roundtrip():
    p = random_program(3)
    cfg = SIAConfig(pes=4, max_width=8, max_height=8, max_channels_in=64, max_timesteps=4)
    rng = np.random.default_rng(0)
    ins = {-1: rng.integers(0, 256, p.input_shape).astype(np.uint8)}
    for i, layer in enumerate(p.layers):
        if layer.kind == "if":
            ins[i] = (rng.random((p.timesteps,) + layer.shape) < 0.3).astype(np.uint8)
    for i, layer in enumerate(p.layers):
        for k in range(regmap.num_tiles(p, i, cfg)):
            info = regmap.tile_info(p, i, k, cfg)
            beats = regmap.pack_tile(p, i, k, ins, cfg)
            assert len(beats) == (info.header_beats + info.weight_beats + info.neuron_beats
                                  + info.spike_beats)
            assert all(0 <= b < 1 << 64 for b in beats)
            kept = regmap.pack_tile(p, i, k, ins, cfg, keep=True)
            assert kept[info.header_beats:] == beats[-info.spike_beats:]
            assert regmap.unpack_fields(regmap.LAYER_LAYOUT, kept[:2])["keep"] == 1
            if layer.kind == "if":
                spk = (rng.random((p.timesteps, info.channels) + info.out_shape) < 0.5)
                out = []
                H, W = info.out_shape
                # drain order: (t, y, x); image layers (y, t, x)
                order = ([(t, y, x) for y in range(H) for t in range(p.timesteps) for x in range(W)]
                         if info.image else
                         [(t, y, x) for t in range(p.timesteps) for y in range(H) for x in range(W)])
                for t, y, x in order:
                    out.append(sum(int(spk[t, c, y, x]) << c for c in range(info.channels)))
                back = regmap.unpack_output(p, i, k, out, cfg)
                assert np.array_equal(back, spk.astype(np.uint8))


def test_layer_that_does_not_fit_is_refused():
    p = random_program(0)
    cfg = SIAConfig(pes=4, max_width=4, max_height=4)
    with pytest.raises(SiaError, match="exceeds max"):
        regmap.tile_info(p, 0, 0, cfg)


def test_buffer_depth_follows_buffer_timesteps():
    """The spike buffers hold buffer_timesteps full maps: a two-group (residual) layer
    at T steps needs 2T of them; the refusal names the beats, the bigger build accepts."""
    p = random_program(1)      # layer 2: two groups, 4x4 sources and output
    need = regmap._groups(p, 2, 0, SIAConfig(), p.timesteps)[2]
    small = SIAConfig(pes=8, max_width=4, max_height=4, buffer_timesteps=p.timesteps)
    big = SIAConfig(pes=8, max_width=4, max_height=4, buffer_timesteps=2 * p.timesteps)
    assert need == 2 * regmap.buffer_beats(small)[0] == regmap.buffer_beats(big)[0]
    with pytest.raises(SiaError, match="input buffer"):
        regmap.check_layer(p, 2, small)
    regmap.check_layer(p, 2, big)
    with pytest.raises(SiaError, match="buffer_timesteps"):
        SIAConfig(buffer_timesteps=0)


def test_packed_launch_packets():
    """A packed launch (interface 1.3) carries k images: timesteps = k*T, period = T,
    the images' input sections one after the other, the output split back per image;
    image layers and integrators are never packed, and the buffers bound k."""
    p = random_program(1, chans=(8, 12))
    cfg = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128, max_timesteps=8)
    T = p.timesteps
    rng = np.random.default_rng(1)
    ks = [regmap.launch_images(p, i, cfg) for i in range(len(p.layers))]
    for i, layer in enumerate(p.layers):
        image = any(s.source == -1 for s in layer.inputs)
        if image or layer.kind != "if":
            assert ks[i] == 1
            with pytest.raises(SiaError, match="packed launches"):
                regmap.check_layer(p, i, cfg, T, 2)
            continue
        k = ks[i]
        sbeats = regmap.tile_info(p, i, 0, cfg).spike_beats
        assert k * sbeats <= regmap.buffer_beats(cfg)[0] < (k + 1) * sbeats or k * T > 511 - T
        with pytest.raises(SiaError, match="buffer"):
            regmap.check_layer(p, i, cfg, T, k + 1)
        assert regmap.launch_images(p, i, cfg, limit=2) == min(2, k)
        if k < 2:
            continue
        per = [{s.source: (rng.random((T,) + p.source_shape(s.source)) < 0.3).astype(np.uint8)
                for s in layer.inputs} for _ in range(2)]
        one = [regmap.pack_tile(p, i, 0, x, cfg) for x in per]
        both = regmap.pack_tile(p, i, 0, per, cfg, keep=True)
        info = regmap.tile_info(p, i, 0, cfg, images=2)
        hdr = regmap.unpack_fields(regmap.LAYER_LAYOUT, both[:regmap.LAYER_BEATS])
        assert (hdr["timesteps"], hdr["period"], hdr["keep"]) == (2 * T, T, 1)
        assert hdr["sbeats"] == info.spike_beats == 2 * sbeats
        assert both[info.header_beats:] == one[0][-sbeats:] + one[1][-sbeats:]
        out = list(range(info.out_beats))
        a, b = regmap.unpack_output(p, i, 0, out, cfg, images=2)
        half = info.out_beats // 2
        assert np.array_equal(a, regmap.unpack_output(p, i, 0, out[:half], cfg))
        assert np.array_equal(b, regmap.unpack_output(p, i, 0, out[half:], cfg))
    assert max(ks) > 1


def test_narrow_weight_stream():
    """Layers whose weights fit weight_bits / 2 stream them at that width (wnarrow): half
    the weight beats, the same values once sign-extended; 8-bit layers, P = 1 or an odd
    weight_bits keep the full width."""
    p = random_program(1, chans=(8, 12))
    cfg = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128, max_timesteps=8)
    ins = {-1: np.zeros(p.input_shape, np.uint8)}
    for i, layer in enumerate(p.layers):
        if layer.kind == "if":
            ins[i] = np.zeros((p.timesteps,) + layer.shape, np.uint8)
    seen = set()
    for i, layer in enumerate(p.layers):
        narrow = all(s.weight_bits <= 4 for s in layer.inputs)
        seen.add(narrow)
        assert regmap.narrow_weights(p, i, cfg) == narrow
        assert not regmap.narrow_weights(p, i, SIAConfig(pes=1))
        assert not regmap.narrow_weights(p, i, SIAConfig(weight_bits=9))
        info = regmap.tile_info(p, i, 0, cfg)
        wb = 4 if narrow else 8
        assert info.weight_beats == -(-info.weight_rows * cfg.pes * 9 * wb // 64)
        beats = regmap.pack_tile(p, i, 0, ins, cfg)
        assert regmap.unpack_fields(regmap.LAYER_LAYOUT, beats[:2])["wnarrow"] == int(narrow)
        h = info.header_beats
        vals = regmap.beats_to_values(beats[h:h + info.weight_beats], wb,
                                      info.weight_rows * cfg.pes * 9)
        full = regmap.pack_tile(p, i, 0, ins, SIAConfig(pes=8, max_width=8, max_height=8,
                                                        max_channels_in=128, max_timesteps=8,
                                                        weight_bits=9))
        n9 = info.weight_rows * cfg.pes * 9
        assert vals == regmap.beats_to_values(full[h:h + -(-n9 * 9 // 64)], 9, n9)
    assert seen == {True, False}

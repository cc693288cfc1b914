"""Program image: layout, round trip, and refusal of corrupted or mismatched images."""

import struct

import numpy as np
import pytest

from deploy_common import program
from sia import SiaError
from sia.deploy import image as im
from sia.deploy import regmap_bridge as rb
from sia.deploy.tiles import plan
from sia.hw import regmap
from sia.hw.params import SIAConfig


@pytest.fixture(scope="module")
def packed():
    p = program()
    img = im.build_image(p, SIAConfig())
    return p, img, img.to_bytes()


def test_header_fields_and_round_trip(packed, tmp_path):
    p, img, data = packed
    magic, version, hsize, rmv, cid, ntiles = struct.unpack_from("<8sHHIII", data)
    assert (magic, version, hsize) == (b"SIAIMG\r\n", im.IMAGE_VERSION, 64)
    assert rmv == regmap.VERSION and cid == im.config_id(SIAConfig())
    assert ntiles == len(plan(p, SIAConfig())) == 3
    path = im.save_image(img, tmp_path / "d.siaimg")
    back = im.load_image(path, SIAConfig(), regmap.VERSION)
    assert back.payload == img.payload and back.manifest == img.manifest
    assert not list(tmp_path.glob("*.tmp"))


def test_payload_is_the_rtl_packet(packed):
    """Static part = regmap.pack_tile's header + weight + neuron beats, byte for byte;
    static + driver's input part = the whole packet the RTL parses."""
    p, img, _ = packed
    x = np.random.default_rng(0).integers(0, 17, (1, 8, 8)).astype(np.uint8)
    T = img.timesteps
    outs = {0: np.random.default_rng(1).integers(0, 2, (T, 16, 8, 8)).astype(np.uint8),
            1: np.random.default_rng(2).integers(0, 2, (T, 32, 4, 4)).astype(np.uint8)}
    for k, ln in enumerate(img.launches):
        inputs = {s.source: (x if s.source == -1 else outs[s.source])
                  for s in p.layers[ln["layer"]].inputs}
        beats = regmap.pack_tile(p, ln["layer"], ln["tile"], inputs, SIAConfig(), img.timesteps)
        assert img.tile_static(k) + rb.pack_inputs(img, k, outs, x) == rb.beats_to_bytes(beats)
        info = regmap.tile_info(p, ln["layer"], ln["tile"], SIAConfig(), img.timesteps)
        assert rb.output_nbytes(img, k) == 8 * info.out_beats


def _reheader(data: bytes, **fields) -> bytes:
    """Rewrite header fields and re-seal the header CRC (a consistent but wrong header)."""
    names = ["magic", "version", "hsize", "regmap", "cfg_id", "ntiles", "m_off", "m_size",
             "p_off", "p_size", "total", "p_crc", "m_crc", "reserved"]
    vals = list(struct.unpack(im.HEADER_FMT, data[:64])[:-1])
    for k, v in fields.items():
        vals[names.index(k)] = v
    head = struct.pack(im.HEADER_FMT[:-1], *vals)
    return head + struct.pack("<I", im._crc(head)) + data[64:]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-100], "header CRC|truncated"),
    (lambda d: b"XXXXXXXX" + d[8:], "bad magic"),
    (lambda d: d[:10] + bytes([d[10] ^ 1]) + d[11:], "header CRC"),
    (lambda d: d[:-5] + bytes([d[-5] ^ 0x10]) + d[-4:], "payload CRC"),
    (lambda d: d[:70] + bytes([d[70] ^ 0x01]) + d[71:], "manifest CRC"),
    (lambda d: _reheader(d, version=99), "format version 99"),
    (lambda d: _reheader(d, total=len(d) + 8), "truncated"),
    (lambda d: _reheader(d, ntiles=7), "7 tiles"),
    (lambda d: _reheader(d, cfg_id=1234), "parameter-set id"),
    (lambda d: d[:20], "shorter than"),
])
def test_corrupted_image_refused(packed, mutate, message):
    with pytest.raises(SiaError, match=message):
        im.parse_image(mutate(packed[2]), SIAConfig())


def test_truncated_file_refused(packed, tmp_path):
    f = tmp_path / "t.siaimg"
    f.write_bytes(packed[2][:-100])
    with pytest.raises(SiaError, match="truncated|CRC"):
        im.load_image(f)


def test_image_for_another_parameter_set_refused(packed):
    p = program()
    other = SIAConfig(pes=32, v_bits=28)
    data = im.build_image(p, other).to_bytes()
    with pytest.raises(SiaError, match=r"another SIA parameter set: pes=32 \(accelerator: 64\), "
                                       r"v_bits=28 \(accelerator: 24\)"):
        im.parse_image(data, SIAConfig())
    with pytest.raises(SiaError, match="packet format version"):
        im.parse_image(packed[2], SIAConfig(), expect_regmap=regmap.VERSION + 1)


def test_program_that_does_not_fit_refused():
    p = program()
    with pytest.raises(SiaError, match="max_timesteps|T="):
        im.build_image(p, SIAConfig(max_timesteps=2))
    with pytest.raises(SiaError, match="v_bits"):
        im.build_image(p, SIAConfig(v_bits=12, acc_bits=12))


def test_manifest_inconsistent_with_payload_refused(packed):
    """A well-sealed image whose manifest disagrees with its payload (e.g. hand-edited)."""
    import copy
    _, img, _ = packed
    for edit, message in [
        (lambda m: m["layers"][1].update(shape=[80, 4, 4]), "launch table"),
        (lambda m: m["layers"][2]["inputs"][0].update(pool=1), "tile geometry|malformed"),
        (lambda m: m.update(timesteps=99), "T=99"),
        (lambda m: m["launches"][0].pop("c0"), "malformed manifest"),
    ]:
        m = copy.deepcopy(img.manifest)
        edit(m)
        data = im.ProgramImage(img.config, img.regmap_version, m, img.payload).to_bytes()
        with pytest.raises(SiaError, match=message):
            im.parse_image(data, SIAConfig())

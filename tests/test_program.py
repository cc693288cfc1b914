import json
import struct

import numpy as np
import pytest
import torch

from sia import SiaError
from sia.program import FORMAT_VERSION, load_program, save_program, validate
from sia.program.bounds import required_bits
from sia.program.format import bits_signed
from sia.snn import simulate


def _rewrite_manifest(path, edit):
    """Rewrite the JSON manifest inside a safetensors header (format: u64 len + JSON)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    manifest = json.loads(header["__metadata__"]["sia.program"])
    edit(manifest)
    header["__metadata__"]["sia.program"] = json.dumps(manifest)
    new = json.dumps(header).encode()
    new += b" " * ((8 - len(new) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


def test_round_trip(tmp_path, small_program):
    p = small_program()
    path = save_program(p, tmp_path / "p.safetensors")
    q = load_program(path)
    assert [layer.name for layer in q.layers] == [layer.name for layer in p.layers]
    for a, b in zip(p.layers, q.layers):
        assert np.array_equal(a.bias, b.bias) and np.array_equal(a.v_init, b.v_init)
        assert (a.threshold is None) == (b.threshold is None)
        for sa, sb in zip(a.inputs, b.inputs):
            assert np.array_equal(sa.weight, sb.weight)
            assert (sa.op, sa.source, sa.pool, sa.stride, sa.padding) == \
                   (sb.op, sb.source, sb.pool, sb.stride, sb.padding)
    x = torch.randint(0, 256, (4, 2, 8, 8), dtype=torch.uint8)
    assert np.array_equal(simulate(p, x, T=4).predictions, simulate(q, x, T=4).predictions)
    assert not list(tmp_path.glob("*.tmp"))


def test_xz_round_trip_is_the_same_program(tmp_path, small_program):
    """`.xz` holds the same safetensors bytes compressed: same manifest, same integers."""
    import lzma
    p = small_program()
    plain = save_program(p, tmp_path / "p.safetensors")
    packed = save_program(p, tmp_path / "p.safetensors.xz")
    assert lzma.decompress(packed.read_bytes()) == plain.read_bytes()
    q = load_program(packed)
    for a, b in zip(p.layers, q.layers):
        assert np.array_equal(a.bias, b.bias) and np.array_equal(a.v_init, b.v_init)
        assert all(np.array_equal(sa.weight, sb.weight) for sa, sb in zip(a.inputs, b.inputs))
    assert q.name == p.name and q.meta == p.meta
    assert not list(tmp_path.glob("*.tmp"))


def test_xz_rejects_corrupt_and_foreign_files(tmp_path, small_program):
    import lzma
    raw = save_program(small_program(), tmp_path / "p.safetensors.xz").read_bytes()
    cases = {"cut": raw[: len(raw) // 2], "junk": b"not xz at all",
             "foreign": lzma.compress(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "),
             "not-safetensors": lzma.compress(b"hello world, this is no header")}
    for name, data in cases.items():
        bad = tmp_path / f"{name}.safetensors.xz"
        bad.write_bytes(data)
        with pytest.raises(SiaError, match=name + r"\.safetensors\.xz"):
            load_program(bad)


def test_strided_arrays_are_saved_in_c_order(tmp_path, small_program):
    """safetensors writes memory as it lies: a strided view (a channels_last model's
    weights) must be stored by value, not by layout."""
    p = small_program()
    syn = next(s for layer in p.layers for s in layer.inputs if s.weight.ndim == 4)
    w = syn.weight.copy()
    syn.weight = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not syn.weight.flags["C_CONTIGUOUS"] and np.array_equal(syn.weight, w)
    q = load_program(save_program(p, tmp_path / "p.safetensors"))
    assert any(np.array_equal(s.weight, w) for layer in q.layers for s in layer.inputs)


def test_rejects_truncated(tmp_path, small_program):
    path = save_program(small_program(), tmp_path / "p.safetensors")
    raw = path.read_bytes()
    for cut in (len(raw) - 10, 20, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(SiaError):
            load_program(bad)


def test_rejects_wrong_version(tmp_path, small_program):
    path = save_program(small_program(), tmp_path / "p.safetensors")
    _rewrite_manifest(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(SiaError, match="version"):
        load_program(path)


def test_rejects_too_narrow_v_bits(tmp_path, small_program):
    path = save_program(small_program(), tmp_path / "p.safetensors")
    _rewrite_manifest(path, lambda m: m["layers"][1].update(v_bits=3))
    with pytest.raises(SiaError, match="v_bits=3 could overflow"):
        load_program(path)


def test_rejects_out_of_range_weights(small_program):
    p = small_program()
    p.layers[1].inputs[0].weight[0, 0, 0, 0] = 8      # declared 4 bit: -8..7 allowed
    with pytest.raises(SiaError, match="4-bit"):
        validate(p)


def test_rejects_bad_structure(small_program):
    p = small_program()
    p.layers[1].inputs[0].source = 2                   # not an earlier layer
    with pytest.raises(SiaError, match="earlier layer"):
        validate(p)
    p = small_program()
    p.layers[0].threshold[0] = 0
    with pytest.raises(SiaError, match=">= 1"):
        validate(p)
    p = small_program()
    p.layers[1].inputs[0].stride = 2                   # output map no longer matches
    with pytest.raises(SiaError, match="does not give"):
        validate(p)


def test_rejects_non_program_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(SiaError):
        load_program(junk)
    with pytest.raises(SiaError, match="no such"):
        load_program(tmp_path / "missing.safetensors")


def test_bits_signed_edges():
    assert bits_signed(0, 127) == 8 and bits_signed(0, 128) == 9
    assert bits_signed(-128, 0) == 8 and bits_signed(-129, 0) == 9
    assert bits_signed(0, 0) == 1


def test_required_bits_worst_case(one_neuron):
    # image 255 * w 3 + bias 2 = 767 per step -> acc needs 11 bits signed
    p = one_neuron(w=3, threshold=1000, bias=2, v_init=500, t_max=4)
    need = required_bits(p, p.layers[0])
    assert need["current_range"] == [2, 767] and need["acc_bits"] == 11
    # membrane: 500 + 767 = 1267 before the first reset
    assert need["membrane_range"][1] >= 1267

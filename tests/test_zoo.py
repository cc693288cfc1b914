"""Zoo entries load (checksum verified) and evaluate to the accuracy in their manifest."""

import os
import shutil

import pytest

import sia.zoo as zoo
from sia import SiaError
from sia.data.registry import load_split
from sia.snn import simulate


def _check(name):
    e = zoo.index()[name]
    prog = zoo.load_zoo_program(name)
    c = e["check"]
    x, y = load_split(e["dataset"], "test")
    got = simulate(prog, x[:c["images"]], y[:c["images"]], T=c["T"]).accuracy
    assert got == pytest.approx(c["accuracy"], abs=1e-12)


def test_digits_entry_reproduces_its_manifest():
    _check("digits_cnn_l8")


def test_cifar_entries_reproduce_their_manifest():
    names = [n for n, e in zoo.index().items() if e["dataset"] == "cifar10"]
    if not names:
        pytest.skip("no CIFAR-10 zoo entries")
    if not os.environ.get("SIA_CIFAR10_DIR"):
        pytest.skip("SIA_CIFAR10_DIR not set: CIFAR-10 test set not available")
    smallest = min(names, key=lambda n: (zoo.ZOO_DIR / zoo.index()[n]["file"]).stat().st_size)
    _check(smallest)


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    for f in ("index.json", "digits_cnn_l8.safetensors"):
        shutil.copy(zoo.ZOO_DIR / f, tmp_path / f)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(zoo, "INDEX", tmp_path / "index.json")
    zoo.load_zoo_program("digits_cnn_l8")
    raw = bytearray((tmp_path / "digits_cnn_l8.safetensors").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "digits_cnn_l8.safetensors").write_bytes(bytes(raw))
    with pytest.raises(SiaError, match="checksum mismatch"):
        zoo.load_zoo_program("digits_cnn_l8")
    with pytest.raises(SiaError, match="neither a program file nor a zoo entry"):
        zoo.load_zoo_program("nope")


def test_zoo_list_reports_every_entry_with_its_gaps():
    import json
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "sia.cli", "zoo", "list", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == set(zoo.index())
    for name, row in rows.items():
        e = zoo.index()[name]
        assert row["snn_t8"] == e["snn_acc"]["8"]
        assert row["gap_t8"] == round(100 * (e["snn_acc"]["8"] - e["fp32_acc"]), 2)
        assert row["size_mb"] > 0
        assert row["backends"] == ("golden + signed SIA" if e["neurons"] == "signed"
                                  else "golden + SIA")


def test_manifests_name_their_neurons():
    """`neurons` in every manifest is what its program holds (signed programs run only on
    SIA builds with signed_count_bits > 0, and `sia zoo list` says so)."""
    for name, e in zoo.index().items():
        assert e["neurons"] == zoo.neurons(zoo.load_zoo_program(name)), name

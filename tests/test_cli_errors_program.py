"""Malformed program files, unwritable outputs and bad counts: one line, exit 2, and
nothing half-written (defects an audit of the CLI found, session 24)."""

import json
import os

import pytest
from conftest import assert_one_line_error as _one_line_error
from conftest import run_sia as sia
from safetensors.numpy import save_file

from sia import SiaError
from sia.program import load_program, save_program
from sia.program.bounds import T_MAX_LIMIT, declare_bits
from sia.program.io import MANIFEST_KEY, to_manifest
from sia.program.random import random_program
from sia.program.validate import validate


def _write_with_manifest(path, manifest_text):
    manifest, tensors = to_manifest(random_program(0))
    save_file(tensors, str(path), metadata={MANIFEST_KEY: manifest_text})
    return manifest


@pytest.mark.parametrize("text", ["[1, 2]", "5", '"x"'])
def test_manifest_that_is_not_an_object(tmp_path, text):
    f = tmp_path / "p.safetensors"
    _write_with_manifest(f, text)
    with pytest.raises(SiaError, match="manifest is not a JSON object"):
        load_program(f)
    _one_line_error(sia("inspect", str(f)), "manifest is not a JSON object")


def test_manifest_with_malformed_entries(tmp_path):
    f = tmp_path / "p.safetensors"
    manifest, _ = to_manifest(random_program(0))
    manifest["layers"][0]["inputs"] = [1, 2]
    _write_with_manifest(f, json.dumps(manifest))
    with pytest.raises(SiaError, match="malformed manifest|missing field"):
        load_program(f)


def test_huge_t_max_is_refused_not_iterated(tmp_path):
    """t_max = 10**12 used to loop for hours in the worst-case membrane range."""
    f = tmp_path / "p.safetensors"
    manifest, _ = to_manifest(random_program(0))
    manifest["t_max"] = 10 ** 12
    _write_with_manifest(f, json.dumps(manifest))
    with pytest.raises(SiaError, match=f"at most {T_MAX_LIMIT} steps"):
        load_program(f)
    p = random_program(0)
    p.t_max = T_MAX_LIMIT
    for layer in p.layers:
        declare_bits(p, layer)
    validate(p)   # the limit itself is allowed


def test_declared_widths_past_int64_are_refused():
    p = random_program(0)
    p.layers[0].v_bits = 100
    with pytest.raises(SiaError, match="v_bits=100 outside 1..64"):
        validate(p)
    p = random_program(0)
    p.layers[0].inputs[0].weight_bits = 40
    with pytest.raises(SiaError, match="weight_bits=40 outside 2..32"):
        validate(p)


def test_directory_or_empty_name_as_program(tmp_path):
    with pytest.raises(SiaError, match="is a directory, not a program file"):
        load_program(tmp_path)
    _one_line_error(sia("inspect", str(tmp_path)), "is a directory")
    _one_line_error(sia("inspect", ""), "empty program name")


def test_save_program_to_unwritable_places_leaves_nothing(tmp_path):
    p = random_program(0)
    with pytest.raises(SiaError, match="is a directory"):
        save_program(p, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((SiaError, OSError)):
        save_program(p, blocker / "p.safetensors")   # a file as the parent directory
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):   # root ignores the mode
            pytest.skip("running as root: cannot make a directory unwritable")
        with pytest.raises(SiaError, match=f"cannot write {ro / 'p.safetensors'}"):
            save_program(p, ro / "p.safetensors")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_saved_program_has_the_umask_mode(tmp_path):
    """safetensors' save_file wrote through a private 0600 temporary file."""
    old = os.umask(0o022)
    try:
        f = save_program(random_program(0), tmp_path / "p.safetensors")
        assert f.stat().st_mode & 0o777 == 0o644
        assert [x.name for x in tmp_path.iterdir()] == ["p.safetensors"]
    finally:
        os.umask(old)


def test_output_under_a_file_is_one_line(tmp_path):
    """An OSError on an output (here: a file where a directory must be) is one line."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = sia("eval", "digits_cnn_l8", "--images", "4", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]   # beside progress bars
    assert errors == [f"sia: error: {blocker} exists and is not a directory"]


def test_negative_image_count():
    _one_line_error(sia("eval", "digits_cnn_l8", "--images", "-1"), "--images -1")


@pytest.mark.parametrize("args, msg", [
    (["evl"], "No such command 'evl'"),
    (["eval"], "Missing argument"),
    (["eval", "digits_cnn_l8", "--batch", "2"], "No such option: --batch"),
    (["rtl", "run", "digits_cnn_l8", "--batch", "0"], "Invalid value for '--batch'"),
])
def test_usage_errors_are_one_line_too(args, msg):
    """click's usage errors used to print a 5-line box."""
    r = sia(*args)
    _one_line_error(r, msg)
    assert "--help" in r.stderr


def test_help_still_exits_0():
    for args in ([], ["--help"], ["rtl"]):
        r = sia(*args)
        assert r.returncode == 0 and "Usage" in r.stdout, (args, r.stderr)

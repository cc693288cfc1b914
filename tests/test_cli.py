"""User mistakes give one line on stderr and exit 2, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_sia as sia


@pytest.mark.parametrize("args, msg", [
    (["eval", "/nope.safetensors"], "no such program file"),
    (["eval", "not_a_zoo_entry"], "neither a program file nor a zoo entry"),
    (["train", "/nope.toml"], "no such config file"),
    (["inspect", "/etc/hostname"], "not a readable program file"),
    (["demo", "--config-dir", "/nonexistent"], "missing /nonexistent/digits_qcfs.toml"),
    (["finetune", "digits_cnn_l8", "--out", "/tmp/x.safetensors", "--loss-steps", "4,a"],
     "comma list of integers"),
    (["finetune", "digits_cnn_l8", "--out", "/tmp/x.safetensors", "--T", "40"], "t_max"),
    (["dse", "digits_cnn_l8", "--psum-slots", "4,x"], "--psum-slots '4,x': give a comma list"),
])
def test_user_errors_are_one_line(args, msg):
    r = sia(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0]


@pytest.mark.parametrize("script, args, msg", [
    ("make_zoo.py", ["x=/nonexistent"], "no such file: /nonexistent/demo.json"),
    ("make_zoo.py", ["x=sia/zoo/digits_cnn_l8.safetensors"], "a program file: give --parent"),
    ("make_zoo.py", ["x=sia/zoo/digits_cnn_l8.safetensors", "--parent", "digits_cnn_l8",
                     "--golden", "g.json", "--stage-command", "c", "--stage-commit", "0"],
     "--parent digits_cnn_l8: not a CIFAR-10 zoo entry"),
    ("phase_pairs_estimate.py", ["not_a_zoo_entry"], "neither a program file nor a zoo entry"),
])
def test_benchmark_user_errors_are_one_line(script, args, msg):
    """The benchmark scripts end a user mistake the way the CLI does (sia.run_main)."""
    r = subprocess.run([sys.executable, f"benchmarks/{script}", *args], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "SIA_CIFAR10_DIR": ""},
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and msg in lines[0]


def test_bad_option_is_a_usage_error():
    r = sia("eval", "--bogus")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_convert_eval_inspect_round_trip(tmp_path, small_program):
    from sia.program import save_program
    path = save_program(small_program(), tmp_path / "p.safetensors")
    r = sia("inspect", str(path))
    assert r.returncode == 0 and "c1" in r.stdout and "identity" in r.stdout


@pytest.mark.parametrize("cmd", [["simulate", "digits_cnn_l8"], ["rtl", "export"], ["synth"]])
def test_malformed_parameter_set_is_one_line(tmp_path, cmd):
    bad = tmp_path / "bad.json"
    bad.write_text("{pes: 16")
    r = sia(*cmd, "--config", str(bad), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not valid JSON" in lines[0]
    assert not (tmp_path / "out").exists()


def test_command_summaries_are_one_line():
    """`sia --help` lists each command by its docstring's first paragraph: keep it one
    line, details after a blank line (else the listing wraps mid-sentence)."""
    import ast
    root = Path(__file__).resolve().parents[1] / "sia"
    long = []
    for p in root.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.FunctionDef) and any(
                    "command" in ast.unparse(d) for d in n.decorator_list):
                first = (ast.get_docstring(n) or "").split("\n\n")[0]
                if "\n" in first:
                    long.append(f"{p.relative_to(root)}:{n.lineno} {n.name}")
    assert not long, long

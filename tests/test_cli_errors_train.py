"""Bad input to `sia train / convert / finetune / demo` is one line (exit 2) and leaves
nothing behind: no run directory, program, history or plot half-written."""

import json
import math
import os

import pytest
import torch
import typer

from sia import SiaError, run_main

TINY = dict(dataset="digits", arch="digits_cnn", width=0.25, epochs=1, fold_epochs=0,
            batch_size=64, lr=0.1, fold_lr=0.01, num_threads=1)


pytestmark = pytest.mark.usefixtures("keep_threads")


def toml(path, **kw):
    def value(v):   # JSON scalars are TOML; a dict is an inline table
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)
    path.write_text("".join(f"{k} = {value(v)}\n" for k, v in {**TINY, **kw}.items()))
    return path


def sia(capsys, *args, after_progress: bool = False) -> str:
    """Run `sia ARGS` in this process; expect exit 2 and return its one stderr line
    (after_progress: the error line after a run's progress bars)."""
    from sia import demo
    from sia.convert import cli as convert_cli
    from sia.train import cli as train_cli
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    for m in (train_cli, convert_cli, demo):
        m.register(app)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_main(lambda: app(args=[str(a) for a in args], standalone_mode=True))
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = err.strip().splitlines()
    if after_progress:
        lines = [ln for ln in lines if ln.startswith("sia: error: ")]
    assert len(lines) == 1 and lines[0].startswith("sia: error: "), err
    return lines[0]


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny finished digits run (one epoch, ~1 s)."""
    from sia.train import train
    from sia.train.config import from_dict
    d = tmp_path_factory.mktemp("runs") / "tiny"
    n = torch.get_num_threads()
    train(from_dict(TINY), d, progress=False)
    torch.set_num_threads(n)
    return d


# -- 1: finetune / convert --out must name a program file --------------------------------
@pytest.mark.parametrize("name", ["ft.json", "ft.png", "ft"])
def test_finetune_out_must_be_a_program_file(tmp_path, capsys, name):
    msg = sia(capsys, "finetune", "digits_cnn_l8", "--steps", "2", "--out", tmp_path / name)
    assert "must end in .safetensors" in msg
    assert listing(tmp_path) == []


def test_convert_out_must_be_a_program_file(tmp_path, capsys, run_dir):
    msg = sia(capsys, "convert", run_dir, "--out", tmp_path / "p.json")
    assert "must end in .safetensors" in msg
    assert listing(tmp_path) == []


# -- 2: malformed training run directories -------------------------------------------------
def _break(d, how):
    if how == "bad json":
        (d / "config.json").write_text("{bad")
    elif how == "json list":
        (d / "config.json").write_text("[1]")
    elif how == "not utf-8":
        (d / "config.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    elif how == "bad key":
        (d / "config.json").write_text(json.dumps({"arch": "lenet"}))
    elif how == "truncated":
        (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:500])
    elif how == "other width":
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "width": 1.0}))
    elif how == "other arch":
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "arch": "vgg11"}))
    elif how == "no weights":
        (d / "model.safetensors").unlink()


BROKEN = [("bad json", "config.json is not valid JSON"),
          ("json list", "config.json is not a JSON object"),
          ("not utf-8", "config.json is not valid JSON"),
          ("bad key", "config.json: config key 'arch'"),
          ("truncated", "model.safetensors is truncated or not a safetensors file"),
          ("other width", "does not hold its config.json's digits_cnn width 1 (tensor"),
          ("other arch", "does not hold its config.json's vgg11 width 0.25 (unexpected tensor"),
          ("no weights", "no such file")]


@pytest.fixture
def broken(tmp_path, run_dir):
    import shutil

    def make(how):
        d = tmp_path / "broken"
        shutil.copytree(run_dir, d)
        _break(d, how)
        return d
    return make


@pytest.mark.parametrize("how, msg", BROKEN)
def test_convert_malformed_run_is_one_line(tmp_path, capsys, broken, how, msg):
    d = broken(how)
    line = sia(capsys, "convert", d, "--out", tmp_path / "out" / "p.safetensors")
    assert msg in line and str(d) in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how, msg", BROKEN[:1] + BROKEN[4:6])
def test_finetune_malformed_teacher_is_one_line(tmp_path, capsys, broken, how, msg):
    d = broken(how)
    line = sia(capsys, "finetune", "digits_cnn_l8", "--steps", "2", "--teacher", d,
               "--out", tmp_path / "ft.safetensors")
    assert line.startswith("sia: error: --teacher: ") and msg in line
    assert not list(tmp_path.glob("ft*"))


@pytest.mark.parametrize("key", ["init", "distill"])
def test_train_malformed_init_or_teacher_is_one_line(tmp_path, capsys, broken, key):
    d = broken("truncated")
    extra = dict(epochs=0, fold_epochs=1, init=str(d)) if key == "init" else \
        dict(distill={"teacher": str(d)})
    cfg = toml(tmp_path / "t.toml", **extra)
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o", "--no-progress")
    role = "config key 'init'" if key == "init" else "config key 'distill.teacher'"
    assert f"{role}: training run {d}: model.safetensors is truncated" in line
    assert not (tmp_path / "o").exists()


# -- 3: `sia train` validates before it creates the run directory --------------------------
@pytest.mark.parametrize("sets, env, msg", [
    ({"dataset": "cifar10", "arch": "vgg11"}, "", "no CIFAR-10 directory given"),
    ({"dataset": "cifar10", "arch": "vgg11"}, "EMPTY", "no CIFAR-10 binary data"),
    ({"dataset": "cifar10", "arch": "vgg11", "data_dir": "/nonexistent"}, None,
     "no CIFAR-10 binary data in /nonexistent"),
    ({"device": "cuda"}, None, "no CUDA device"),
    ({"holdout": 100000}, None, "holdout 100000"),
    ({"epochs": 0, "fold_epochs": 1, "init": "/nonexistent"}, None,
     "config key 'init': no such file"),
    ({"distill": {"teacher": "/nonexistent"}}, None, "config key 'distill.teacher': no such file"),
    ({"batch_size": 5000}, None, "exceeds the"),
])
def test_train_leaves_no_run_dir_on_bad_input(tmp_path, capsys, monkeypatch, sets, env, msg):
    if sets.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    if env is not None:
        empty = tmp_path / "empty"
        empty.mkdir()
        monkeypatch.setenv("SIA_CIFAR10_DIR", str(empty) if env == "EMPTY" else "")
    cfg = toml(tmp_path / "t.toml", **sets)
    out = tmp_path / "new" / "run"
    assert msg in sia(capsys, "train", cfg, "--out", out, "--no-progress")
    assert not (tmp_path / "new").exists()


def test_train_data_dir_option_is_checked_before_the_run_dir(tmp_path, capsys):
    cfg = toml(tmp_path / "t.toml", dataset="cifar10", arch="vgg11")
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o", "--data-dir", "/nonexistent")
    assert "no CIFAR-10 binary data in /nonexistent" in line and not (tmp_path / "o").exists()


def test_resume_without_checkpoint_keeps_what_was_there(tmp_path, capsys):
    cfg = toml(tmp_path / "t.toml")
    assert "--resume: no checkpoint in" in sia(capsys, "train", cfg, "--out", tmp_path / "o",
                                              "--resume", "--no-progress")
    assert not (tmp_path / "o").exists()
    (tmp_path / "mine").mkdir()   # a pre-existing directory is never removed
    sia(capsys, "train", cfg, "--out", tmp_path / "mine", "--resume", "--no-progress")
    assert (tmp_path / "mine").is_dir()


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1000", "0"])
def test_train_rejects_a_bad_width(tmp_path, capsys, value):
    cfg = toml(tmp_path / "t.toml")
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o", "--set", f"width={value}")
    assert "config key 'width'" in line and not (tmp_path / "o").exists()


def test_train_out_that_is_a_file(tmp_path, capsys):
    cfg = toml(tmp_path / "t.toml")
    (tmp_path / "o").write_text("keep me")
    assert "exists and is not a directory" in sia(capsys, "train", cfg, "--out", tmp_path / "o")
    assert (tmp_path / "o").read_text() == "keep me"


def test_a_run_failing_before_its_first_checkpoint_removes_only_its_own_dirs(tmp_path, monkeypatch):
    from sia.train import train
    from sia.train.config import from_dict
    from sia.train.trainer import Run

    def boom(self):
        raise SiaError("boom")
    monkeypatch.setattr(Run, "train_epoch", boom)
    with pytest.raises(SiaError, match="boom"):
        train(from_dict(TINY), tmp_path / "a" / "b", progress=False)
    assert listing(tmp_path) == []
    (tmp_path / "mine").mkdir()
    with pytest.raises(SiaError, match="boom"):
        train(from_dict(TINY), tmp_path / "mine", progress=False)
    assert listing(tmp_path) == ["mine"]


# -- 4: --stop-after < 1 ---------------------------------------------------------------------
@pytest.mark.parametrize("n", ["0", "-1"])
def test_stop_after_below_one(tmp_path, capsys, n):
    cfg = toml(tmp_path / "t.toml")
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o", "--stop-after", n)
    assert f"--stop-after {n}: give the epoch to stop after (>= 1)" in line
    assert not (tmp_path / "o").exists()


# -- 5: demo --T outside 1..16, before any training ------------------------------------------
@pytest.mark.parametrize("T", ["0", "17", "-3"])
def test_demo_checks_T_before_training(tmp_path, capsys, T):
    from pathlib import Path
    configs = Path(__file__).resolve().parents[1] / "configs"
    line = sia(capsys, "demo", "--T", T, "--out", tmp_path / "d", "--config-dir", configs)
    assert f"--T {T}: give 1..16" in line and not (tmp_path / "d").exists()


def test_run_demo_checks_T_and_configs_before_training(tmp_path):
    from sia.demo import run_demo
    with pytest.raises(SiaError, match="--T 17: give 1..16"):
        run_demo(tmp_path / "d", tmp_path, timesteps=17, progress=False)
    toml(tmp_path / "digits_fp32.toml")
    (tmp_path / "digits_qcfs.toml").write_text("lr = nan\n")
    with pytest.raises(SiaError, match="'lr' must be a finite number"):
        run_demo(tmp_path / "d", tmp_path, timesteps=4, progress=False)
    assert not (tmp_path / "d").exists()


# -- 6: a config that is not UTF-8 text ------------------------------------------------------
def test_non_utf8_config(tmp_path, capsys):
    png = tmp_path / "png.toml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    line = sia(capsys, "train", png, "--out", tmp_path / "o")
    assert "png.toml: not a TOML config (not UTF-8 text)" in line
    assert not (tmp_path / "o").exists()


# -- 7: thread counts ------------------------------------------------------------------------
@pytest.mark.parametrize("n", ["-1", "100000"])
def test_finetune_threads(tmp_path, capsys, n):
    line = sia(capsys, "finetune", "digits_cnn_l8", "--steps", "2", "--threads", n,
               "--out", tmp_path / "ft.safetensors")
    assert f"--threads {n}: give 1..1024" in line and listing(tmp_path) == []


@pytest.mark.parametrize("n", [100000, -1])
def test_config_num_threads_bound(tmp_path, capsys, n):
    cfg = toml(tmp_path / "t.toml", num_threads=n)
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o")
    assert "config key 'num_threads' must be 0 (torch's default) or 1..1024" in line
    assert not (tmp_path / "o").exists()


# -- 8: non-finite float hyper-parameters ----------------------------------------------------
@pytest.mark.parametrize("key", ["lr", "fold_lr", "momentum", "weight_decay", "warmup_epochs",
                                 "label_smoothing", "width"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_hyper_parameters(tmp_path, capsys, key, value):
    cfg = toml(tmp_path / "t.toml")
    line = sia(capsys, "train", cfg, "--out", tmp_path / "o", "--set", f"{key}={value}")
    assert f"config key {key!r} must be a finite number, got {value}" in line
    assert not (tmp_path / "o").exists()


def test_non_finite_nested_floats():
    from sia.train.config import from_dict
    with pytest.raises(SiaError, match="'distill.temperature' must be a finite number"):
        from_dict({"distill": {"teacher": "x", "temperature": math.inf}})
    with pytest.raises(SiaError, match="'distill.alpha'"):
        from_dict({"distill": {"teacher": "x", "alpha": math.nan}})
    with pytest.raises(SiaError, match="'snn.ft_lr' has a bad value nan"):
        from_dict({"snn": {"twin": "x.toml", "ft_lr": math.nan}})


def test_finetune_non_finite_lr(tmp_path, capsys):
    line = sia(capsys, "finetune", "digits_cnn_l8", "--steps", "2", "--lr", "inf",
               "--out", tmp_path / "ft.safetensors")
    assert "a finite lr > 0" in line and listing(tmp_path) == []


def test_subprocess_cli_is_one_line_without_traceback(tmp_path):
    """The installed entry point (not only the in-process app) ends the same way."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "sia.cli", "finetune", "digits_cnn_l8", "--steps",
                        "2", "--out", str(tmp_path / "ft.json")], capture_output=True, text=True,
                       timeout=120, env={**os.environ})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and listing(tmp_path) == []


def test_finetune_outputs_all_or_nothing(tmp_path, capsys, monkeypatch):
    """The program, its history and its plot are written together: a plot that fails
    leaves neither the program nor the history (sia/outputs.py)."""
    from sia.convert import finetune as ft_mod

    def no_space(hist, path, title):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ft_mod, "plot_history", no_space)
    out = tmp_path / "sub" / "ft.safetensors"
    msg = sia(capsys, "finetune", "digits_cnn_l8", "--out", out, "--steps", 1, "--batch", 8,
              "--threads", 1, after_progress=True)
    assert "No space left on device" in msg
    assert listing(tmp_path) == []

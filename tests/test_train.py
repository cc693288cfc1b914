"""TrainConfig validation, a tiny two-stage digits run, load_trained, resume, CLI."""

import json
import shutil

import pytest
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from sia import SiaError
from sia.models import ConvUnit
from sia.train import evaluate, load_config, load_trained, train
from sia.train.config import from_dict, parse_override
from sia.train.trainer import _RESUME_FREE

TINY = dict(dataset="digits", arch="digits_cnn", width=0.5, epochs=4, fold_epochs=1,
            batch_size=64, lr=0.1, fold_lr=0.01, num_threads=1)


pytestmark = pytest.mark.usefixtures("keep_threads")


def test_config_errors(tmp_path):
    with pytest.raises(SiaError, match="unknown config key 'lrate'"):
        from_dict({"lrate": 0.1})
    with pytest.raises(SiaError, match="'act'"):
        from_dict({"act": "tanh"})
    with pytest.raises(SiaError, match="'epochs'"):
        from_dict({"epochs": "ten"})
    with pytest.raises(SiaError, match="'lr'"):
        from_dict({"lr": -1})
    with pytest.raises(SiaError, match="'weight_bits'"):
        from_dict({"weight_bits": 1})
    with pytest.raises(SiaError, match="'augment'"):
        from_dict({"augment": 1})
    assert from_dict({"weight_bits": 0}).weight_bits is None
    assert from_dict({"lr": 1}).lr == 1.0
    assert parse_override("lr=0.5") == ("lr", 0.5)
    assert parse_override("schedule=onecycle") == ("schedule", "onecycle")
    with pytest.raises(SiaError, match="no such config"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(SiaError, match="bad TOML"):
        load_config(bad)


def test_shipped_configs_load():
    from pathlib import Path
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))
    assert configs
    for p in configs:
        load_config(p)


def test_tiny_run_load_and_resume(tmp_path):
    cfg = from_dict(TINY)
    res = train(cfg, tmp_path / "a", progress=False)
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert [e["stage"] for e in m["epochs"]] == ["bn"] * 4 + ["fold"]
    assert m["test_acc"] == res.metrics["test_acc"] > 0.5
    assert m["data"] == "sklearn-digits"
    assert all(u.bn is None and u.bias is not None for u in res.model.modules()
               if isinstance(u, ConvUnit))

    model, cfg2 = load_trained(tmp_path / "a")
    assert cfg2 == cfg
    from sia.data import load_digits_split
    x, y = load_digits_split("test")
    assert evaluate(model, x, y) == m["test_acc"]

    # Stop a second run after two epochs, then resume: same final weights.
    train(cfg, tmp_path / "b", progress=False, stop_after=2)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    train(cfg, tmp_path / "b", resume=True, progress=False)
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # Distillation from the first run (as a stand-in teacher) trains and validates its keys.
    kd = from_dict({**TINY, "epochs": 1, "fold_epochs": 0,
                    "distill": {"teacher": str(tmp_path / "a"), "alpha": 0.5, "temperature": 2}})
    assert train(kd, tmp_path / "kd", progress=False).metrics["test_acc"] > 0.1
    with pytest.raises(SiaError, match="distill.beta"):
        from_dict({"distill": {"teacher": "x", "beta": 1}})
    with pytest.raises(SiaError, match="distill.teacher"):
        from_dict({"distill": {"alpha": 0.5}})

    # A run shortened on resume re-derives its LR schedule and records the change.
    train(from_dict({**TINY, "epochs": 6}), tmp_path / "s", progress=False, stop_after=2)
    m = train(cfg, tmp_path / "s", resume=True, progress=False).metrics
    assert m["schedule_changes"] == [{"at_epoch": 2, "was": {"epochs": 6}}]
    assert len(m["epochs"]) == 5
    with pytest.raises(SiaError, match="'epochs' 1 does not fit"):
        train(from_dict({**TINY, "epochs": 1}), tmp_path / "s", resume=True, progress=False)

    with pytest.raises(SiaError, match="'lr' differs"):
        train(from_dict({**TINY, "lr": 0.2}), tmp_path / "b", resume=True, progress=False)
    with pytest.raises(SiaError, match="no checkpoint"):
        train(cfg, tmp_path / "c", resume=True, progress=False)


def test_cli_summary(tmp_path):
    from sia.train.cli import register
    app = typer.Typer()
    register(app)
    app.command("_", hidden=True)(lambda: None)
    toml = tmp_path / "t.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    r = CliRunner().invoke(app, ["train", str(toml), "--out", str(tmp_path / "o"), "--no-progress",
                                 "--set", "epochs=1", "--set", "act=\"relu\"", "--set", "weight_bits=0", "--set", "eval_every=2"])
    assert r.exit_code == 0, r.output
    summary = r.output.strip().splitlines()[-1]
    assert summary.startswith("t: digits_cnn relu wfp on sklearn-digits: test acc")
    assert json.loads((tmp_path / "o" / "config.json").read_text())["weight_bits"] is None
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [e["test_acc"] is None for e in m["epochs"]] == [True, False]  # eval_every = 2
    r = CliRunner().invoke(app, ["train", str(toml), "--out", str(tmp_path / "h"), "--no-progress",
                                 "--set", "epochs=1", "--set", "fold_epochs=0", "--set", "holdout=100"])
    assert r.exit_code == 0, r.output
    assert "val acc 0." in r.output and "(100 held-out training images)" in r.output


def test_warm_start_from_the_fp32_twin(tmp_path):
    """config key `init`: a QCFS run starts from its trained FP32 twin (folded weights,
    thresholds calibrated in network order) and keeps that accuracy from epoch 0."""
    from sia.quant import QCFS
    relu = train(from_dict({**TINY, "act": "relu", "weight_bits": 0}), tmp_path / "fp32",
                 progress=False)
    cfg = from_dict({**TINY, "epochs": 0, "fold_epochs": 1, "init": str(tmp_path / "fp32"),
                     "fold_lr": 0.001})
    res = train(cfg, tmp_path / "qcfs", progress=False)
    ws = res.metrics["warm_start"]
    thetas = [m.theta_value() for m in res.model.modules() if isinstance(m, QCFS)]
    assert len(ws["thetas"]) == len(thetas) > 0 and all(t > 0 for t in ws["thetas"])
    # the calibrated network, before any training step, is already close to its twin
    acc_start, acc_fp32 = res.metrics["test_acc_bn"], relu.metrics["test_acc"]
    assert acc_start > acc_fp32 - 0.1 and acc_start > 0.8
    # every conv weight came from the twin (up to the one epoch at a small LR)
    twin = load_file(str(tmp_path / "fp32" / "model.safetensors"))
    own = res.model.state_dict()
    w = [k for k in twin if k.endswith("conv.weight")]
    assert w and all(torch.allclose(own[k], twin[k], atol=0.05) for k in w)


def test_warm_start_errors(tmp_path):
    with pytest.raises(SiaError, match="set 'epochs' = 0"):
        from_dict({**TINY, "init": "somewhere"})
    cfg = from_dict({**TINY, "epochs": 0, "init": str(tmp_path / "none")})
    with pytest.raises(SiaError, match="no such file"):
        train(cfg, tmp_path / "run", progress=False)
    train(from_dict({**TINY, "act": "relu", "weight_bits": 0, "epochs": 1, "fold_epochs": 0}),
          tmp_path / "fp32", progress=False)
    other = from_dict({**TINY, "width": 1.0, "epochs": 0, "init": str(tmp_path / "fp32")})
    with pytest.raises(SiaError, match="width 0.5, this run a digits_cnn width 1.0"):
        train(other, tmp_path / "run2", progress=False)
    assert not (tmp_path / "run2" / "model.safetensors").exists()


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_training_matches_eager(tmp_path):
    """compile = true runs the same steps through torch.compile: both stages train, the
    files hold the plain module's keys, and the result equals the eager run's up to float
    reassociation."""
    kw = {**TINY, "epochs": 1, "fold_epochs": 1}
    eager = train(from_dict(kw), tmp_path / "e", progress=False)
    comp = train(from_dict({**kw, "compile": True}), tmp_path / "c", progress=False)
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in "ec")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4) for k in a)
    assert abs(eager.metrics["test_acc"] - comp.metrics["test_acc"]) <= 0.01
    # compile does not change the result, so a run may resume with it switched
    assert "compile" in _RESUME_FREE


def test_compile_without_a_cpp_compiler_is_one_line(monkeypatch):
    """On CPU, torch.compile builds C++ kernels: no compiler -> a SiaError naming it."""
    import sia.train.trainer as tr
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(SiaError, match="needs a C\\+\\+ compiler"):
        tr.compiled(torch.nn.Linear(2, 2), torch.device("cpu"))


def test_holdout_trains_without_the_held_out_images(tmp_path):
    """config key `holdout`: those training images leave the training batches, their
    accuracy is reported as val_acc, and a warm start or teacher must hold out the same."""
    from sia.data import load_digits_split
    from sia.data.holdout import holdout_indices
    from sia.train.trainer import Run
    cfg = from_dict({**TINY, "holdout": 200})
    run = Run(cfg, tmp_path / "r", progress=False)
    x, y = load_digits_split("train")
    kept, held = holdout_indices(y.numpy(), 200)
    assert len(run.val[1]) == 200 and len(run.train_batches.labels) == len(y) - 200
    assert torch.equal(run.val[0], x[held]) and torch.equal(run.train_batches.labels, y[kept])

    res = train(cfg, tmp_path / "a", progress=False)
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["holdout"] == 200 and m["val_acc"] == res.metrics["val_acc"] > 0.5
    assert all("val_acc" in e for e in m["epochs"]) and m["epochs"][-1]["val_acc"] == m["val_acc"]
    assert load_trained(tmp_path / "a")[1].holdout == 200
    assert "val_acc" not in train(from_dict({**TINY, "epochs": 1, "fold_epochs": 0}),
                                  tmp_path / "b", progress=False).metrics

    # learning from a run that saw the held-out images is refused before any training
    for other in (0, 100):
        kd = from_dict({**TINY, "holdout": other or 300, "epochs": 1, "fold_epochs": 0,
                        "distill": {"teacher": str(tmp_path / ("b" if not other else "a"))}})
        with pytest.raises(SiaError, match="must hold out the same images"):
            train(kd, tmp_path / f"kd{other}", progress=False)
        assert not (tmp_path / f"kd{other}" / "model.safetensors").exists()
    ok = from_dict({**TINY, "holdout": 200, "epochs": 1, "fold_epochs": 0,
                    "distill": {"teacher": str(tmp_path / "a")}})
    assert train(ok, tmp_path / "kd", progress=False).metrics["val_acc"] > 0.1
    with pytest.raises(SiaError, match="'holdout' must be >= 0"):
        from_dict({**TINY, "holdout": -1})
    with pytest.raises(SiaError, match="holdout 5000: must be 0, or between 10"):
        train(from_dict({**TINY, "holdout": 5000}), tmp_path / "big", progress=False)

"""benchmarks/cifar_snn_eval.py with a holdout, on a tiny synthetic CIFAR-shaped set: the
held-out training images never reach calibration or fine-tuning, and the golden
simulator reports them beside the test set."""

import json
import sys

import pytest
import torch

from benchmark_common import load_benchmark
from sia import SiaError
from sia.train import train
from sia.train.config import from_dict

N_TRAIN, N_TEST, HOLD = 120, 24, 20


def _fake_split(name, split, data_dir=None):
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    n = N_TRAIN if split == "train" else N_TEST
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x[:, y % 3] = 255 - x[:, y % 3] // 4          # a learnable hint: the bright channel
    return x, y


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_holdout_stays_out_of_calibration_and_finetuning(tmp_path, monkeypatch):
    import sia.train.trainer as trainer
    ev = load_benchmark("cifar_snn_eval")
    for mod in (trainer, ev):
        monkeypatch.setattr(mod, "load_split", _fake_split)
        monkeypatch.setattr(mod, "data_copy", lambda name, d=None: "synthetic")
    base = dict(dataset="cifar10", arch="vgg11", width=0.0625, epochs=0, fold_epochs=1,
                batch_size=20, num_threads=1, holdout=HOLD)
    train(from_dict({**base, "act": "relu", "weight_bits": 0, "epochs": 1, "fold_epochs": 0}),
          tmp_path / "fp32", progress=False)
    train(from_dict({**base, "init": str(tmp_path / "fp32")}), tmp_path / "qcfs", progress=False)

    seen = []
    calibrate, finetune = ev.calibrate_bias, ev.finetune
    monkeypatch.setattr(ev, "calibrate_bias", lambda p, x, *a, **k: seen.append(x) or calibrate(p, x, *a, **k))
    monkeypatch.setattr(ev, "finetune", lambda p, x, y, **k: seen.append(x) or finetune(p, x, y, **k))
    out = tmp_path / "eval"
    monkeypatch.setattr(sys, "argv", [
        "cifar_snn_eval.py", "--qcfs", str(tmp_path / "qcfs"), "--fp32", str(tmp_path / "fp32"),
        "--out", str(out), "--T", "4", "--calibrate", "30", "--finetune", "2", "--ft-batch", "8",
        "--ft-loss-steps", "4", "--threads", "1", "--batch-size", "64"])
    ev.main()
    res = json.loads((out / "eval.json").read_text())
    v = res["val"]
    assert v["images"] == HOLD and sorted(v["snn"]) == ["1", "2", "3", "4"]
    assert all(0 <= a <= 1 for a in v["snn"].values()) and 0 <= v["fp32_dnn"] <= 1
    assert res["test_images"] == N_TEST and res["config"]["holdout"] == HOLD

    x_all, y_all = _fake_split("cifar10", "train")
    held = ev.split_training(x_all, y_all, HOLD)[1][0].flatten(1)
    assert len(seen) == 2 and len(seen[0]) == 30 and len(seen[1]) == N_TRAIN - HOLD
    for x in seen:    # no image handed to calibration or fine-tuning is a held-out one
        assert not (x.flatten(1)[:, None] == held[None]).all(-1).any()

    # a further stage from a zoo entry of such a row (no runs here) keeps the same images out
    import sia.zoo
    from sia.program import load_program
    entry = {"dataset": "cifar10", "data": "synthetic", "fp32_acc": 0.5, "commit": "x",
             "reduced_precision_ann_acc": 0.4, "holdout": {**v, "fp32_dnn": 0.3}}
    monkeypatch.setattr(sia.zoo, "index", lambda: {"fake": entry})
    monkeypatch.setattr(ev, "resolve_program", lambda name: load_program(out / "program.safetensors"))
    seen.clear()
    monkeypatch.setattr(sys, "argv", [
        "cifar_snn_eval.py", "--program", "fake", "--out", str(tmp_path / "z"), "--T", "2",
        "--finetune", "1", "--ft-batch", "8", "--ft-loss-steps", "2", "--threads", "1"])
    ev.main()
    z = json.loads((tmp_path / "z" / "eval.json").read_text())
    assert z["val"]["images"] == HOLD and z["val"]["fp32_dnn"] == 0.3 and "holdout" not in z
    assert len(seen) == 1 and len(seen[0]) == N_TRAIN - HOLD

    # a twin that saw the held-out images is refused
    train(from_dict({**base, "holdout": 0, "act": "relu", "weight_bits": 0, "epochs": 1,
                     "fold_epochs": 0}), tmp_path / "fp32_all", progress=False)
    monkeypatch.setattr(sys, "argv", ["cifar_snn_eval.py", "--qcfs", str(tmp_path / "qcfs"),
                                      "--fp32", str(tmp_path / "fp32_all"), "--out", str(tmp_path / "e2")])
    with pytest.raises(SiaError, match="must hold out the same images"):
        ev.main()
    assert not (tmp_path / "e2").exists()

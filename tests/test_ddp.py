"""`sia train` under torchrun (gloo, 2 CPU processes) equals one process, same global batch.

On CPU there is no SyncBatchNorm, so BN statistics would be per rank; the check runs in
the folded stage (epochs = 0), where the two are the same computation up to float
summation order.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

CFG = """dataset = "digits"
arch = "digits_cnn"
act = "relu"
epochs = 0
fold_epochs = 2
batch_size = 64
fold_lr = 0.2
num_threads = 1
"""


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed beside this python")
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(CFG)
    base = ["-m", "sia.train", str(cfg), "--no-progress", "--out"]
    subprocess.run([sys.executable, *base, str(tmp_path / "one")], check=True,
                   capture_output=True, timeout=120)
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", *base,
                        str(tmp_path / "two")], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=k)
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert m2["world_size"] == 2 and m1["test_acc"] > 0.5
    assert abs(m1["test_acc"] - m2["test_acc"]) <= 1 / 360

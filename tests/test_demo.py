import json
from pathlib import Path

from sia.demo import run_demo

REPO = Path(__file__).resolve().parents[1]


def test_demo_end_to_end_short(tmp_path):
    """The main job with the shipped configs, shortened to a few epochs."""
    for kind in ("qcfs", "fp32"):
        text = (REPO / "configs" / f"digits_{kind}.toml").read_text()
        lines = [("epochs = 4" if ln.startswith("epochs =") else
                  "fold_epochs = 1" if ln.startswith("fold_epochs =") else ln)
                 for ln in text.splitlines()]
        (tmp_path / f"digits_{kind}.toml").write_text("\n".join(lines) + "\n")
    report = run_demo(tmp_path / "out", tmp_path, timesteps=4, progress=False)
    out = tmp_path / "out"
    assert (out / "accuracy_vs_timestep.png").stat().st_size > 1000
    saved = json.loads((out / "demo.json").read_text())
    assert saved["accuracy"]["fp32_dnn"] > 0.5
    assert len(saved["accuracy"]["snn"]) == 4
    assert report["golden"]["layers"][0]["spikes"] > 0
    assert (out / "digits_snn.safetensors").is_file()

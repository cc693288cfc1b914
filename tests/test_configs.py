"""Every shipped configuration loads: the training configs (configs/*.toml) through the
same checks `sia train` applies, the SIA builds (configs/sia/*.json) through SIAConfig's,
and a distilled config's teacher is the run of a shipped config (so the row it belongs
to reproduces with `sia train` commands only)."""

import json
from pathlib import Path

import pytest

from sia.hw.params import SIAConfig
from sia.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_training_config_loads(path):
    cfg = load_config(path)
    assert cfg.epochs >= 1 and cfg.dataset in ("digits", "cifar10")
    if cfg.distill:
        teacher = Path(cfg.distill["teacher"]).name
        assert (CONFIGS / f"{teacher}.toml").is_file(), f"teacher {teacher} has no config"
        t = load_config(CONFIGS / f"{teacher}.toml")   # the FP32 twin of the same network
        assert (t.act, t.arch, t.width, t.dataset) == ("relu", cfg.arch, cfg.width, cfg.dataset)


@pytest.mark.parametrize("path", sorted((CONFIGS / "sia").glob("*.json")), ids=lambda p: p.stem)
def test_sia_build_loads(path):
    cfg = SIAConfig.from_json(json.loads(path.read_text()))
    assert cfg.pes >= 1 and cfg.events_per_cycle in (1, 2, 4)

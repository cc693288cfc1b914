"""Every shipped configuration loads: the training configs (configs/*.toml) through the
same checks `sia train` applies, the SIA builds (configs/sia/*.json) through SIAConfig's,
and a distilled config's teacher is the run of a shipped config (so the row it belongs
to reproduces with `sia train` commands only)."""

import json
from pathlib import Path

import pytest

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_training_config_loads(path):
    cfg = load_config(path)
    assert cfg.epochs + cfg.fold_epochs >= 1 and cfg.dataset in ("digits", "cifar10")
    if cfg.init:       # a warm start trains the folded stage only, from a run with a config
        assert cfg.epochs == 0 and (CONFIGS / f"{Path(cfg.init).name}.toml").is_file()
    if cfg.distill:
        teacher = Path(cfg.distill["teacher"]).name
        assert (CONFIGS / f"{teacher}.toml").is_file(), f"teacher {teacher} has no config"
        t = load_config(CONFIGS / f"{teacher}.toml")   # the FP32 twin of the same network
        assert (t.act, t.arch, t.width, t.dataset) == ("relu", cfg.arch, cfg.width, cfg.dataset)


@pytest.mark.parametrize("path", sorted((CONFIGS / "sia").glob("*.json")), ids=lambda p: p.stem)
def test_sia_build_loads(path):
    cfg = SIAConfig.from_json(json.loads(path.read_text()))
    assert cfg.pes >= 1 and cfg.events_per_cycle in (1, 2, 4)


def test_sia_config_load_overrides_and_errors(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"pes": 16, "events_per_cycle": 4}))
    cfg = SIAConfig.load(f, events_per_cycle=2, phase_pairs=None)   # None: keep the file's
    assert (cfg.pes, cfg.events_per_cycle, cfg.phase_pairs) == (16, 2, False)
    assert SIAConfig.load(None) == SIAConfig()
    bad = [("missing.json", None, "no such parameter-set file"),
           ("broken.json", "{pes: 16", "not valid JSON"),
           ("list.json", "[16]", "a parameter set is a JSON object"),
           ("unknown.json", '{"lanes": 4}', "unknown keys"),
           ("invalid.json", '{"pes": 12}', "pes must be a power of two")]
    for name, text, msg in bad:
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(SiaError, match=msg):
            SIAConfig.load(tmp_path / name)
    with pytest.raises(SiaError, match="unknown keys"):
        SIAConfig.load(None, lanes=4)
    with pytest.raises(SiaError, match="events_per_cycle must be 1, 2 or 4"):
        SIAConfig.load(f, events_per_cycle=3)

"""`sia rtl export` and the synthesis-report helpers (Yosys runs here on one small block
only: `sia synth` of a whole design takes minutes of WebAssembly Yosys)."""

import json
from pathlib import Path

import pytest

from sia.cli import main
from sia.hw.rtl.synth import format_path, logic_depth, parse_stat, summarize

STAT = """
=== sia_top ===
     1206   CARRY4
        1   DSP48E1
     2918   FDRE
      140   INV
     4778   LUT2
     1063   LUT6
       22   RAMB18E1
       34   RAMB36E1
      216   RAM32M
"""


def _sia(args):
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None), e.code


def test_export_writes_verilog_and_json(tmp_path):
    _sia(["rtl", "export", "--pes", "2", "--out", str(tmp_path)])
    v = (tmp_path / "sia_top.v").read_text()
    assert "module sia_top" in v and "s_axis_tdata" in v and "m_axis_tlast" in v
    meta = json.loads((tmp_path / "sia_top.json").read_text())
    assert meta["params"]["pes"] == 2
    assert meta["ramb36_estimate"]["total"] == sum(
        v for k, v in meta["ramb36_estimate"].items() if k != "total") > 0
    assert meta["register_map"]["registers"]["ID"]["value"] == 0x53494131
    assert set(meta["timing"]) == {"C_LAUNCH", "C_STEP", "C_ROW", "C_HAND", "C_OUT_TAIL"}


@pytest.fixture
def exported(monkeypatch):
    """`sia rtl export` with the Verilog writer replaced by a recorder: the flag tests check
    which SIAConfig reaches the exporter (after the buildability check) without elaborating
    a design per case (~5 s each; test_export_writes_verilog_and_json runs the real one)."""
    import sia.hw.rtl.export as export_mod
    seen = []

    def record(cfg, out):
        seen.append(cfg)
        return {"verilog": Path(out) / "sia_top.v", "json": Path(out) / "sia_top.json"}
    monkeypatch.setattr(export_mod, "export", record)

    def run(*args):
        _sia(["rtl", "export", "--out", "unused", *args])
        return seen.pop()
    return run


@pytest.mark.parametrize("option,base", [("phase_pairs", {}), ("identity_drain", {}),
                                         ("row_prefetch", {}), ("pool_hold", {}),
                                         ("phase_quads", {"phase_pairs": True}),
                                         ("narrow_stream", {})])
def test_export_takes_the_build_flags_over_the_config_file(tmp_path, exported, option, base):
    """`sia rtl export|run` and `sia synth` take --phase-pairs, --identity-drain,
    --row-prefetch, --pool-hold, --phase-quads and --narrow-stream (and their --no- forms)
    like `sia simulate`; absent, the config file's value stands."""
    flag = "--" + option.replace("_", "-")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"pes": 2, **base, option: True}))
    assert getattr(exported("--config", str(cfg)), option) is True
    assert getattr(exported("--config", str(cfg), flag.replace("--", "--no-")), option) is False
    on = exported("--pes", "2", *[f"--{k.replace('_', '-')}" for k in base], flag)
    assert getattr(on, option) is True and on.pes == 2


def test_export_takes_psum_slots(tmp_path, capsys):
    """--psum-slots 8 and 5 build; 9 is a one-line error, nothing written."""
    _sia(["rtl", "export", "--pes", "2", "--psum-slots", "8", "--out", str(tmp_path / "ok")])
    assert json.loads((tmp_path / "ok" / "sia_top.json").read_text())["params"]["psum_slots"] == 8
    _sia(["rtl", "export", "--pes", "2", "--psum-slots", "5", "--out", str(tmp_path / "five")])
    assert json.loads((tmp_path / "five" / "sia_top.json").read_text())["params"]["psum_slots"] == 5
    with pytest.raises(SystemExit) as e:
        main(["rtl", "export", "--pes", "2", "--psum-slots", "9", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and "psum_slots must be in 4..8" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as e:     # pool hold holds one event: E <= 2
        main(["rtl", "export", "--pes", "2", "--events", "4", "--pool-hold",
              "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and "pool_hold needs events_per_cycle <= 2" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_export_refuses_bad_parameters(tmp_path, capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        main(["rtl", "export", "--pes", "128", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "cannot build" in capsys.readouterr().err


def test_stat_summary():
    r = summarize(parse_stat(STAT), None)["resources"]
    assert r["LUT"] == 140 + 4778 + 1063 + 4 * 216
    assert r["FF"] == 2918 and r["CARRY4"] == 1206 and r["DSP48E1"] == 1
    assert r["RAMB36_equiv"] == 34 + 11


def test_logic_depth_counts_lut_levels(tmp_path):
    # FF -> LUT -> LUT -> CARRY4 -> LUT -> FF  = 3 LUT levels, 1 CARRY4
    cells = {
        "ff0": {"type": "FDRE", "connections": {"Q": [2], "D": [9]}},
        "l1": {"type": "LUT2", "connections": {"I0": [2], "I1": [2], "O": [3]}},
        "l2": {"type": "LUT3", "connections": {"I0": [3], "O": [4]}},
        "c": {"type": "CARRY4", "connections": {"S": [4], "CO": [5], "O": [6]}},
        "l3": {"type": "LUT1", "connections": {"I0": [6], "O": [9]}},
    }
    p = tmp_path / "n.json"
    nets = {"state": {"bits": [2]}, "$abc$9": {"bits": [9]}, "nxt": {"bits": [9]}}
    p.write_text(json.dumps({"modules": {"sia_top": {"cells": cells, "netnames": nets}}}))
    assert logic_depth(p) == {"lut_levels": 3, "carry4_on_path": 1, "muxf_on_path": 0,
                              "path_from": "state[0]", "path_to": ["FDRE.D -> state[0]"]}
    assert format_path(logic_depth(p)) == ("3 LUT levels (1 CARRY4, 0 MUXF on it), "
                                            "from state[0] to FDRE.D -> state[0]")


def test_synth_one_block_reports_resources_and_path(tmp_path, capsys):
    """`sia synth --block pe` runs Yosys on one PE of the build (seconds at these
    sizes): resources, and a longest path with its ends; the weight memory's block RAM
    is the PE's estimate (a phase-quad build at 8-bit weights: the 8- and 16-bit parts
    one true dual-port RAMB18 each, the 32-bit part two simple dual-port copies = 2.5
    RAMB36, against 4 with a copy per read port); an unknown block is a one-line error
    with nothing written."""
    from sia.hw.params import SIAConfig
    from sia.hw.rtl.bram import weight_ram18
    params = {"pes": 2, "max_channels_in": 512, "max_width": 8, "max_height": 8,
              "acc_bits": 12, "phase_pairs": True, "phase_quads": True}
    cfg = tmp_path / "small.json"
    cfg.write_text(json.dumps(params))
    out = tmp_path / "pe"
    _sia(["synth", "--block", "pe", "--config", str(cfg), "--out", str(out)])
    rep = json.loads((out / "pe_report.json").read_text())
    assert rep["resources"]["LUT"] > 0 and rep["resources"]["DSP48E1"] == 0
    assert rep["resources"]["RAMB36_equiv"] == weight_ram18(SIAConfig(**params)) / 2 == 2.5
    path = rep["longest_path_cells"]
    assert path["lut_levels"] >= 2 and path["path_to"]
    assert "pe alone (P=2 E=2)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["synth", "--block", "alu", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and "choose one of pe, dispatcher, aggregation" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

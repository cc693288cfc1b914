"""`sia deploy pack|inspect|vivado|reports` and `sia run --backend`, through sia.cli.main."""

import json
from pathlib import Path

import pytest

from deploy_common import program
from sia.cli import main
from sia.deploy.vivado import tcl_command
from sia.program import save_program
from test_deploy_vivado import VERILOG

DATA = Path(__file__).parent / "data" / "vivado"


@pytest.fixture(scope="module")
def prog_file(tmp_path_factory):
    return save_program(program(), tmp_path_factory.mktemp("prog") / "digits.safetensors")


def sia(*argv):
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def test_pack_and_inspect(prog_file, tmp_path, capsys):
    out = tmp_path / "d.siaimg"
    assert sia("deploy", "pack", prog_file, "-o", out) == 0
    assert "3 launches" in capsys.readouterr().out and out.is_file()
    assert sia("deploy", "inspect", out) == 0
    assert "fc5 tile 0" in capsys.readouterr().out
    cfg = tmp_path / "p32.json"
    cfg.write_text(json.dumps({"pes": 32}))
    assert sia("deploy", "inspect", out, "--config", cfg) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "another SIA parameter set: pes=64 (accelerator: 32)" in err
    bad = tmp_path / "bad.siaimg"
    data = out.read_bytes()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    assert sia("deploy", "inspect", bad) == 2
    assert "CRC mismatch" in capsys.readouterr().err


def test_pack_failure_leaves_nothing(prog_file, tmp_path, capsys):
    out = tmp_path / "x.siaimg"
    assert sia("deploy", "pack", prog_file, "-o", out, "--T", 99) == 2
    assert "T=99" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_vivado_and_reports(tmp_path, capsys):
    v = tmp_path / "top.v"
    v.write_text(VERILOG)
    d = tmp_path / "viv"
    check = [] if tcl_command() else ["--no-check"]
    assert sia("deploy", "vivado", "--out", d, "--verilog", v, *check) == 0
    assert "wrote" in capsys.readouterr().out and (d / "tcl" / "build.tcl").is_file()
    assert sia("deploy", "vivado", "--out", d, "--verilog", v, "--no-check") == 2
    assert "pass --force" in capsys.readouterr().err
    j = tmp_path / "r.json"
    assert sia("deploy", "reports", DATA, "--json", j) == 0
    assert "LUT 31234" in capsys.readouterr().out
    assert json.loads(j.read_text())["summary"]["dsp"] == 0
    assert sia("deploy", "reports", tmp_path) == 2
    assert "no such report" in capsys.readouterr().err


def test_reports_flow_into_the_model_report(prog_file, tmp_path, capsys):
    """Vivado's DSP count and power replace the model report's estimates (GOPS/DSP, GOPS/W).
    The numbers in tests/data/vivado are hand-written test data, not a real run."""
    j = tmp_path / "r.json"
    assert sia("deploy", "reports", DATA, "--program", prog_file, "--images", 2, "--json", j) == 0
    assert "GOPS/DSP n/a (0 DSPs)" in capsys.readouterr().out
    m = json.loads(j.read_text())["model"]
    assert m["dsp"] == {"count": 0, "source": f"Vivado report_utilization {DATA}"}
    assert m["board"]["power_w"] == 1.712
    assert m["board"]["gops_per_w"] == pytest.approx(m["gops_acc"] / 1.712)


def test_run_backends_agree(prog_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert sia("run", prog_file, "--backend", "twin", "--images", 3, "--compare", "golden",
               "--out", out) == 0
    assert "vs golden: bit-exact" in capsys.readouterr().out
    assert json.loads(out.read_text())["compare"]["bit_exact"] is True
    assert sia("run", prog_file, "--backend", "nope", "--images", 1) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err

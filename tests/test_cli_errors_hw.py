"""Bad parameter sets, indices, report files and output paths of the hardware and deploy
commands: one line, exit 2, and nothing half-written (defects an audit of the CLI
found, session 24)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sia import SiaError
from sia.cli import main
from sia.hw.params import SIAConfig

PROG = "digits_cnn_l8"
VIVADO_DATA = Path(__file__).parent / "data" / "vivado"


def sia(*argv):
    """Runs the CLI in this process; the exit status."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return 0 if code is None else code


def one_line_error(capsys, argv, msg):
    assert sia(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert msg in err, err
    return err


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ------------------------------------------------------------------ 1. parameter types
@pytest.mark.parametrize("text, msg", [
    ('{"clock_mhz": Infinity}', "clock_mhz must be a finite number, got Infinity"),
    ('{"clock_mhz": 1e308}', "clock_mhz must be a finite number in 0.001..1000 (MHz)"),
    ('{"clock_mhz": 0}', "clock_mhz must be a finite number in 0.001..1000"),
    ('{"clock_mhz": "100"}', "clock_mhz must be a finite number"),
    ('{"clock_mhz": true}', "clock_mhz must be a finite number"),
    ('{"weight_bits": 8.5}', "weight_bits must be an integer, got 8.5"),
    ('{"events_per_cycle": 2.0}', "events_per_cycle must be an integer, got 2.0"),
    ('{"membrane_positions": 3.5}', "membrane_positions must be an integer"),
    ('{"pes": true}', "pes must be an integer, got true"),
    ('{"phase_pairs": 1}', "phase_pairs must be true or false, got 1"),
])
def test_parameter_types(tmp_path, capsys, text, msg):
    cfg = tmp_path / "c.json"
    cfg.write_text(text)
    with pytest.raises(SiaError, match="invalid SIA parameters"):
        SIAConfig.load(cfg)
    out = tmp_path / "x.siaimg"
    one_line_error(capsys, ["deploy", "pack", PROG, "-o", out, "--config", cfg], msg)
    assert listing(tmp_path) == ["c.json"]


def test_parameter_types_accepted():
    assert SIAConfig(clock_mhz=100).clock_mhz == 100 and SIAConfig(clock_mhz=1000.0)
    c = SIAConfig(pes=np.int64(32), clock_mhz=np.float32(50))
    assert type(c.pes) is int and type(c.clock_mhz) is float
    json.dumps(c.to_json())


@pytest.mark.parametrize("clock", ["inf", "1e308", "nan"])
def test_clock_option_checked_before_the_run(tmp_path, capsys, monkeypatch, clock):
    import sia.hw.model
    monkeypatch.setattr(sia.hw.model, "run", lambda *a, **k: pytest.fail("model ran"))
    one_line_error(capsys, ["simulate", PROG, "--clock-mhz", clock, "--out", tmp_path / "o"],
                   "invalid SIA parameters: clock_mhz")
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ 2. membrane rule
def test_membrane_rule_pack_and_twin(tmp_path, capsys):
    """The model refuses membrane_positions=4 for the digits CNN: so do pack and twin."""
    cfg = tmp_path / "m4.json"
    cfg.write_text('{"membrane_positions": 4}')
    msg = "membranes need 8 words per bank > membrane_positions=4"
    one_line_error(capsys, ["simulate", PROG, "--images", 1, "--config", cfg], msg)
    one_line_error(capsys, ["deploy", "pack", PROG, "-o", tmp_path / "x.siaimg",
                            "--config", cfg], msg)
    one_line_error(capsys, ["run", PROG, "--backend", "twin", "--images", 1, "--config", cfg],
                   msg)
    assert listing(tmp_path) == ["m4.json"]


def test_membrane_rule_in_an_image(tmp_path, capsys):
    """An image packed for too small membrane banks (by an older sia) is refused too."""
    import dataclasses
    from sia.deploy.image import ProgramImage, build_image
    from sia.program.resolve import resolve_program
    img = build_image(resolve_program(PROG))
    cfg = dataclasses.replace(img.config, membrane_positions=4)
    man = dict(img.manifest, sia_config=cfg.to_json())
    f = tmp_path / "m4.siaimg"
    f.write_bytes(ProgramImage(cfg, img.regmap_version, man, img.payload).to_bytes())
    one_line_error(capsys, ["deploy", "inspect", f], "membrane_positions=4")


# ------------------------------------------------------------------ 3. rtl export
def test_rtl_export_bad_config_leaves_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"clock_mhz": Infinity}')
    one_line_error(capsys, ["rtl", "export", "--config", cfg, "--out", tmp_path / "a" / "b"],
                   "clock_mhz")
    assert listing(tmp_path) == ["c.json"]


def test_rtl_export_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    from sia.hw.rtl import export as ex

    def boom(cfg):
        raise SiaError("elaboration failed")
    monkeypatch.setattr(ex, "verilog_text", boom)
    for call in (lambda: ex.export(SIAConfig(pes=2), tmp_path / "a" / "b"),
                 lambda: ex.write_verilog(SIAConfig(pes=2), tmp_path / "c" / "sia_top.v")):
        with pytest.raises(SiaError, match="elaboration failed"):
            call()
    assert listing(tmp_path) == []


def test_rtl_export_failed_write_leaves_nothing(tmp_path, monkeypatch):
    from sia.hw.rtl import export as ex
    monkeypatch.setattr(ex, "verilog_text", lambda cfg: "module sia_top; endmodule\n")
    real = Path.write_text

    def write_text(self, text, *a, **k):   # the second file fails after the first is written
        if self.name == "sia_top.json":
            raise OSError(28, "No space left on device")
        return real(self, text, *a, **k)
    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(SiaError, match="cannot write .*No space left"):
        ex.export(SIAConfig(pes=2), tmp_path / "a" / "b")
    assert listing(tmp_path) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(SiaError, match="not a directory"):
        ex.export(SIAConfig(pes=2), tmp_path / "f")


# ------------------------------------------------------------------ 4. rtl run indices
@pytest.mark.parametrize("args, msg", [
    (["--image", 99999], "--image 99999 outside the test set of 360 images (indices 0..359)"),
    (["--image", 358, "--batch", 3], "images 358..360) outside the test set of 360 images"),
    (["--image", -1, "--batch", 3], "--image -1: a test-image index is >= 0"),
    (["--image", -5], "--image -5: a test-image index is >= 0"),
])
def test_rtl_run_image_index(tmp_path, capsys, args, msg):
    one_line_error(capsys, ["rtl", "run", PROG, *args, "--out", tmp_path / "r.json"], msg)
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ 5. deploy reports --json
def test_reports_json_paths(tmp_path, capsys):
    d = tmp_path / "rep"
    d.mkdir()
    one_line_error(capsys, ["deploy", "reports", VIVADO_DATA, "--json", d],
                   f"--json {d} is a directory")
    assert listing(tmp_path) == ["rep"]
    out = tmp_path / "nodir" / "deeper" / "x.json"
    assert sia("deploy", "reports", VIVADO_DATA, "--json", out) == 0
    assert json.loads(out.read_text())["summary"]["lut"] == 31234
    assert listing(tmp_path) == ["nodir", "nodir/deeper", "nodir/deeper/x.json", "rep"]


def test_reports_json_failed_write_leaves_nothing(tmp_path, monkeypatch):
    from sia.deploy import reports

    def fail(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    out = tmp_path / "new" / "x.json"
    with pytest.raises(SiaError) as e:
        reports.write_json({"a": 1}, out)
    assert str(e.value) == f"cannot write {out}: No space left on device"
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ 6. deploy vivado
@pytest.fixture
def verilog(tmp_path_factory):
    from test_deploy_vivado import VERILOG
    f = tmp_path_factory.mktemp("v") / "top.v"
    f.write_text(VERILOG)
    return f


def test_vivado_file_target(tmp_path, capsys, verilog):
    victim = tmp_path / "victim.safetensors"
    victim.write_text("precious")
    one_line_error(capsys, ["deploy", "vivado", "--out", victim, "--force", "--verilog", verilog,
                            "--no-check"], "--out must be a directory")
    assert listing(tmp_path) == ["victim.safetensors"] and victim.read_text() == "precious"


def test_vivado_force_replaces_a_directory(tmp_path, capsys, verilog):
    out = tmp_path / "proj"
    for _ in range(2):
        assert sia("deploy", "vivado", "--out", out, "--force", "--verilog", verilog,
                   "--no-check") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


@pytest.mark.parametrize("jobs", [0, -3])
def test_vivado_jobs(tmp_path, capsys, verilog, jobs):
    one_line_error(capsys, ["deploy", "vivado", "--out", tmp_path / "p", "--jobs", jobs,
                            "--verilog", verilog, "--no-check"],
                   f"--jobs {jobs}: Vivado needs at least 1 parallel job")
    assert listing(tmp_path) == []


def test_vivado_binary_verilog(tmp_path, capsys):
    png = tmp_path / "img.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    one_line_error(capsys, ["deploy", "vivado", "--out", tmp_path / "p", "--verilog", png,
                            "--no-check"], f"--verilog {png}: not a Verilog text file")
    assert listing(tmp_path) == ["img.png"]


# ------------------------------------------------------------------ 7. --synth-report
@pytest.mark.parametrize("content, msg", [
    ("hello", "not a `sia synth` report (not valid JSON"),
    ("[1, 2]", "needs a JSON object with resources.DSP48E1"),
    ('{"a": 1}', "needs a JSON object with resources.DSP48E1"),
    ('{"resources": [1]}', "needs a JSON object with resources.DSP48E1"),
    ('{"resources": {"DSP48E1": "x"}}', "needs a JSON object with resources.DSP48E1"),
    (None, "(a directory; give its synth_report.json)"),
])
def test_synth_report_checked_before_the_run(tmp_path, capsys, monkeypatch, content, msg):
    import sia.hw.model
    monkeypatch.setattr(sia.hw.model, "run", lambda *a, **k: pytest.fail("model ran"))
    f = tmp_path / "synth_report.json"
    if content is None:
        f.mkdir()
    else:
        f.write_text(content)
    one_line_error(capsys, ["simulate", PROG, "--synth-report", f], msg)


def test_synth_report_good(tmp_path):
    from sia.hw.model.report import synth_dsp
    f = tmp_path / "synth_report.json"
    f.write_text('{"resources": {"DSP48E1": 3}}')
    assert synth_dsp(f)[0] == 3


# ------------------------------------------------------------------ 8. simulate --out
def test_simulate_out_failed_png_leaves_nothing(tmp_path, monkeypatch):
    from sia.hw.model import report

    def boom(summary, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(report, "plot_layers", boom)
    summ = {"layers": []}
    with pytest.raises(SiaError, match="cannot write into .*No space left"):
        report.write(summ, tmp_path / "new" / "D")
    assert listing(tmp_path) == []
    d = tmp_path / "D"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    with pytest.raises(SiaError):
        report.write(summ, d)
    assert listing(tmp_path) == ["D", "D/keep.txt"]


def test_simulate_out_checked_before_the_run(tmp_path, capsys, monkeypatch):
    import sia.hw.model
    monkeypatch.setattr(sia.hw.model, "run", lambda *a, **k: pytest.fail("model ran"))
    (tmp_path / "D" / "sia_model_layers.png").mkdir(parents=True)
    one_line_error(capsys, ["simulate", PROG, "--out", tmp_path / "D"],
                   "sia_model_layers.png is a directory")
    (tmp_path / "f").write_text("x")
    one_line_error(capsys, ["simulate", PROG, "--out", tmp_path / "f"],
                   "exists and is not a directory")
    assert listing(tmp_path) == ["D", "D/sia_model_layers.png", "f"]


# ------------------------------------------------------------------ 9. dse
@pytest.mark.parametrize("args, msg", [
    (["--phase-quads", "on"], "phase quads need phase pairs"),
    (["--phase-quads", "off,on", "--phase-pairs", "off"], "phase quads need phase pairs"),
    (["--T", "4,17"], "--T 17 outside 1..16 (program digits_snn t_max=16"),
    (["--T", "0,4"], "--T 0 outside 1..16"),
    (["--events", "3"], "events_per_cycle must be 1, 2 or 4"),
])
def test_dse_options(tmp_path, capsys, monkeypatch, args, msg):
    from sia.hw.model import dse
    monkeypatch.setattr(dse, "run", lambda *a, **k: pytest.fail("model ran"))
    one_line_error(capsys, ["dse", PROG, *args, "--out", tmp_path / "o"], msg)
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ 10. deploy inspect
def _image_with(tmp_path, **manifest):
    from sia.deploy.image import ProgramImage, build_image
    from sia.program.resolve import resolve_program
    img = build_image(resolve_program(PROG))
    f = tmp_path / "bad.siaimg"
    f.write_bytes(ProgramImage(img.config, img.regmap_version, dict(img.manifest, **manifest),
                               img.payload).to_bytes())
    return f


@pytest.mark.parametrize("manifest", [
    {"launches": [1, 2, 3]},
    {"launches": {"a": 1}},
    {"launches": [{"layer": 0}, {"layer": 1}, {"layer": 2}]},
    {"layers": [1, 2, 3]},
    {"layers": 5},
    {"program": None},
])
def test_inspect_malformed_manifest(tmp_path, capsys, manifest):
    f = _image_with(tmp_path, **manifest)
    one_line_error(capsys, ["deploy", "inspect", f], "malformed manifest")

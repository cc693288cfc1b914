"""`sia deploy vivado`: the directory is complete, the TCL runs under Tcl (tclsh, or the
Tcl inside Python's tkinter) with stub Vivado commands, and the Vivado reports parse back
into sia."""

import json
import re
import shutil

import pytest

from sia import SiaError
from sia.deploy.reports import parse_power, parse_reports, parse_timing_summary, parse_utilization
from sia.deploy.vivado import check_vivado_dir, run_tcl_check, tcl_command, write_vivado_dir
from sia.hw.params import SIAConfig

DATA = __import__("pathlib").Path(__file__).parent / "data" / "vivado"
needs_tcl = pytest.mark.skipif(tcl_command() is None, reason="no Tcl: neither tclsh nor tkinter")

# the port list of sia/hw/rtl/top.py's SIATop (exporting the real RTL takes ~45 s)
VERILOG = """module sia_top(clk, rst, s_axil_awaddr, s_axil_awvalid, s_axil_awready, s_axil_wdata,
  s_axil_araddr, s_axil_rdata, s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast,
  m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast, irq_done);
  input clk; input rst; input [7:0] s_axil_awaddr; input s_axil_awvalid; output s_axil_awready;
  input [31:0] s_axil_wdata; input [7:0] s_axil_araddr; output [31:0] s_axil_rdata;
  input [63:0] s_axis_tdata; input s_axis_tvalid; output s_axis_tready; input s_axis_tlast;
  output [63:0] m_axis_tdata; output m_axis_tvalid; input m_axis_tready; output m_axis_tlast;
  output irq_done;
endmodule
"""


@pytest.fixture(scope="module")
def vdir(tmp_path_factory):
    return write_vivado_dir(tmp_path_factory.mktemp("viv") / "proj", SIAConfig(), verilog=VERILOG)


def test_directory_complete(vdir):
    m = check_vivado_dir(vdir)
    assert set(m["files"]) >= {"rtl/sia_top.v", "constraints/sia.xdc", "tcl/settings.tcl",
                               "tcl/create_project.tcl", "tcl/build.tcl", "run_vivado.sh",
                               "regmap.json", "README.md"}
    assert m["part"] == "xc7z020clg400-1" and m["clock_mhz"] == 100.0
    settings = (vdir / "tcl" / "settings.tcl").read_text()
    for line in ("set part {xc7z020clg400-1}", "set clock_mhz {100}", "set dma_length_width {26}",
                 "set stream_bits {64}", "set sia_s_axi {s_axil}", "set sia_rst_source {peripheral_reset}"):
        assert line in settings
    rm = json.loads((vdir / "regmap.json").read_text())
    assert rm["registers"]["ID"]["value"] == 0x53494131
    assert rm["registers"]["PARAM_PES"]["value"] == 64


@needs_tcl
def test_tcl_runs_with_stub_vivado(vdir):
    calls = "\n".join(run_tcl_check(vdir))
    for needle in ("create_project sia_pynq", "-part xc7z020clg400-1",
                   "xilinx.com:ip:processing_system7:5.5", "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100",
                   "xilinx.com:ip:axi_dma:7.1", "CONFIG.c_sg_length_width 26", "CONFIG.c_include_sg 0",
                   "CONFIG.c_m_axis_mm2s_tdata_width 64", "-type module -reference sia_top sia_0",
                   "connect_bd_intf_net axi_dma_0/M_AXIS_MM2S sia_0/s_axis",
                   "connect_bd_intf_net sia_0/m_axis axi_dma_0/S_AXIS_S2MM",
                   "Slave /sia_0/s_axil", "Slave /axi_dma_0/S_AXI_LITE",
                   "Master /axi_dma_0/M_AXI_MM2S Slave /processing_system7_0/S_AXI_HP0",
                   "peripheral_reset sia_0/rst", "processing_system7_0/FCLK_CLK0 sia_0/clk",
                   "launch_runs synth_1", "launch_runs impl_1 -to_step write_bitstream",
                   "report_utilization -file", "report_timing_summary", "report_power -file",
                   "make_wrapper", "validate_bd_design"):
        assert needle in calls, needle


@pytest.fixture(params=["tclsh", "python"])
def tcl(request, monkeypatch):
    """The Tcl interpreter a check runs in: tclsh, or (tclsh hidden) Python's tkinter."""
    import sia.deploy.vivado.writer as writer
    if request.param == "tclsh":
        if not shutil.which("tclsh"):
            pytest.skip("tclsh not installed")
    else:
        pytest.importorskip("tkinter")
        monkeypatch.setattr(writer.shutil, "which", lambda name: None)
        assert writer.tcl_command()[0] != "tclsh"
    return request.param


@needs_tcl
def test_python_tcl_logs_what_tclsh_logs(vdir, monkeypatch):
    """Without tclsh the check runs in the Tcl inside Python's tkinter and logs the same
    Vivado commands (each check runs in its own scratch directory)."""
    pytest.importorskip("tkinter")
    import sia.deploy.vivado.writer as writer
    first = run_tcl_check(vdir)
    monkeypatch.setattr(writer.shutil, "which", lambda name: None)
    second = run_tcl_check(vdir)
    scrub = [[re.sub(r"sia-tclcheck-\w+", "SCRATCH", ln) for ln in x] for x in (first, second)]
    assert "create_project sia_pynq" in "\n".join(second) and scrub[0] == scrub[1]


def test_tcl_errors_are_reported(vdir, tmp_path, tcl):
    broken = tmp_path / "broken"
    shutil.copytree(vdir, broken)
    f = broken / "tcl" / "create_project.tcl"
    f.write_text(f.read_text().replace("validate_bd_design", "validate_bd_design {"))
    with pytest.raises(SiaError, match="TCL check of .* failed"):
        run_tcl_check(broken)
    f.write_text(f.read_text().replace("validate_bd_design {", "validate_bd_desing"))
    with pytest.raises(SiaError, match="unknown command 'validate_bd_desing'"):
        run_tcl_check(broken)


def test_modified_or_incomplete_directory_refused(vdir, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(vdir, d)
    (d / "constraints" / "sia.xdc").write_text("# edited\n")
    with pytest.raises(SiaError, match="sia.xdc changed"):
        check_vivado_dir(d)
    (d / "tcl" / "build.tcl").unlink()
    with pytest.raises(SiaError, match="missing file tcl/build.tcl|changed"):
        check_vivado_dir(d)


def test_writer_refusals(vdir, tmp_path):
    with pytest.raises(SiaError, match="exists; pass --force"):
        write_vivado_dir(vdir, verilog=VERILOG)
    with pytest.raises(SiaError, match="lacks ports"):
        write_vivado_dir(tmp_path / "x", verilog=VERILOG.replace("s_axis_tlast", "s_axis_tkeep"))
    with pytest.raises(SiaError, match="8..26"):
        write_vivado_dir(tmp_path / "y", verilog=VERILOG, dma_length_width=27)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))
    d = write_vivado_dir(vdir, verilog=VERILOG, dma_length_width=23, force=True)
    assert "set dma_length_width {23}" in (d / "tcl" / "settings.tcl").read_text()


def test_reports_parse():
    r = parse_reports(DATA)
    s = r["summary"]
    assert (s["lut"], s["ff"], s["bram_tile"], s["dsp"]) == (31234, 40321, 98.5, 0)
    assert r["utilization"]["lut"]["available"] == 53200
    assert r["utilization"]["device"] == "xc7z020clg400-1"
    assert (s["wns_ns"], s["whs_ns"], s["timing_met"], s["clock_mhz"]) == (1.25, 0.021, True, 100.0)
    assert s["fmax_mhz_est"] == pytest.approx(1000 / 8.75, abs=0.01)
    assert (s["power_w"], s["dynamic_w"], s["static_w"]) == (1.712, 1.57, 0.142)
    assert r["power"]["components"]["PS7"] == 1.256


def test_reports_older_layout_and_failures(tmp_path):
    # Vivado 2018-style utilization tables: no 'Prohibited' column
    old = tmp_path / "u.rpt"
    old.write_text("""| Tool Version : Vivado v.2018.3 (lin64) Build 2405991 Thu Dec  6 23:36:41 MST 2018
| Design       : sia_bd_wrapper
| Device       : 7z020clg400-1
| Design State : Routed

Utilization Design Information

1. Slice Logic
--------------

+----------------------------+-------+-------+-----------+-------+
|          Site Type         |  Used | Fixed | Available | Util% |
+----------------------------+-------+-------+-----------+-------+
| Slice LUTs                 |  9000 |     0 |     53200 | 16.92 |
| Slice Registers            | 12000 |     0 |    106400 | 11.28 |
+----------------------------+-------+-------+-----------+-------+

3. Memory
---------

+-------------------+------+-------+-----------+-------+
|     Site Type     | Used | Fixed | Available | Util% |
+-------------------+------+-------+-----------+-------+
| Block RAM Tile    |   40 |     0 |       140 | 28.57 |
+-------------------+------+-------+-----------+-------+

4. DSP
------

+-----------+------+-------+-----------+-------+
| Site Type | Used | Fixed | Available | Util% |
+-----------+------+-------+-----------+-------+
| DSPs      |    3 |     0 |       220 |  1.36 |
+-----------+------+-------+-----------+-------+
""")
    u = parse_utilization(old)
    assert (u["lut"]["used"], u["ff"]["used"], u["bram_tile"]["used"], u["dsp"]["used"]) == (9000, 12000, 40, 3)
    t = (DATA / "timing_summary.rpt").read_text().replace("      1.250  ", "     -0.412  ").replace(
        "All user specified timing constraints are met.", "Timing constraints are not met.")
    tf = tmp_path / "t.rpt"
    tf.write_text(t)
    tr = parse_timing_summary(tf)
    assert tr["wns_ns"] == -0.412 and not tr["constraints_met"]
    bad = tmp_path / "bad.rpt"
    bad.write_text("not a report\n")
    for fn in (parse_utilization, parse_timing_summary, parse_power):
        with pytest.raises(SiaError, match="bad.rpt"):
            fn(bad)
    with pytest.raises(SiaError, match="no such report"):
        parse_power(tmp_path / "missing.rpt")

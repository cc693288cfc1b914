"""The block-RAM count without Yosys (sia/hw/rtl/bram.py): the 7-series port ratios at
their edges, the shared-weight-port rule, and the whole design against the `sia synth`
reports committed for the current memory mapping (session 23 on, plus the 64-PE
default, whose memories it did not change)."""

import json
from pathlib import Path

import pytest

from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import design_ram36, exact, ram18, share_weight_port, weight_ram18
from sia.hw.rtl.pe import weight_sets

RTL_DOCS = Path(__file__).resolve().parents[1] / "docs" / "rtl"


@pytest.mark.parametrize("width,depth,true_dual,want", [
    (36, 512, False, 1), (37, 512, False, 2),      # simple dual-port: 512 x 36
    (18, 1024, False, 1), (19, 1024, False, 2), (36, 513, False, 2),
    (18, 1024, True, 1), (19, 512, True, 2),       # true dual-port: at most 18 wide
    (1, 16384, False, 1), (1, 16385, False, 2),    # deepest ratio, then replicated
    (72, 4096, False, 16), (64, 8192, False, 32), (16, 8192, False, 8),
])
def test_ram18_ratios(width, depth, true_dual, want):
    assert ram18(width, depth, true_dual) == want


def test_weight_port_shared_only_where_cheaper():
    """Phase quads at 8-bit codes share the 8- and 16-bit parts (1 RAMB18 each instead of
    2), not the 32-bit one (2 either way); a whole 72-bit row never; E = 1 and LUT-RAM
    depths never."""
    quads = SIAConfig(pes=16, phase_pairs=True, phase_quads=True)
    assert [share_weight_port(quads, len(ks) * 8) for _, ks in weight_sets(quads)] == \
        [True, True, True, False]
    assert weight_ram18(quads) == 5
    pairs = SIAConfig(pes=16, phase_pairs=True)
    assert [share_weight_port(pairs, len(ks) * 8) for _, ks in weight_sets(pairs)] == [False, True]
    assert weight_ram18(pairs) == 5 and weight_ram18(SIAConfig()) == 4
    assert not share_weight_port(SIAConfig(events_per_cycle=1, phase_pairs=True), 8)
    assert not share_weight_port(SIAConfig(max_channels_in=64, phase_pairs=True), 8)
    assert weight_ram18(SIAConfig(max_channels_in=64)) == 0


@pytest.mark.parametrize("report", [
    "synth_xc7z020_e2_hold_slots5_s23.json", "synth_xc7z020_e2_hold_slots5_quads_s23.json",
    "synth_xc7z020_e2_hold_slots5_quads_narrow_s23.json",
    "synth_resnet18_w025_quads_narrow_s23.json", "synth_resnet18_w025_base_s23.json",
    "synth_r18_p16e2_phase_idrain_slots5_s24.json", "synth_r18_p16e2_phase_idrain_slots5_quads_s24.json",
    "synth_p64_s17.json", "synth_resnet18_w025_quads_narrow_signed_k3_s28.json",
    "synth_resnet18_p16e2_slots5_quads_signed_k3_s28.json",
    "synth_resnet18_w025_quads_narrow_signed_s28.json", "synth_resnet18_p16e2_slots5_quads_signed_s28.json",
    "synth_resnet18_w025_quads_narrow_signed_k3_drain_s28.json",
    "synth_resnet18_w025_quads_narrow_signed_negate_k4_drain_s28.json",
    "synth_resnet18_w025_quads_narrow_signed_firststep_s29.json",
    "synth_resnet18_w025_quads_narrow_signed_s29.json",
    "synth_resnet18_p16e2_slots5_quads_signed_s29.json",
    "synth_resnet18_w025_quads_narrow_signed_drain_s30.json",
    "synth_resnet18_p16e2_slots5_quads_signed_drain_s30.json"])
def test_design_estimate_equals_yosys(report):
    rep = json.loads((RTL_DOCS / report).read_text())
    # (reports before session 30: no output ring, a signed build's copy in one bank)
    est = design_ram36(SIAConfig.from_json(rep["params"]), session30=rep.get("output_ring", False))
    assert est["total"] == rep["resources"]["RAMB36_equiv"]
    assert est["total"] == sum(v for k, v in est.items() if k != "total")


def test_synth_report_prints_the_estimate_beside_yosys():
    """`sia synth` stores the estimate per memory in its report and prints its total
    beside Yosys's count."""
    from sia.hw.rtl.synth import format_report
    rep = json.loads((RTL_DOCS / "synth_xc7z020_e2_hold_slots5_s23.json").read_text())
    rep["ramb36_estimate"] = design_ram36(SIAConfig.from_json(rep["params"]), session30=False)
    line = next(ln for ln in format_report(rep).splitlines() if "RAMB36E1" in ln)
    assert "= 69.5 RAMB36 / 140 (49.6 %) [estimate without Yosys: 69.5]" in line


def test_shallow_weight_memories_are_an_upper_bound():
    """65..128-word weight memories: Yosys may put parts in LUT RAM, so the count is a
    bound and says so (in `sia synth`'s line and `sia dse`'s column)."""
    from sia.hw.model.dse import table_rows
    from sia.hw.rtl.synth import format_report
    assert [exact(SIAConfig(max_channels_in=d)) for d in (64, 65, 128, 129, 512)] == \
        [True, False, False, True, True]
    rep = json.loads((RTL_DOCS / "synth_xc7z020_e2_hold_slots5_s23.json").read_text())
    rep.update(ramb36_estimate={"total": 80.0}, ramb36_exact=False)
    assert "[estimate without Yosys: <= 80.0]" in format_report(rep)
    row = {"pes": 4, "events_per_cycle": 2, "timesteps": 2, "weight_bits": 8, "phase_pairs": False,
           "phase_quads": False, "narrow_stream": False, "identity_drain": False, "psum_slots": 4,
           "weight_batch": 1, "fits": False, "ramb36": 150.0, "ramb36_exact": False}
    assert table_rows([row])[0][-1] == "<= 150"
    assert table_rows([{**row, "ramb36_exact": True}])[0][-1] == "150 (> XC7Z020)"

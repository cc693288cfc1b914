"""`sia rtl export`: the top-level Verilog plus a JSON of parameters and register map."""

import json
from pathlib import Path

from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import design_ram36
from sia.hw.rtl.bram import exact as bram_exact
from sia.outputs import check_out_dir, write_outputs


def verilog_text(cfg: SIAConfig) -> str:
    from amaranth.back import verilog
    from sia.hw.rtl.top import SIATop, check_buildable
    check_buildable(cfg)
    return verilog.convert(SIATop(cfg), name="sia_top", emit_src=False)


def write_verilog(cfg: SIAConfig, path) -> Path:
    """Elaborates first: a build that fails leaves no file (and no directory) behind."""
    path = Path(path)
    text = verilog_text(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def export(cfg: SIAConfig, out_dir) -> dict:
    """Writes OUT/sia_top.v and OUT/sia_top.json; both are generated before anything is
    written, and a failed write removes what this call wrote (and OUT if it made it)."""
    out = check_out_dir(out_dir, ("sia_top.v", "sia_top.json"))
    text = verilog_text(cfg)
    v = out / "sia_top.v"
    meta = {"top": "sia_top", "verilog": v.name, "params": cfg.to_json(),
            "timing": {"C_LAUNCH": timing.C_LAUNCH, "C_STEP": timing.C_STEP, "C_ROW": timing.C_ROW,
                       "C_HAND": timing.C_HAND, "C_OUT_TAIL": timing.C_OUT_TAIL},
            "buffers": dict(zip(("in_buffer_beats", "out_buffer_beats"), regmap.buffer_beats(cfg))),
            # block RAM per memory, RAMB36 equivalents (equal to Yosys's count; sia synth)
            "ramb36_estimate": design_ram36(cfg), "ramb36_exact": bram_exact(cfg),
            "packet": {"beat_bits": regmap.BEAT_BITS, "layer_beats": regmap.LAYER_BEATS,
                       "group_beats": regmap.GROUP_BEATS, "max_groups": regmap.MAX_GROUPS,
                       "header_magic": regmap.HDR_MAGIC,
                       "layer_fields": {n: list(x) for n, x in regmap.LAYER_LAYOUT.items()},
                       "group_fields": {n: list(x) for n, x in regmap.GROUP_LAYOUT.items()}},
            "register_map": regmap.register_map(cfg)}
    js = out / "sia_top.json"
    meta_text = json.dumps(meta, indent=1)
    write_outputs(out, {v.name: lambda p: p.write_text(text), js.name: lambda p: p.write_text(meta_text)})
    return {"verilog": str(v), "json": str(js)}

"""`sia rtl export`: the top-level Verilog plus a JSON of parameters and register map."""

import json
from pathlib import Path

from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import design_ram36
from sia.hw.rtl.bram import exact as bram_exact


def verilog_text(cfg: SIAConfig) -> str:
    from amaranth.back import verilog
    from sia.hw.rtl.top import SIATop, check_buildable
    check_buildable(cfg)
    return verilog.convert(SIATop(cfg), name="sia_top", emit_src=False)


def write_verilog(cfg: SIAConfig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog_text(cfg))
    return path


def export(cfg: SIAConfig, out_dir) -> dict:
    out = Path(out_dir)
    v = write_verilog(cfg, out / "sia_top.v")
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
    (out / "sia_top.json").write_text(json.dumps(meta, indent=1))
    return {"verilog": str(v), "json": str(out / "sia_top.json")}

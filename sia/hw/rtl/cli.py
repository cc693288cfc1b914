"""`sia rtl export|run` and `sia synth`."""

import json
from pathlib import Path

import typer


def _cfg(pes, events, config):
    from sia.hw.params import SIAConfig
    d = json.loads(Path(config).read_text()) if config else {}
    if pes is not None:
        d["pes"] = pes
    if events is not None:
        d["events_per_cycle"] = events
    return SIAConfig.from_json(d)


def register(app: typer.Typer):
    rtl = typer.Typer(no_args_is_help=True, help="SIA RTL: Verilog export, Verilator co-simulation")
    app.add_typer(rtl, name="rtl")

    @rtl.command("export")
    def export_cmd(
        out: Path = typer.Option(Path("build/rtl_export"), "--out", help="output directory"),
        pes: int = typer.Option(None, "--pes", help="PE count (default 64)"),
        events: int = typer.Option(None, "--events", help="events per cycle E (default 2)"),
        config: str = typer.Option(None, "--config", help="SIAConfig JSON file"),
    ):
        """Write sia_top.v (plain Verilog) and sia_top.json (parameters, register map,
        packet format, timing constants)."""
        from sia.hw.rtl.export import export
        files = export(_cfg(pes, events, config), out)
        print(f"wrote {files['verilog']} and {files['json']}")

    @rtl.command("run")
    def run_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        image_index: int = typer.Option(0, "--image", help="test image index"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir"),
        timesteps: int = typer.Option(None, "--T"),
        pes: int = typer.Option(None, "--pes"),
        config: str = typer.Option(None, "--config"),
        out: Path = typer.Option(None, "--out", help="write a JSON report here"),
    ):
        """One image through the RTL (Verilator), checked bit-exact against golden and
        cycle-exact against the RTL cycle formula."""
        import time
        from sia.data.registry import load_split
        from sia.hw.rtl.cosim.program import run_program
        from sia.program.resolve import resolve_program
        prog = resolve_program(program)
        images, labels = load_split(data or prog.meta.get("dataset", "digits"), "test", data_dir)
        cfg = _cfg(pes, None, config)
        t0 = time.time()
        r = run_program(prog, images[image_index].numpy() if hasattr(images, "numpy")
                        else images[image_index], cfg, T=timesteps)
        wall = time.time() - t0
        rep = _report(prog, r, cfg, wall)
        rep["label"] = int(labels[image_index])
        print(json.dumps({k: v for k, v in rep.items() if k != "launches"}, indent=1))
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rep, indent=1) + "\n")

    @app.command("synth")
    def synth_cmd(
        out: Path = typer.Option(Path("build/synth"), "--out", help="output directory"),
        pes: int = typer.Option(None, "--pes"),
        events: int = typer.Option(None, "--events"),
        config: str = typer.Option(None, "--config"),
        abc9: bool = typer.Option(False, "--abc9", help="synth_xilinx -abc9 (slower)"),
    ):
        """Yosys synth_xilinx -family xc7 of the SIA top: LUT/FF/CARRY4/DSP/BRAM against
        the XC7Z020 and a logic-depth estimate (Yosys cannot do routing/timing/power).
        WebAssembly Yosys needs ~25 CPU-minutes for the default 64 PEs (--pes 16: ~5)."""
        from sia.hw.rtl.synth import format_report, run_synth
        rep = run_synth(_cfg(pes, events, config), out, abc9=abc9)
        print(format_report(rep))
        print(f"report: {out / 'synth_report.json'}")


def _report(prog, r, cfg, wall):
    import numpy as np
    L = r["launches"]
    cyc = sum(x["cycles"] for x in L)
    sops = sum(x["sops"] for x in L)
    iops = sum(x["image_ops"] for x in L)
    t_s = cyc / (cfg.clock_mhz * 1e6)
    out_v = r["outputs"][prog.layers[-1].name]
    return {"program": prog.name, "pes": cfg.pes, "events_per_cycle": cfg.events_per_cycle,
            "bit_exact": True, "cycle_exact": all(x["cycles"] == x["expected"] for x in L),
            "model_equal": all(x.get("model") == x["cycles"] for x in L),
            "prediction": int(np.argmax(np.asarray(out_v).reshape(-1))),
            "cycles": cyc, "sops": sops, "image_ops": iops,
            "gops_acc": sops / t_s / 1e9, "gops_per_pe": sops / t_s / 1e9 / cfg.pes,
            "gops_acc_incl_image": (sops + iops) / t_s / 1e9,
            "clock_mhz": cfg.clock_mhz, "sim_cycles": r["sim"]["cycles"],
            "sim_seconds": r["sim"]["seconds"],
            "sim_cycles_per_s": r["sim"]["cycles"] / max(r["sim"]["seconds"], 1e-9),
            "wall_seconds": wall, "launches": L}

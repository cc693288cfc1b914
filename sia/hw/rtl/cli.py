"""`sia rtl export|run` and `sia synth`."""

import json
from pathlib import Path

import typer

from sia import SiaError
from sia.hw.cli import (IDENTITY_DRAIN, NARROW_STREAM, PHASE_PAIRS, PHASE_QUADS, POOL_HOLD,
                        PSUM_SLOTS, ROW_PREFETCH, SIGNED_COUNT_BITS, build_config)


def _cfg(pes, events, config, phase_pairs, identity_drain, row_prefetch, psum_slots, pool_hold,
         phase_quads=None, narrow_stream=None, signed_count_bits=None):
    """The build's parameter set, refused (one line, nothing written) if the RTL cannot
    build it."""
    from sia.hw.rtl.top import check_buildable
    return check_buildable(build_config(config, pes, events, phase_pairs=phase_pairs,
                                        identity_drain=identity_drain, row_prefetch=row_prefetch,
                                        psum_slots=psum_slots, pool_hold=pool_hold,
                                        phase_quads=phase_quads, narrow_stream=narrow_stream,
                                        signed_count_bits=signed_count_bits))


def register(app: typer.Typer):
    rtl = typer.Typer(no_args_is_help=True, help="SIA RTL: Verilog export, Verilator co-simulation")
    app.add_typer(rtl, name="rtl")

    @rtl.command("export")
    def export_cmd(
        out: Path = typer.Option(Path("build/rtl_export"), "--out", help="output directory"),
        pes: int = typer.Option(None, "--pes", help="PE count (default 64)"),
        events: int = typer.Option(None, "--events", help="events per cycle E (default 2)"),
        config: str = typer.Option(None, "--config", help="SIAConfig JSON file"),
        phase_pairs: bool = PHASE_PAIRS,
        identity_drain: bool = IDENTITY_DRAIN,
        row_prefetch: bool = ROW_PREFETCH,
        psum_slots: int = PSUM_SLOTS,
        pool_hold: bool = POOL_HOLD,
        phase_quads: bool = PHASE_QUADS,
        narrow_stream: bool = NARROW_STREAM,
        signed_count_bits: int = SIGNED_COUNT_BITS,
    ):
        """Write sia_top.v (plain Verilog) and sia_top.json (parameters, register map, ...).

        The JSON also holds the packet format and the timing constants."""
        from sia.hw.rtl.export import export
        cfg = _cfg(pes, events, config, phase_pairs, identity_drain, row_prefetch, psum_slots,
                   pool_hold, phase_quads, narrow_stream, signed_count_bits)
        files = export(cfg, out)
        print(f"wrote {files['verilog']} and {files['json']}")

    @rtl.command("run")
    def run_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        image_index: int = typer.Option(0, "--image", help="first test image index"),
        batch: int = typer.Option(1, "--batch", min=1,
                                  help="images, launch-major with resident weights"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir"),
        timesteps: int = typer.Option(None, "--T"),
        pes: int = typer.Option(None, "--pes"),
        events: int = typer.Option(None, "--events"),
        config: str = typer.Option(None, "--config"),
        phase_pairs: bool = PHASE_PAIRS,
        identity_drain: bool = IDENTITY_DRAIN,
        row_prefetch: bool = ROW_PREFETCH,
        psum_slots: int = PSUM_SLOTS,
        pool_hold: bool = POOL_HOLD,
        phase_quads: bool = PHASE_QUADS,
        narrow_stream: bool = NARROW_STREAM,
        signed_count_bits: int = SIGNED_COUNT_BITS,
        launch_images: int = typer.Option(1, "--launch-images", min=0,
                                          help="images of the batch per launch where the "
                                               "buffers allow (packed launches; 0 = as many "
                                               "as fit, 1 = one image per launch)"),
        jobs: int = typer.Option(None, "--jobs", min=1,
                                 help="simulator processes (default: CPU cores, at most 2; "
                                      "1 = layer by layer on the RTL's own spikes)"),
        out: Path = typer.Option(None, "--out", help="write a JSON report here"),
    ):
        """Images through the RTL (Verilator), checked against golden and the model.

        Every launch is checked bit-exact against the golden simulator and cycle-exact
        against the RTL cycle formula and the model."""
        import numpy as np
        from sia.data.registry import load_split
        from sia.hw.rtl.cosim.bench import bench
        from sia.program.resolve import resolve_program
        if image_index < 0:
            raise SiaError(f"--image {image_index}: a test-image index is >= 0")
        if out is not None and out.is_dir():
            raise SiaError(f"--out {out} is a directory; give the JSON report's file name")
        prog = resolve_program(program)
        cfg = _cfg(pes, events, config, phase_pairs, identity_drain, row_prefetch, psum_slots,
                   pool_hold, phase_quads, narrow_stream, signed_count_bits)
        images, labels = load_split(data or prog.meta.get("dataset", "digits"), "test", data_dir)
        n = len(images)
        if image_index + batch > n:
            what = (f"--image {image_index}" if batch == 1 else
                    f"--image {image_index} --batch {batch} (images {image_index}.."
                    f"{image_index + batch - 1})")
            raise SiaError(f"{what} outside the test set of {n} images (indices 0..{n - 1})")
        sel = slice(image_index, image_index + batch)
        rep = bench(prog, np.asarray(images[sel]), cfg, T=timesteps, jobs=jobs,
                    launch_images=launch_images)
        rep["image_index"], rep["labels"] = image_index, [int(v) for v in np.asarray(labels[sel])]
        print(json.dumps({k: v for k, v in rep.items() if k != "per_launch"}, indent=1))
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rep, indent=1) + "\n")

    @app.command("synth")
    def synth_cmd(
        out: Path = typer.Option(Path("build/synth"), "--out", help="output directory"),
        pes: int = typer.Option(None, "--pes"),
        events: int = typer.Option(None, "--events"),
        config: str = typer.Option(None, "--config"),
        phase_pairs: bool = PHASE_PAIRS,
        identity_drain: bool = IDENTITY_DRAIN,
        row_prefetch: bool = ROW_PREFETCH,
        psum_slots: int = PSUM_SLOTS,
        pool_hold: bool = POOL_HOLD,
        phase_quads: bool = PHASE_QUADS,
        narrow_stream: bool = NARROW_STREAM,
        signed_count_bits: int = SIGNED_COUNT_BITS,
        abc9: bool = typer.Option(False, "--abc9", help="synth_xilinx -abc9 (slower)"),
        block: str = typer.Option(None, "--block",
                                  help="pe | dispatcher | aggregation: that block of the build "
                                       "alone, in seconds (its ports count as registers)"),
    ):
        """Yosys resources (LUT/FF/CARRY4/DSP/BRAM) and logic depth against the XC7Z020.

        Yosys synth_xilinx -family xc7 of the SIA top (or of one block with --block).
        Yosys cannot do routing, timing or power. WebAssembly Yosys needs ~15 CPU-minutes
        for the default 64 PEs (--pes 16: ~3)."""
        from sia.hw.rtl.synth import (block_component, format_path, format_report, run_synth,
                                      synth_block)
        cfg = _cfg(pes, events, config, phase_pairs, identity_drain, row_prefetch, psum_slots,
                   pool_hold, phase_quads, narrow_stream, signed_count_bits)
        if block is not None:
            rep = synth_block(block_component(block, cfg), block, out, depth=True, abc9=abc9)
            (out / f"{block}_report.json").write_text(json.dumps(rep, indent=1) + "\n")
            r = rep["resources"]
            print(f"{block} alone (P={cfg.pes} E={cfg.events_per_cycle}): LUT {r['LUT']} "
                  f"(as RAM {r['LUT_as_RAM']}), FF {r['FF']}, CARRY4 {r['CARRY4']}, "
                  f"DSP48E1 {r['DSP48E1']}, RAMB36 eq. {r['RAMB36_equiv']}; longest path "
                  + format_path(rep["longest_path_cells"]))
            print(f"report: {out / (block + '_report.json')}")
            return
        rep = run_synth(cfg, out, abc9=abc9)
        print(format_report(rep))
        print(f"report: {out / 'synth_report.json'}")

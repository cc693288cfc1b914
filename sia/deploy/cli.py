"""`sia deploy pack|vivado|reports|inspect` and `sia run --backend`."""

import json
from pathlib import Path

import typer

from sia import SiaError


def _config(path):
    from sia.hw.params import SIAConfig
    return SIAConfig.load(path)


def register(app: typer.Typer):
    deploy = typer.Typer(no_args_is_help=True, help="FPGA deployment on PYNQ-Z2: program image, "
                         "Vivado project, Vivado reports (docs/deploy.md)")
    app.add_typer(deploy, name="deploy")

    @deploy.command("pack")
    def pack_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        out: Path = typer.Option(None, "-o", "--out", help="image file (default: PROGRAM.siaimg)"),
        timesteps: int = typer.Option(None, "--T", help="timesteps (default: the program's)"),
        config: Path = typer.Option(None, "--config", help="SIA parameter set JSON (default: SIAConfig())"),
    ):
        """Write the program image the accelerator consumes (header, tiles, CRC)."""
        from sia.deploy.image import build_image, save_image
        from sia.deploy import regmap_bridge as rb
        from sia.program.resolve import resolve_program
        prog = resolve_program(program)
        img = build_image(prog, _config(config), timesteps)
        out = out or Path(Path(program).stem + ".siaimg")
        save_image(img, out)
        n = len(img.launches)
        max_in = max(ln["size"] + rb.input_nbytes(img, k) for k, ln in enumerate(img.launches))
        max_out = max(rb.output_nbytes(img, k) for k in range(n))
        print(f"wrote {out}: {prog.name}, T={img.timesteps}, {n} launches, "
              f"{out.stat().st_size} bytes; largest packet {max_in} B (split into DMA transfers "
              f"as needed), largest output {max_out} B (needs an AXI DMA length register >= "
              f"{max(8, max_out.bit_length())} bits)")

    @deploy.command("inspect")
    def inspect_cmd(
        image: Path = typer.Argument(..., help="program image (.siaimg)"),
        config: Path = typer.Option(None, "--config", help="check against this parameter set"),
    ):
        """Check an image (magic, version, sizes, CRCs, parameter set) and list its launches."""
        from sia.deploy.image import load_image
        img = load_image(image, _config(config) if config else None)
        m = img.manifest
        print(f"{image}: program {m['program']}, T={m['timesteps']}, interface "
              f"0x{img.regmap_version:08X}, {len(img.launches)} launches, payload {len(img.payload)} B")
        print("parameter set: " + ", ".join(f"{k}={v}" for k, v in m["sia_config"].items()))
        for ln in img.launches:
            L = m["layers"][ln["layer"]]
            print(f"  {L['name']:>10} tile {ln['tile']}: channels {ln['c0']}..{ln['c1'] - 1}, "
                  f"static {ln['size']} B")

    @deploy.command("vivado")
    def vivado_cmd(
        out: Path = typer.Option(Path("runs/vivado"), "--out", help="directory to write"),
        verilog: Path = typer.Option(None, "--verilog", help="use this Verilog instead of exporting sia/hw/rtl"),
        config: Path = typer.Option(None, "--config", help="SIA parameter set JSON (default: SIAConfig())"),
        dma_length_width: int = typer.Option(26, "--dma-length-width",
                                             help="AXI DMA 'Width of Buffer Length Register' (8..26)"),
        jobs: int = typer.Option(4, "--jobs", help="Vivado parallel jobs"),
        force: bool = typer.Option(False, "--force", help="replace an existing directory"),
        check: bool = typer.Option(True, "--check/--no-check", help="run the TCL with stub Vivado commands (tclsh, or Python's own Tcl)"),
    ):
        """Write a self-contained Vivado project directory for PYNQ-Z2 (xc7z020clg400-1)."""
        from sia.deploy.vivado import check_vivado_dir, run_tcl_check, tcl_command, write_vivado_dir
        text = None
        if verilog is not None:
            if not verilog.is_file():
                raise SiaError(f"no such Verilog file: {verilog}")
            try:
                text = verilog.read_text()
            except UnicodeDecodeError:
                raise SiaError(f"--verilog {verilog}: not a Verilog text file (not UTF-8 "
                               f"text)") from None
        d = write_vivado_dir(out, _config(config), verilog=text, dma_length_width=dma_length_width,
                             jobs=jobs, force=force)
        check_vivado_dir(d)
        msg = f"wrote {d}: run {d}/run_vivado.sh on a machine with Vivado"
        if check:
            if tcl_command():
                calls = run_tcl_check(d)
                msg += f" (TCL checked with stub Vivado commands: {len(calls)} Vivado commands)"
            else:
                msg += " (no Tcl interpreter: TCL not checked)"
        print(msg)

    @deploy.command("reports")
    def reports_cmd(
        directory: Path = typer.Argument(..., help="Vivado output dir (utilization.rpt, timing_summary.rpt, power.rpt)"),
        out: Path = typer.Option(None, "--json", help="write everything parsed as JSON here"),
        program: str = typer.Option(None, "--program", help="also: this program on the cycle-level model, "
                                    "with the board's DSP count and power (GOPS/DSP, GOPS/W)"),
        limit: int = typer.Option(32, "--images", help="with --program: test images to run"),
        config: Path = typer.Option(None, "--config", help="SIA parameter set JSON of the bitstream"),
    ):
        """Read Vivado's utilization, timing and power reports back into sia."""
        from sia.deploy.reports import check_json_path, parse_reports, with_model, write_json
        if out:
            check_json_path(out)      # before the model run
        cfg = _config(config) if program else None
        r = parse_reports(directory)
        s = r["summary"]
        print(f"LUT {s['lut']}  FF {s['ff']}  BRAM tiles {s['bram_tile']}  DSP {s['dsp']}  | "
              f"clock {s['clock_mhz']} MHz, WNS {s['wns_ns']} ns "
              f"({'met' if s['timing_met'] else 'NOT met'}), est. fmax {s['fmax_mhz_est']} MHz  | "
              f"power {s['power_w']} W (dynamic {s['dynamic_w']}, static {s['static_w']})")
        if program:
            import numpy as np
            from sia.data.registry import load_split
            from sia.program.resolve import resolve_program
            prog = resolve_program(program)
            images, _ = load_split(prog.meta.get("dataset", "digits"), "test", None)
            images = np.asarray(images[:limit] if limit else images)
            m = with_model(r, prog, images, cfg, source=str(directory))
            b = m["board"]
            r["model"] = m
            gpd = f"{m['gops_per_dsp']:.3f}" if m["gops_per_dsp"] else "n/a (0 DSPs)"
            print(f"{prog.name} at {b['clock_mhz_assumed']:g} MHz (model): {m['gops_acc']:.3f} GOPS "
                  f"(1 op = 1 accumulate), {m['gops_acc'] / m['config']['pes']:.4f} GOPS/PE, "
                  f"GOPS/DSP {gpd}, {b['gops_per_w']:.3f} GOPS/W at Vivado's {b['power_w']} W")
        if out:
            write_json(r, out)

    @app.command("run")
    def run_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        backend: str = typer.Option("golden", "--backend", help="golden | model | rtl | twin | pynq"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        timesteps: int = typer.Option(None, "--T", help="timesteps (default: the program's)"),
        limit: int = typer.Option(16, "--images", help="first N test images (0 = all)"),
        compare: str = typer.Option(None, "--compare", help="also run this backend and require bit-exact equality"),
        config: Path = typer.Option(None, "--config", help="SIA parameter set JSON"),
        bitfile: Path = typer.Option(Path("sia.bit"), "--bitfile", help="pynq: the overlay"),
        image: Path = typer.Option(None, "--image", help="pynq: a packed image (default: pack now)"),
        out: Path = typer.Option(None, "--out", help="write the JSON result here"),
        batch: int = typer.Option(1, "--batch", min=1,
                                  help="images per weight load (resident-weight launches)"),
        launch_images: int = typer.Option(0, "--launch-images", min=0,
                                          help="images of a batch per packed launch where the "
                                               "buffers allow (0 = as many as fit, 1 = none)"),
    ):
        """Run a program on one backend; the same call for golden, model, rtl, twin, pynq."""
        from sia.data.registry import program_test_set
        from sia.deploy.backends import run, same_result
        from sia.program.resolve import resolve_program
        prog = resolve_program(program)
        data, images, labels = program_test_set(prog, data, data_dir, limit)
        import numpy as np
        images, labels = np.asarray(images), np.asarray(labels)
        kw = {"cfg": _config(config) if config else None, "batch": batch,
              "launch_images": launch_images}
        if backend == "pynq":
            kw.update(bitfile=str(bitfile), image=str(image) if image else None)
        r = run(prog, images, backend=backend, T=timesteps, labels=labels, **kw)
        report = r.to_json()
        line = (f"{prog.name} on {backend}: {len(images)} images, T={r.T}, accuracy "
                f"{r.accuracy:.4f}" + (f", {r.cycles} cycles" if r.cycles else "") +
                f", {r.seconds:.2f} s")
        if compare:
            ref = (run(prog, images, backend=compare, T=timesteps, labels=labels,
                       cfg=kw["cfg"], batch=batch, launch_images=launch_images)
                   if compare != "pynq" else None)
            diffs = same_result(r, ref) if ref is not None else ["cannot compare against pynq"]
            report["compare"] = {"backend": compare, "bit_exact": not diffs, "differences": diffs}
            line += f"; vs {compare}: " + ("bit-exact" if not diffs else "; ".join(diffs))
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1) + "\n")
        print(line)
        if compare and report["compare"]["differences"]:
            raise SiaError(f"{backend} and {compare} differ")

"""`sia simulate` (the cycle-level model: accuracy + performance report) and `sia dse`."""

from pathlib import Path

import typer

from sia import SiaError, int_list
from sia.outputs import check_out_dir


def build_config(path, pes: int | None = None, events: int | None = None, **overrides):
    """The SIAConfig of a command: the JSON file `path` (None: the defaults) with the
    command's options over it; an option left at None keeps the file's value."""
    from sia.hw.params import SIAConfig
    return SIAConfig.load(path, pes=pes, events_per_cycle=events, **overrides)


# the build options every command that models, builds or synthesizes the SIA takes
# (`sia simulate`, `sia rtl export|run`, `sia synth`); None keeps the config file's value
def _build_flag(key: str, what: str):
    """A --key/--no-key option overriding the boolean SIAConfig build option `key`."""
    flag = key.replace("_", "-")
    return typer.Option(None, f"--{flag}/--no-{flag}", help=f"override {key} ({what})")


PHASE_PAIRS = _build_flag("phase_pairs", "stride-2 3x3 convs take events from two columns "
                                         "per cycle")
IDENTITY_DRAIN = _build_flag("identity_drain", "identity shortcuts added by the aggregation "
                                               "core while it drains")
ROW_PREFETCH = _build_flag("row_prefetch", "a row starts in the last dispatch cycle of the "
                                           "row before it when it can")
PSUM_SLOTS = typer.Option(None, "--psum-slots", help="override psum_slots (4..8)")
POOL_HOLD = _build_flag("pool_hold", "a pooled position's units pass their last < E events "
                                     "to the next unit's first cycle; E <= 2")
PHASE_QUADS = _build_flag("phase_quads", "stride-2 3x3 convs take events from four positions "
                                         "per cycle; needs phase pairs")
NARROW_STREAM = _build_flag("narrow_stream", "spike maps of <= 32 channels stream 2-4 "
                                             "positions per beat")
SIGNED_COUNT_BITS = typer.Option(None, "--signed-count-bits",
                                 help="override signed_count_bits (0: no signed neurons; K > 0: "
                                      "signed neurons, <= 2^K - 1 steps per image, P <= 32)")


def _sweep_switch(flag: str, what: str):
    """A `sia dse` option naming the values of a boolean build option to sweep."""
    return typer.Option(None, flag, help=f"{what} to sweep: off, on or off,on (default: the "
                                         f"config's)")


def _print_table(header, rows):
    from rich.console import Console
    from rich.table import Table
    t = Table(*header)
    for r in rows:
        t.add_row(*r)
    Console().print(t)


def register(app: typer.Typer):
    @app.command("simulate")
    def simulate_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        timesteps: int = typer.Option(None, "--T", help="timesteps (default: program's)"),
        limit: int = typer.Option(0, "--images", help="simulate only the first N test images"),
        out: Path = typer.Option(None, "--out", help="directory for sia_model.json + PNG"),
        config: Path = typer.Option(None, "--config", help="SIAConfig JSON (default: defaults)"),
        pes: int = typer.Option(None, "--pes", help="override SIAConfig.pes"),
        events: int = typer.Option(None, "--events", help="override events_per_cycle"),
        clock: float = typer.Option(None, "--clock-mhz", help="override clock_mhz"),
        weight_bits: int = typer.Option(None, "--weight-bits",
                                        help="override weight_bits (ResNet shortcuts may need > 8)"),
        phase_pairs: bool = PHASE_PAIRS,
        identity_drain: bool = IDENTITY_DRAIN,
        row_prefetch: bool = ROW_PREFETCH,
        psum_slots: int = PSUM_SLOTS,
        pool_hold: bool = POOL_HOLD,
        phase_quads: bool = PHASE_QUADS,
        narrow_stream: bool = NARROW_STREAM,
        signed_count_bits: int = SIGNED_COUNT_BITS,
        synth: Path = typer.Option(None, "--synth-report",
                                   help="synth_report.json of `sia synth`: its DSP count for GOPS/DSP"),
        batch: int = typer.Option(1, "--batch", min=1,
                                  help="images per weight load (resident-weight launches)"),
        launch_images: int = typer.Option(0, "--launch-images", min=0,
                                          help="images of a batch per launch where the buffers "
                                               "allow (packed launches; 0 = as many as fit, "
                                               "1 = one image per launch)"),
    ):
        """Run a program on the cycle-level model: accuracy, latency, GOPS, utilisation."""
        from sia.data.registry import program_test_set
        from sia.hw.model import report, run
        from sia.program.resolve import resolve_program

        cfg = build_config(config, pes, events, clock_mhz=clock, weight_bits=weight_bits,
                           phase_pairs=phase_pairs, identity_drain=identity_drain,
                           row_prefetch=row_prefetch, psum_slots=psum_slots,
                           pool_hold=pool_hold, phase_quads=phase_quads,
                           narrow_stream=narrow_stream, signed_count_bits=signed_count_bits)
        # the inputs checked before the simulation
        dsp, src = report.synth_dsp(synth) if synth else (None, None)
        if out:
            check_out_dir(out, ("sia_model.json", "sia_model_layers.png"))
        prog = resolve_program(program)
        data, images, labels = program_test_set(prog, data, data_dir, limit)
        res = run(prog, images, labels, T=timesteps, config=cfg, progress=True, weight_batch=batch,
                  launch_images=launch_images)
        summ = report.summarize(res, dsp=dsp, dsp_source=src, program=prog)
        summ["data"] = data
        _print_table(report.TABLE_HEADER, report.table_rows(summ))
        print(report.headline(summ))
        for msg in summ["rtl_refuses"]:
            print(f"note: the RTL build refuses {msg}")
        if out:
            js, png = report.write(summ, out)
            print(f"wrote {js} and {png}")

    @app.command("dse")
    def dse_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        limit: int = typer.Option(16, "--images", help="images whose spike statistics are used"),
        pes: str = typer.Option("16,32,64,128", "--pes", help="PE counts to sweep"),
        events: str = typer.Option("1,2", "--events", help="events per cycle to sweep"),
        timesteps: str = typer.Option(None, "--T", help="timesteps to sweep (default: 4,8,16 "
                                                       "within the program's t_max)"),
        weight_bits: str = typer.Option("8,16", "--weight-bits", help="weight widths to sweep"),
        batch: str = typer.Option("1,16", "--batch", help="images per weight load to sweep"),
        config: Path = typer.Option(None, "--config", help="SIAConfig JSON the sweep starts from"),
        launch_images: int = typer.Option(0, "--launch-images", min=0,
                                          help="packed launches: images per launch "
                                               "(0 = as many as fit, 1 = none)"),
        phase_pairs: str = _sweep_switch("--phase-pairs", "phase pairs"),
        identity_drain: str = _sweep_switch("--identity-drain", "identity in the drain"),
        psum_slots: str = typer.Option(None, "--psum-slots",
                                       help="psum row slots to sweep, e.g. 4,5,8 (default: "
                                            "the config's)"),
        phase_quads: str = _sweep_switch("--phase-quads", "phase quads (with phase pairs only)"),
        narrow_stream: str = _sweep_switch("--narrow-stream", "narrow streams"),
        out: Path = typer.Option(None, "--out", help="directory for sia_dse.json + PNG"),
    ):
        """Sweep PE count, events per cycle, T and weight bits: table + plot."""
        from sia.data.registry import program_test_set
        from sia.hw.model import dse
        from sia.program.resolve import resolve_program

        batches = int_list(batch, "--batch")
        if any(b < 1 for b in batches):
            raise SiaError(f"--batch values must be >= 1, got {batch}")
        if out:
            check_out_dir(out, ("sia_dse.json", "sia_dse.png"))

        def switches(flag, value):   # "off", "on" or "off,on" -> the values to sweep
            if value is None:
                return None
            words = value.split(",")
            if not set(words) <= {"off", "on"}:
                raise SiaError(f"{flag} takes off, on or off,on, got {value!r}")
            return tuple(w == "on" for w in words)

        sw = {"phase_pairs": switches("--phase-pairs", phase_pairs),
              "identity_drain": switches("--identity-drain", identity_drain),
              "phase_quads": switches("--phase-quads", phase_quads),
              "narrow_stream": switches("--narrow-stream", narrow_stream),
              "psum_slots": None if psum_slots is None else int_list(psum_slots, "--psum-slots")}
        base = build_config(config)
        quads = (base.phase_quads,) if sw["phase_quads"] is None else sw["phase_quads"]
        pairs = (base.phase_pairs,) if sw["phase_pairs"] is None else sw["phase_pairs"]
        dse.check_phase_options(pairs, quads)   # before the data load
        prog = resolve_program(program)
        t_limit = dse.t_limit(prog, base)
        if timesteps is None:        # the default sweep: 4, 8, 16 as far as the program goes
            Ts = tuple(T for T in (4, 8, 16) if T <= t_limit)
            if len(Ts) < 3:
                print(f"note: T > {t_limit} not swept (program {prog.name} t_max={prog.t_max}, "
                      f"max_timesteps={base.max_timesteps})")
        else:
            Ts = int_list(timesteps, "--T")
            bad = [T for T in Ts if not 1 <= T <= t_limit]
            if bad:
                raise SiaError(f"--T {','.join(map(str, bad))} outside 1..{t_limit} (program "
                               f"{prog.name} t_max={prog.t_max}, max_timesteps="
                               f"{base.max_timesteps})")
        _, images, _ = program_test_set(prog, data, data_dir, limit)
        rows = dse.sweep(prog, images, int_list(pes, "--pes"), int_list(events, "--events"),
                         Ts, int_list(weight_bits, "--weight-bits"),
                         base=base, progress=False,
                         batches=batches, launch_images=launch_images, **sw)
        _print_table(dse.TABLE_HEADER, dse.table_rows(rows))
        print("* projection for an option the RTL lacks: all streams hidden behind compute")
        if out:
            js, png = dse.write(rows, out)
            print(f"wrote {js} and {png}")

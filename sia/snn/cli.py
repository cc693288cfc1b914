"""`sia eval` (golden simulator accuracy per timestep), `sia diagnose` (per-layer
conversion error against the integer ANN) and `sia inspect` (manifest)."""

import json
from pathlib import Path

import typer


def register(app: typer.Typer):
    @app.command("eval")
    def eval_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        timesteps: int = typer.Option(None, "--T", help="timesteps (default: program's)"),
        limit: int = typer.Option(0, "--images", help="evaluate only the first N test images"),
        out: Path = typer.Option(None, "--out", help="write the JSON result here"),
    ):
        """Accuracy at every t <= T, spike rates and SOPs from the golden simulator."""
        from sia.data.registry import data_copy, program_test_set
        from sia.program.resolve import resolve_program
        from sia.snn import simulate

        prog = resolve_program(program)
        data, images, labels = program_test_set(prog, data, data_dir, limit)
        res = simulate(prog, images, labels, T=timesteps, progress=True)
        report = {"program": prog.name, "data": data_copy(data, data_dir), **res.to_json()}
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1) + "\n")
        accs = " ".join(f"t{t + 1}={a:.4f}" for t, a in enumerate(res.accuracy))
        print(f"{prog.name} on {report['data']} ({res.images} images): {accs}")

    @app.command("diagnose")
    def diagnose_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        split: str = typer.Option("test", "--split", help="train | test: which images"),
        timesteps: int = typer.Option(None, "--T", help="timesteps (default: program's)"),
        limit: int = typer.Option(256, "--images", help="the first N images of the split (0 = all)"),
        batch: int = typer.Option(32, "--batch", help="images per golden-simulator batch"),
        out: Path = typer.Option(None, "--out", help="directory for diagnose.json and diagnose.png"),
    ):
        """Per-layer conversion error of a program against its integer ANN.

        Rate error in ANN levels, and each layer's own excess / owed spikes
        (sia/snn/diagnose.py)."""
        from sia.data.registry import data_copy, program_test_set
        from sia.outputs import check_out_dir, write_outputs
        from sia.program.resolve import resolve_program
        from sia.snn.diagnose import diagnose, plot, summary_line

        if out is not None:
            check_out_dir(out, ["diagnose.json", "diagnose.png"])
        prog = resolve_program(program)
        data, images, labels = program_test_set(prog, data, data_dir, limit, split)
        report = {**diagnose(prog, images, labels, T=timesteps, batch_size=batch, progress=True),
                  "data": data_copy(data, data_dir), "split": split}
        if out is not None:
            write_outputs(out, {
                "diagnose.json": lambda p: p.write_text(json.dumps(report, indent=1) + "\n"),
                "diagnose.png": lambda p: plot(report, p)})
        print(summary_line(report))

    @app.command("inspect")
    def inspect_cmd(program: str = typer.Argument(..., help="program file (or zoo name)")):
        """Print a program's manifest, per-layer shapes and declared bit-widths."""
        from sia.program.resolve import resolve_program

        prog = resolve_program(program)
        print(prog.summary())
        for i, layer in enumerate(prog.layers):
            srcs = ", ".join(f"{s.op}<-{'image' if s.source < 0 else s.source}"
                             f"{f' pool{s.pool}' if s.pool > 1 else ''} w{s.weight_bits}"
                             for s in layer.inputs)
            kind = f"{layer.kind}{' signed' if layer.signed else ''}"
            print(f"  {i:2d} {layer.name:16s} {kind:10s} {'x'.join(map(str, layer.shape)):10s}"
                  f" acc{layer.acc_bits} v{layer.v_bits}  {srcs}")

"""`sia convert RUN_DIR --out PROGRAM`: trained model -> integer SNN program."""

from pathlib import Path

import typer


def register(app: typer.Typer):
    @app.command("convert")
    def convert_cmd(
        run: Path = typer.Argument(..., help="training run dir (model.safetensors + config.json)"),
        out: Path = typer.Option(..., "--out", help="program file to write (.safetensors)"),
        timesteps: int = typer.Option(8, "--T", help="timesteps the program is meant to run"),
        t_max: int = typer.Option(16, "--t-max", help="declare bit-widths valid for t <= t_max"),
    ):
        """Convert a trained QCFS model to an integer SNN program (validated, then saved)."""
        from sia import SiaError
        from sia.convert import convert
        from sia.data.registry import INPUT_SHAPES
        from sia.program import save_program
        from sia.train import load_trained

        if not 1 <= timesteps <= t_max:
            raise SiaError(f"need 1 <= --T ({timesteps}) <= --t-max ({t_max})")
        model, cfg = load_trained(run)
        meta = {"dataset": cfg.dataset, "arch": cfg.arch, "width": cfg.width,
                "weight_bits": cfg.weight_bits, "levels": cfg.levels, "source_run": str(run)}
        prog = convert(model, INPUT_SHAPES[cfg.dataset], name=run.name, timesteps=timesteps,
                       t_max=t_max, meta=meta)
        save_program(prog, out)
        print(f"{prog.summary()} -> {out}")

"""`sia convert RUN_DIR --out PROGRAM`: trained model -> integer SNN program;
`sia finetune PROGRAM --out PROGRAM`: spike-aware fine-tuning of its integers."""

import json
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

    @app.command("finetune")
    def finetune_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name) to start from"),
        out: Path = typer.Option(..., "--out", help="fine-tuned program to write (.safetensors)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        timesteps: int = typer.Option(8, "--T", help="timesteps simulated per training image"),
        loss_steps: str = typer.Option("4,8", "--loss-steps",
                                       help="comma list of t whose prediction enters the loss"),
        steps: int = typer.Option(1000, "--steps", help="training batches"),
        batch_size: int = typer.Option(64, "--batch", help="images per batch"),
        lr: float = typer.Option(0.01, "--lr", help="Adam step, in weight codes (cosine decay)"),
        seed: int = typer.Option(0, "--seed"),
        augment: bool = typer.Option(True, "--augment/--no-augment",
                                     help="random crop + flip (CIFAR-10 only)"),
        teacher: Path = typer.Option(None, "--teacher",
                                     help="training run dir of a float model to distil from"),
        neurons: bool = typer.Option(False, "--neurons",
                                     help="also train the IF layers' thresholds and v_init"),
        threads: int = typer.Option(0, "--threads", help="torch CPU threads (0 = default)"),
        compile_: bool = typer.Option(False, "--compile",
                                      help="torch.compile the forward (faster steps, ~1 min to compile)"),
    ):
        """Spike-aware fine-tuning of a converted program; the result is again a program.

        Trains its integer weights and biases (and with --neurons its thresholds and
        v_init) through its own spikes (surrogate gradient, straight-through rounding)."""
        import time

        import torch

        from sia import int_list
        from sia.convert.finetune import finetune, plot_history
        from sia.data.registry import data_copy, load_split
        from sia.program import save_program
        from sia.program.resolve import resolve_program

        ls = int_list(loss_steps, "--loss-steps")
        if threads:
            torch.set_num_threads(threads)
        prog = resolve_program(program)
        data = data or prog.meta.get("dataset", "digits")
        images, labels = load_split(data, "train", data_dir)
        teacher_model = None
        if teacher is not None:
            from sia.train import load_trained
            teacher_model = load_trained(teacher)[0]
        t0 = time.time()
        ft, hist = finetune(prog, images, labels, T=timesteps, loss_steps=ls, steps=steps,
                            batch_size=batch_size, lr=lr, seed=seed,
                            augment=augment and data == "cifar10", teacher=teacher_model,
                            neurons=neurons, compile=compile_)
        ft.meta["finetune"].update({"from": str(program), "data": data_copy(data, data_dir),
                                    "teacher": str(teacher) if teacher else None,
                                    "seconds": round(time.time() - t0, 1)})
        save_program(ft, out)
        log = out.with_suffix(".json")
        log.write_text(json.dumps({**ft.meta["finetune"], **hist}) + "\n")
        png = plot_history(hist, out.with_suffix(".png"), f"{prog.name}: fine-tuning at T={timesteps}")
        print(f"{ft.summary()} -> {out} (history {log.name}, {png.name}; last 50 batches: "
              f"train accuracy {sum(hist['acc'][-50:]) / len(hist['acc'][-50:]):.3f} at t={ls[-1]})")

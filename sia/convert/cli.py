"""`sia convert RUN_DIR --out PROGRAM`: trained model -> integer SNN program;
`sia signed PROGRAM --out PROGRAM`: the same with signed IF neurons;
`sia finetune PROGRAM --out PROGRAM`: spike-aware fine-tuning of its integers;
`sia teacher PROGRAM --out DIR`: a float distillation teacher grown from a program."""

import json
from pathlib import Path

import typer

# What `sia` reads back as a program file (sia.program.io: `.xz` = xz-compressed safetensors)
PROGRAM_SUFFIXES = (".safetensors", ".xz")


def check_program_out(out: Path):
    """--out must name a program file: fine-tuning writes its history (.json) and plot
    (.png) beside it under the same stem, which would otherwise overwrite the program."""
    from sia import SiaError
    if out.suffix not in PROGRAM_SUFFIXES:
        raise SiaError(f"--out {out}: a program file name must end in .safetensors "
                       f"(or .safetensors.xz, xz-compressed)")
    if out.is_dir():
        raise SiaError(f"--out {out} is a directory; give a program file name")


def program_and_data(program: str, data, threads: int):
    """The program (file or zoo name) and the dataset it trains on (default: the
    program's own), refused in one line when the threads, the dataset or its image
    shape do not fit; the fine-tuning and teacher commands check these before any data
    is loaded."""
    from sia import SiaError
    from sia.data.registry import INPUT_SHAPES
    from sia.program.resolve import resolve_program
    from sia.train.config import MAX_THREADS
    if not 0 <= threads <= MAX_THREADS:
        raise SiaError(f"--threads {threads}: give 1..{MAX_THREADS} (0 = torch's default)")
    prog = resolve_program(program)
    data = data or prog.meta.get("dataset", "digits")
    if data not in INPUT_SHAPES:
        raise SiaError(f"--data {data!r}: choose one of {', '.join(INPUT_SHAPES)}")
    if tuple(INPUT_SHAPES[data]) != tuple(prog.input_shape):
        raise SiaError(f"--data {data}: its {'x'.join(map(str, INPUT_SHAPES[data]))} images do "
                       f"not fit the program's {'x'.join(map(str, prog.input_shape))} input")
    return prog, data


def register(app: typer.Typer):
    @app.command("convert")
    def convert_cmd(
        run: Path = typer.Argument(..., help="training run dir (model.safetensors + config.json)"),
        out: Path = typer.Option(..., "--out", help="program file to write (.safetensors)"),
        timesteps: int = typer.Option(8, "--T", help="timesteps the program is meant to run"),
        t_max: int = typer.Option(16, "--t-max", help="declare bit-widths valid for t <= t_max"),
        signed: bool = typer.Option(False, "--signed",
                                    help="signed IF neurons (golden simulator; SIA builds with signed_count_bits > 0)"),
    ):
        """Convert a trained QCFS model to an integer SNN program (validated, then saved)."""
        from sia import SiaError
        from sia.convert import convert
        from sia.data.registry import INPUT_SHAPES
        from sia.program import save_program
        from sia.train import load_trained

        if not 1 <= timesteps <= t_max:
            raise SiaError(f"need 1 <= --T ({timesteps}) <= --t-max ({t_max})")
        check_program_out(out)
        model, cfg = load_trained(run)
        meta = {"dataset": cfg.dataset, "arch": cfg.arch, "width": cfg.width,
                "weight_bits": cfg.weight_bits, "levels": cfg.levels, "source_run": str(run)}
        prog = convert(model, INPUT_SHAPES[cfg.dataset], name=run.name, timesteps=timesteps,
                       t_max=t_max, meta=meta)
        if signed:
            from sia.convert.signed import signed_program
            prog = signed_program(prog)
        save_program(prog, out)
        print(f"{prog.summary()} -> {out}")

    @app.command("signed")
    def signed_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name)"),
        out: Path = typer.Option(..., "--out", help="program to write (.safetensors)"),
    ):
        """The same program with signed IF neurons.

        A -1 spike takes back an earlier spike when V < 0 (docs/semantics.md). The
        golden simulator, diagnose and fine-tuning run it, and so do the SIA's model,
        RTL and board on builds with signed_count_bits > 0 (others refuse it)."""
        from sia.convert.signed import signed_program
        from sia.program import save_program
        from sia.program.resolve import resolve_program

        check_program_out(out)
        prog = signed_program(resolve_program(program))
        save_program(prog, out)
        print(f"{prog.summary()}, signed neurons -> {out}")

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
                                     help="float model to distil from: a training run dir, "
                                          "or a rate teacher dir (`sia teacher`)"),
        self_distill: int = typer.Option(0, "--self-distill", metavar="T",
                                         help="distil from the program itself, frozen, at T "
                                              "steps (e.g. 8 teaching --T 4; no twin needed)"),
        neurons: bool = typer.Option(False, "--neurons",
                                     help="also train the IF layers' thresholds and v_init"),
        threads: int = typer.Option(0, "--threads", help="torch CPU threads (0 = default)"),
        compile_: bool = typer.Option(False, "--compile",
                                      help="torch.compile the forward (faster steps, ~1 min to compile)"),
        view: str = typer.Option("spikes", "--view",
                                 help="spikes: train through T steps of spikes; rate: train "
                                      "the T -> inf limit, clamp(current / threshold, 0, 1), "
                                      "one pass per image (no --T, --loss-steps, --neurons, "
                                      "teachers)"),
        bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast (--view rate; CPUs with AMX)"),
        label_smoothing: float = typer.Option(0.1, "--label-smoothing",
                                              help="label smoothing (--view rate)"),
    ):
        """Spike-aware fine-tuning of a converted program; the result is again a program.

        Trains its integer weights and biases (and with --neurons its thresholds and
        v_init) through its own spikes (surrogate gradient, straight-through rounding),
        or with --view rate in the rate view its spike counts tend to as T grows."""
        import time

        import torch

        from sia import SiaError, int_list
        from sia.convert.finetune import check_args, finetune
        from sia.data.registry import data_copy, load_split

        # everything checked before the (CIFAR-10: slow) data load and any training
        ls = int_list(loss_steps, "--loss-steps")
        check_program_out(out)
        if view not in ("spikes", "rate"):
            raise SiaError(f"--view {view}: give spikes or rate")
        if view == "rate":
            from sia.convert.rate_teacher import check_train_args
            check_train_args(steps, batch_size, lr, label_smoothing)
            given = [o for o, on in (("--neurons", neurons), ("--teacher", teacher is not None),
                                     ("--self-distill", self_distill)) if on]
            if given:
                raise SiaError(f"{given[0]} does not apply to --view rate (it trains weights "
                               "and biases on the labels alone)")
        elif bf16:
            raise SiaError("--bf16 applies to --view rate only")
        prog, data = program_and_data(program, data, threads)
        if view == "rate":
            return _rate_finetune(prog, program, data, data_dir, out, threads, steps=steps,
                                  batch_size=batch_size, lr=lr, seed=seed,
                                  augment=augment and data == "cifar10",
                                  label_smoothing=label_smoothing, bf16=bf16, compile=compile_)
        ls = check_args(prog, timesteps, ls, steps, batch_size, lr)
        teacher_model = None
        if teacher is not None and self_distill:
            raise SiaError("--teacher and --self-distill: choose one teacher")
        if self_distill:
            from sia.convert.finetune import ProgramTeacher
            teacher_model = ProgramTeacher(prog, self_distill, compile=compile_)
        if teacher is not None:
            from sia.convert.rate_teacher import is_teacher_dir, load_teacher
            from sia.train import load_trained
            if is_teacher_dir(teacher):
                teacher_model = load_teacher(teacher, prog)
                t_data = teacher_model.info.get("dataset")
            else:
                teacher_model, tcfg = load_trained(teacher, "--teacher")
                t_data = tcfg.dataset
            if t_data != data:
                raise SiaError(f"--teacher {teacher} was trained on {t_data}, "
                               f"this fine-tuning uses {data}")
        if threads:
            torch.set_num_threads(threads)
        images, labels = load_split(data, "train", data_dir)
        t0 = time.time()
        ft, hist = finetune(prog, images, labels, T=timesteps, loss_steps=ls, steps=steps,
                            batch_size=batch_size, lr=lr, seed=seed,
                            augment=augment and data == "cifar10", teacher=teacher_model,
                            neurons=neurons, compile=compile_)
        ft.meta["finetune"].update({"from": str(program), "data": data_copy(data, data_dir),
                                    "teacher": (str(teacher) if teacher else
                                                f"itself at T={self_distill}" if self_distill else None),
                                    "seconds": round(time.time() - t0, 1)})
        _save_finetuned(ft, hist, out, f"{prog.name}: fine-tuning at T={timesteps}", f"at t={ls[-1]}")

    def _rate_finetune(prog, program, data, data_dir, out, threads, **kw):
        """`sia finetune --view rate`: the program's integers trained in its rate view."""
        import time

        import torch

        from sia.convert.rate_teacher import rate_finetune
        from sia.data.registry import data_copy, load_split

        if threads:
            torch.set_num_threads(threads)
        images, labels = load_split(data, "train", data_dir)
        t0 = time.time()
        ft, hist = rate_finetune(prog, images, labels, **kw)
        ft.meta["finetune"].update({"from": str(program), "data": data_copy(data, data_dir),
                                    "seconds": round(time.time() - t0, 1)})
        _save_finetuned(ft, hist, out, f"{prog.name}: fine-tuning in the rate view", "in the rate view")

    def _save_finetuned(ft, hist, out, title, where):
        """The program, its history and plot: all three or none (sia/outputs.py)."""
        from sia.convert.finetune import plot_history
        from sia.outputs import write_outputs
        from sia.program import save_program

        log, png = out.with_suffix(".json"), out.with_suffix(".png")
        write_outputs(out.parent, {
            out.name: lambda p: save_program(ft, p),
            log.name: lambda p: p.write_text(json.dumps({**ft.meta["finetune"], **hist}) + "\n"),
            png.name: lambda p: plot_history(hist, p, title)})
        print(f"{ft.summary()} -> {out} (history {log.name}, {png.name}; last 50 batches: "
              f"train accuracy {sum(hist['acc'][-50:]) / len(hist['acc'][-50:]):.3f} {where})")

    @app.command("teacher")
    def teacher_cmd(
        program: str = typer.Argument(..., help="program file (or zoo name) to grow it from"),
        out: Path = typer.Option(..., "--out", help="directory to write (teacher.safetensors, "
                                                   "teacher.json, teacher.png)"),
        data: str = typer.Option(None, "--data", help="digits | cifar10 (default: program's)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 dir (else $SIA_CIFAR10_DIR)"),
        steps: int = typer.Option(800, "--steps", help="training batches"),
        batch_size: int = typer.Option(128, "--batch", help="images per batch"),
        lr: float = typer.Option(0.003, "--lr", help="Adam step, in weight codes (cosine decay)"),
        seed: int = typer.Option(0, "--seed"),
        label_smoothing: float = typer.Option(0.1, "--label-smoothing"),
        augment: bool = typer.Option(True, "--augment/--no-augment",
                                     help="random crop + flip (CIFAR-10 only)"),
        bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast (CPUs with AMX)"),
        evaluate: bool = typer.Option(True, "--eval/--no-eval",
                                      help="test accuracy of the view before and after"),
        threads: int = typer.Option(0, "--threads", help="torch CPU threads (0 = default)"),
        compile_: bool = typer.Option(False, "--compile", help="torch.compile the forward"),
    ):
        """Grow a float distillation teacher from a program, no twin needed.

        The program's rate view (each IF layer as clamp(current / threshold, 0, 1), the
        rate it tends to as T grows) is trained in float from the program's integers;
        `sia finetune PROGRAM --teacher OUT` then distils from it."""
        import time

        import torch

        from sia.convert.finetune import plot_history
        from sia.convert.rate_teacher import (INFO, WEIGHTS, RateNet, check_train_args,
                                              rate_accuracy, save_teacher, train_rate_net)
        from sia.data.registry import data_copy, load_split
        from sia.outputs import check_out_dir

        check_train_args(steps, batch_size, lr, label_smoothing)
        check_out_dir(out, (WEIGHTS, INFO, "teacher.png"))
        prog, data = program_and_data(program, data, threads)
        if threads:
            torch.set_num_threads(threads)
        images, labels = load_split(data, "train", data_dir)
        test = load_split(data, "test", data_dir) if evaluate else None
        acc0 = rate_accuracy(RateNet(prog), *test) if evaluate else None
        t0 = time.time()
        net, hist = train_rate_net(prog, images, labels, steps=steps, batch_size=batch_size,
                                   lr=lr, seed=seed, augment=augment and data == "cifar10",
                                   label_smoothing=label_smoothing, bf16=bf16, compile=compile_)
        seconds = round(time.time() - t0, 1)
        acc1 = rate_accuracy(net, *test) if evaluate else None
        train_acc = float(sum(hist["acc"][-50:]) / len(hist["acc"][-50:]))
        info = {"from": str(program), "dataset": data, "data": data_copy(data, data_dir),
                "steps": steps, "batch": batch_size, "lr": lr, "seed": seed,
                "label_smoothing": label_smoothing, "augment": augment and data == "cifar10",
                "bf16": bf16, "compiled": compile_, "temperature": hist["temperature"],
                "seconds": seconds, "train_accuracy_last50": train_acc,
                "test_accuracy_start": acc0, "test_accuracy": acc1}
        save_teacher(net, out, info, extra={
            "teacher.png": lambda p: plot_history(hist, p, f"{prog.name}: rate teacher")})
        tail = (f"; test accuracy {acc0:.4f} -> {acc1:.4f}" if evaluate else "")
        print(f"rate teacher of {prog.name}: {steps} steps in {seconds:.0f} s, train accuracy "
              f"{train_acc:.3f} (last 50 batches){tail} -> {out}")

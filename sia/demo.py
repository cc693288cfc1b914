"""`sia demo`, the main job: digits CNN, reduced precision vs FP32 twin, SNN at t = 1..8.

train QCFS model + FP32 twin -> convert -> golden simulator at every t -> table,
JSON and PNG (accuracy vs timestep), then the accelerator's report for the program.
"""

import json
import time
from pathlib import Path

import typer

from sia import SiaError


def accuracy_plot(path: Path, title: str, snn_acc, refs: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    t = list(range(1, len(snn_acc) + 1))
    ax.plot(t, [100 * a for a in snn_acc], "o-", label="SNN (golden simulator)")
    for (name, acc), style in zip(refs.items(), ("--", ":", "-.")):
        ax.axhline(100 * acc, ls=style, color="gray", label=f"{name} {100 * acc:.2f}%")
    ax.set(xlabel="timestep t", ylabel="test accuracy (%)", xticks=t)
    # long run names: wrap the title at " on " rather than let it run off the figure
    ax.set_title(title.replace(" on ", "\non ", 1) if len(title) > 50 else title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def check_timesteps(timesteps: int):
    """The demo runs the program to T on the accelerator model, whose default build
    runs at most max_timesteps (16) steps: refuse any other T before training."""
    from sia.hw.params import SIAConfig
    t_lim = SIAConfig().max_timesteps
    if not 1 <= timesteps <= t_lim:
        raise SiaError(f"--T {timesteps}: give 1..{t_lim} (the accelerator model's max_timesteps)")


def run_demo(out: Path, config_dir: Path, timesteps: int = 8, progress: bool = True) -> dict:
    from rich.console import Console
    from rich.table import Table

    from sia.convert import convert
    from sia.data.registry import INPUT_SHAPES, load_split
    from sia.program import save_program
    from sia.snn import simulate
    from sia.snn.ann import ann_predict
    from sia.train import evaluate, load_config, train

    # everything checked before the first training epoch
    check_timesteps(timesteps)
    if out.exists() and not out.is_dir():
        raise SiaError(f"--out {out} exists and is not a directory")
    cfgs = {kind: load_config(config_dir / f"digits_{kind}.toml") for kind in ("fp32", "qcfs")}
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    runs = {}
    for kind, cfg in cfgs.items():
        console.print(f"[bold]training[/] digits {kind} ({cfg.epochs}+{cfg.fold_epochs} epochs)")
        runs[kind] = train(cfg, out / f"train_{kind}", progress=progress)
    train_s = time.time() - t0

    prog = convert(runs["qcfs"].model, INPUT_SHAPES["digits"], name="digits_snn",
                   timesteps=timesteps, meta={"dataset": "digits", "arch": "digits_cnn"})
    save_program(prog, out / "digits_snn.safetensors")
    images, labels = load_split("digits", "test")
    sim = simulate(prog, images, labels, T=timesteps)
    acc = {
        "fp32_dnn": evaluate(runs["fp32"].model, images, labels),
        "reduced_precision_ann": evaluate(runs["qcfs"].model, images, labels),
        "integer_ann": float((ann_predict(prog, images) == labels).float().mean()),
        "snn": dict(zip(range(1, timesteps + 1), sim.accuracy)),
    }

    table = Table(title=f"digits test set ({len(labels)} images)")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_row("FP32 DNN", f"{100 * acc['fp32_dnn']:.2f}%")
    qc = runs["qcfs"].metrics["config"]
    table.add_row(f"reduced-precision ANN ({qc['weight_bits']}-bit w, L={qc['levels']})",
                  f"{100 * acc['reduced_precision_ann']:.2f}%")
    table.add_row("integer ANN of the program", f"{100 * acc['integer_ann']:.2f}%")
    for t, a in acc["snn"].items():
        table.add_row(f"SNN @ t={t}", f"{100 * a:.2f}%")
    console.print(table)

    report = {"dataset": "sklearn-digits", "test_images": len(labels), "accuracy": acc,
              "train_seconds": round(train_s, 1), "program": "digits_snn.safetensors",
              "golden": sim.to_json()}
    accuracy_plot(out / "accuracy_vs_timestep.png", "digits: SNN accuracy vs timestep",
                  sim.accuracy, {"FP32 DNN": acc["fp32_dnn"],
                                 "reduced-precision ANN": acc["reduced_precision_ann"]})
    # the same program on the cycle-level model of the accelerator (bit-exact outputs)
    from sia.hw.model import report as hw_report
    from sia.hw.model import run as hw_run
    hw = hw_report.summarize(hw_run(prog, images, labels, T=timesteps), program=prog)
    hw["data"] = "digits"
    hw_report.write(hw, out)
    report["accelerator"] = {k: hw[k] for k in ("latency_cycles", "latency_us", "images_per_s",
                                                "gops_acc", "gops_per_pe", "gops_dense_equiv",
                                                "pe_utilisation", "accuracy")}
    console.print(f"[bold]SIA model[/] (64 PEs, 100 MHz): {hw_report.headline(hw)}")
    # throughput mode: weights resident over a batch of 64 images (launch-major)
    hwb = hw_report.summarize(hw_run(prog, images, labels, T=timesteps, weight_batch=64))
    report["accelerator_batch64"] = {k: hwb[k] for k in ("latency_cycles", "images_per_s",
                                                         "gops_acc", "gops_per_pe",
                                                         "batch_latency_us")}
    console.print(f"[bold]SIA model, batch 64[/]: {hwb['latency_cycles']['mean']:,.0f} cycles/image, "
                  f"{hwb['images_per_s']:,.0f} images/s, GOPS(acc) {hwb['gops_acc']:.2f} "
                  f"({hwb['gops_per_pe']:.4f}/PE)")
    (out / "demo.json").write_text(json.dumps(report, indent=1) + "\n")
    gap = sim.accuracy[-1] - acc["fp32_dnn"]   # SNN - FP32, as everywhere (negative: below)
    console.print(f"SNN@T={timesteps} {100 * sim.accuracy[-1]:.2f}% vs FP32 "
                  f"{100 * acc['fp32_dnn']:.2f}% (SNN - FP32 {100 * gap:+.2f} points); "
                  f"trained in {train_s:.0f}s; wrote {out}/demo.json and accuracy_vs_timestep.png")
    return report


def register(app: typer.Typer):
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("runs/demo"), "--out", help="output directory"),
        config_dir: Path = typer.Option(Path("configs"), "--config-dir",
                                        help="directory with digits_qcfs.toml / digits_fp32.toml"),
        timesteps: int = typer.Option(8, "--T", help="evaluate the SNN at t = 1..T"),
    ):
        """Main job: train, convert and evaluate the digits SNN; print the table."""
        check_timesteps(timesteps)
        for kind in ("qcfs", "fp32"):
            if not (config_dir / f"digits_{kind}.toml").is_file():
                raise SiaError(f"missing {config_dir}/digits_{kind}.toml (run from the repo root "
                               f"or pass --config-dir)")
        run_demo(out, config_dir, timesteps)

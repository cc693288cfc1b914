"""`sia train CONFIG.toml`: one training run (also under torchrun for DDP)."""

from pathlib import Path

import typer


def register(app: typer.Typer):
    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="TOML file with every hyper-parameter"),
        out: Path = typer.Option(None, "--out", help="run directory (default runs/train/<config name>)"),
        resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pt"),
        set_: list[str] = typer.Option([], "--set", help="override a config key: key=value (TOML value)"),
        data_dir: str = typer.Option(None, "--data-dir", help="CIFAR-10 directory (else $SIA_CIFAR10_DIR)"),
        stop_after: int = typer.Option(None, "--stop-after", help="stop after epoch N (resume later)"),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
    ):
        """Train a reduced-precision (QCFS) model or its FP32 twin; writes model.safetensors."""
        from sia.train.config import load_config
        from sia.train.trainer import train

        cfg = load_config(config, set_)
        if data_dir:
            cfg.data_dir = data_dir
        out = out or Path("runs/train") / config.stem
        res = train(cfg, out, resume=resume, progress=progress, stop_after=stop_after)
        m = res.metrics
        if _rank() != 0:
            return
        if "test_acc" not in m:
            print(f"{config.stem}: stopped after epoch {len(m['epochs'])}; continue with --resume -> {out}")
        else:
            print(f"{config.stem}: {cfg.arch} {cfg.act} w{cfg.weight_bits or 'fp'} on {m['data']}: "
                  f"test acc {m['test_acc']:.4f} (before fold {m['test_acc_bn']:.4f}), "
                  + (f"val acc {m['val_acc']:.4f} ({m['holdout']} held-out training images), "
                     if "val_acc" in m else "")
                  + f"{len(m['epochs'])} epochs in {m['train_time_s']:.0f}s -> {out}")


def _rank() -> int:
    import os
    return int(os.environ.get("RANK", "0"))

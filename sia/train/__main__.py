"""`python -m sia.train CONFIG.toml ...`: the train command alone (e.g. for torchrun -m)."""

import sys

import typer

from sia import run_main
from sia.train.cli import register

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
register(app)
app.command("_", hidden=True)(lambda: None)  # a second command keeps the `train` sub-command form

if __name__ == "__main__":
    run_main(lambda: app(args=["train", *sys.argv[1:]], standalone_mode=True))

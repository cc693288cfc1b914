"""`python -m sia.train CONFIG.toml ...`: the train command alone (e.g. for torchrun -m)."""

import sys

import typer

from sia import SiaError
from sia.train.cli import register

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
register(app)
app.command("_", hidden=True)(lambda: None)  # a second command keeps the `train` sub-command form

if __name__ == "__main__":
    try:
        app(args=["train", *sys.argv[1:]], standalone_mode=True)
    except SiaError as e:
        print(f"sia: error: {e}", file=sys.stderr)
        sys.exit(2)

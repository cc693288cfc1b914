"""sia: spiking inference accelerator toolkit.

Data path: model (sia.models) -> quantise (sia.quant, sia.train) -> program
(sia.convert, sia.program) -> backend (sia.snn golden simulator, sia.hw model/RTL,
sia.deploy PYNQ driver).
"""

__version__ = "0.1.0"


class SiaError(Exception):
    """A user-facing error: the CLI prints its message on one line, no traceback."""


def int_list(text: str, flag: str) -> tuple[int, ...]:
    """A command-line option's comma list of integers ("4,5,8"); anything else is a
    one-line SiaError naming the option."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SiaError(f"{flag} {text!r}: give a comma list of integers") from None


def run_main(main, prog: str = "sia"):
    """Run an entry point (the CLI, `python -m sia.train`, a benchmark script): a user
    mistake (SiaError, a missing file) ends as one line on stderr and exit status 2."""
    import sys
    try:
        return main()
    except SiaError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
    except FileNotFoundError as e:
        print(f"{prog}: error: no such file: {e.filename}", file=sys.stderr)
    except FileExistsError as e:   # mkdir of an output's parent that is a file
        print(f"{prog}: error: {e.filename} exists and is not a directory", file=sys.stderr)
    except OSError as e:   # an output that cannot be written: a directory, no permission, ...
        what = f"cannot write {e.filename}: " if e.filename else ""
        print(f"{prog}: error: {what}{e.strerror or e}", file=sys.stderr)
    sys.exit(2)

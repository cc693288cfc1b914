"""The `sia` command. Each area registers its sub-commands from its own cli module;
user mistakes (SiaError, bad paths) print one line and exit 2, never a traceback."""

import typer

from sia import run_main

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sia: reduced-precision DNN -> integer SNN program -> golden / model / RTL / PYNQ")

# Sub-command modules, in data-path order. Each exposes register(app).
_MODULES = [
    "sia.train.cli",
    "sia.convert.cli",
    "sia.snn.cli",
    "sia.hw.cli",
    "sia.hw.rtl.cli",
    "sia.zoo.cli",
    "sia.deploy.cli",
    "sia.demo",
]


def _register():
    import importlib
    for name in _MODULES:
        importlib.import_module(name).register(app)


def _is(e: BaseException, name: str) -> bool:
    """Is e a click exception of that class? By name: typer >= 0.29 vendors click
    (typer._click), older typer raises click's own classes."""
    return any(c.__name__ == name for c in type(e).__mro__)


def _run(argv):
    """The app outside click's standalone mode, so that a usage error (unknown option or
    command, a value outside an option's range) is one line like every other mistake,
    not click's boxed message."""
    import sys

    from sia import SiaError
    try:
        app(args=argv, standalone_mode=False)
    except Exception as e:
        if _is(e, "NoArgsIsHelpError"):   # bare `sia` / `sia rtl`: the help
            print(e.ctx.get_help())
            sys.exit(0)
        if _is(e, "UsageError"):
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "sia"
            raise SiaError(f"{e.format_message()} (see '{where} --help')") from None
        if _is(e, "ClickException"):
            raise SiaError(e.format_message()) from None
        if _is(e, "Abort"):
            print("aborted", file=sys.stderr)
            sys.exit(1)
        raise
    # like click's standalone mode: SystemExit(0) on success too (no command raises
    # typer.Exit; a command's return value is not an exit status)
    sys.exit(0)


def main(argv=None):
    _register()
    run_main(lambda: _run(argv))


if __name__ == "__main__":
    main()

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


def main(argv=None):
    _register()
    # standalone mode: click prints usage errors (bad option) itself and exits 2
    run_main(lambda: app(args=argv, standalone_mode=True))


if __name__ == "__main__":
    main()

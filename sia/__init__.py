"""sia: spiking inference accelerator toolkit.

Data path: model (sia.models) -> quantise (sia.quant, sia.train) -> program
(sia.convert, sia.program) -> backend (sia.snn golden simulator, sia.hw model/RTL,
sia.deploy PYNQ driver).
"""

__version__ = "0.1.0"


class SiaError(Exception):
    """A user-facing error: the CLI prints its message on one line, no traceback."""

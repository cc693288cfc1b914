"""Cycle-level model of the SIA accelerator (docs/architecture.md).

run(program, images, ...)            whole inference: outputs (bit-exact with the golden
                                     simulator) + cycles per layer / timestep / phase
launch_cycles(program, l, k, inputs) one launch's cycles for one image (RTL co-simulation)
trace(program, image, ...)           per-event mode for tiny programs (checks the fast path)
check_fits(program, config, T)       SiaError if the program does not fit the hardware
"""

from sia.hw.model.fast import LayerStats, ModelResult, launch_cycles, run
from sia.hw.model.fit import check_fits
from sia.hw.model.schedule import PHASES
from sia.hw.model.trace import TraceResult, trace

__all__ = ["LayerStats", "ModelResult", "PHASES", "TraceResult", "check_fits", "launch_cycles",
           "run", "trace"]

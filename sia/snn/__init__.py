"""Golden integer simulator of SNN programs: the reference every backend matches."""

from sia.snn.golden import SimResult, run_batch, simulate
from sia.snn.neuron import if_step, integrator_step

__all__ = ["SimResult", "run_batch", "simulate", "if_step", "integrator_step"]

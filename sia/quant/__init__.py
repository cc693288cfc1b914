"""Reduced-precision building blocks: rounding rules, QCFS activation, weight quantiser."""

from sia.quant.rounding import round_half_up, round_half_up_np
from sia.quant.qcfs import QCFS, qcfs
from sia.quant.weights import WeightQuant, quantize_weight, weight_scale

__all__ = ["round_half_up", "round_half_up_np", "QCFS", "qcfs", "WeightQuant",
           "quantize_weight", "weight_scale"]

"""Signed IF neurons for a program: the same integers, every IF layer's neurons also fire
a -1 spike that takes back an earlier one when V < 0 (docs/semantics.md).

Conversion error at small T is mostly "excess" spikes (`sia diagnose`): a neuron fires
early and its input turns negative later. Signed neurons correct it without changing
a weight (Wang et al., IJCAI 2022, "Signed neuron with memory"; Hu et al., TPAMI 2023,
"Fast-SNN"). The golden simulator and fine-tuning run them, and so do the SIA's model, RTL
and board on builds with `signed_count_bits` > 0 (`sia/hw/planes.py`).
"""

import copy

from sia.program.bounds import declare_bits
from sia.program.format import Program
from sia.program.validate import validate


def signed_program(program: Program) -> Program:
    """A copy with signed neurons in every IF layer (widths re-declared: a signed source
    widens its targets' current range)."""
    prog = copy.deepcopy(program)
    for layer in prog.layers:
        layer.signed = layer.kind == "if"
    for layer in prog.layers:
        declare_bits(prog, layer)
    if not prog.name.endswith("_signed"):
        prog.name += "_signed"
    prog.meta = {**prog.meta, "neurons": "signed"}
    return validate(prog)

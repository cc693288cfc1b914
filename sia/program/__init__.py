"""The SNN program: the contract between the converter and every backend.

A Program is plain data (dataclasses + integer numpy arrays), saved as a
safetensors file of tensors plus a JSON manifest. See docs/semantics.md.
"""

from sia.program.format import (FORMAT_VERSION, IMAGE, Layer, Program, Synapse, bits_signed,
                                bits_unsigned)
from sia.program.io import load_program, save_program
from sia.program.validate import validate

__all__ = ["FORMAT_VERSION", "IMAGE", "Layer", "Program", "Synapse", "bits_signed",
           "bits_unsigned", "load_program", "save_program", "validate"]

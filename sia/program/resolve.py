"""Resolve a program argument: a file path, or the name of a model-zoo entry."""

from pathlib import Path

from sia.program.format import Program
from sia.program.io import load_program


def resolve_program(name_or_path) -> Program:
    if not str(name_or_path):
        from sia import SiaError
        raise SiaError("empty program name: give a program file or a zoo name")
    p = Path(name_or_path)
    if p.exists() or p.suffix == ".safetensors":
        return load_program(p)
    from sia.zoo import load_zoo_program  # zoo names are plain words
    return load_zoo_program(str(name_or_path))

"""Trained QCFS model (sia.models blocks) -> integer SNN program (sia.program)."""

from sia.convert.convert import convert

__all__ = ["convert"]

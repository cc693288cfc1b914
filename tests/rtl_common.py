"""The small Verilator builds the RTL tests share (`sia.hw.rtl.testprog`, where
benchmarks/rtl_signed_sweep.py finds them too)."""

from sia.hw.rtl.testprog import SIGNED_BUILD, SMALL_BUILD

__all__ = ["SIGNED_BUILD", "SMALL_BUILD"]

"""Verilator co-simulation of the SIA top level (thin C++ testbench + Python driver)."""

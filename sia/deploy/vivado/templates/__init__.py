"""Vivado TCL / XDC templates (package data)."""

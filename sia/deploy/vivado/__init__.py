"""`sia deploy vivado`: a self-contained Vivado project directory for PYNQ-Z2."""

from sia.deploy.vivado.writer import (DEFAULT_PART, VivadoPorts, check_vivado_dir, run_tcl_check,
                                      tcl_command, write_vivado_dir)

__all__ = ["DEFAULT_PART", "VivadoPorts", "check_vivado_dir", "run_tcl_check", "tcl_command",
           "write_vivado_dir"]

# sia: constraints for the SIA accelerator on PYNQ-Z2 (xc7z020clg400-1).
# The design has no package pins of its own: the only clock is the PS FCLK_CLK0, which the
# processing_system7 IP constrains itself (create_clock on clk_fpga_0) at the frequency set in
# settings.tcl (CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ). Everything is synchronous to it, so no
# false paths or clock-domain crossings are needed. DDR and FIXED_IO pins belong to the PS.
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
set_property BITSTREAM.CONFIG.UNUSEDPIN PULLNONE [current_design]

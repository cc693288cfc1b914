# sia: create the Vivado project and block design for the SIA accelerator on PYNQ-Z2.
# Generated directory layout (see README.md next to this folder):
#   settings.tcl        parameters written by `sia deploy vivado` (part, clock, widths, names)
#   rtl/*.v             the exported SIA Verilog (top module $sia_top)
#   constraints/*.xdc   constraints
# Usage: vivado -mode batch -source tcl/build.tcl   (build.tcl sources this file)

set here [file dirname [file normalize [info script]]]
set root [file dirname $here]
source [file join $here settings.tcl]

# ---------------------------------------------------------------- project
create_project $project_name [file join $root $project_dir] -part $part -force
set_property target_language Verilog [current_project]
if {$board_part ne "" && [llength [get_board_parts -quiet $board_part]] > 0} {
    set_property board_part $board_part [current_project]
    set use_board_preset 1
} else {
    puts "sia: board part '$board_part' not installed; configuring the PS7 from settings.tcl"
    set use_board_preset 0
}
add_files -norecurse [glob -directory [file join $root rtl] *.v]
add_files -fileset constrs_1 -norecurse [glob -directory [file join $root constraints] *.xdc]
update_compile_order -fileset sources_1

# ---------------------------------------------------------------- block design
create_bd_design $bd_name

# Zynq-7000 processing system: DDR + FIXED_IO, M_AXI_GP0 (control), S_AXI_HP0 (DMA data),
# FCLK_CLK0 at the clock the architecture assumes, fabric interrupts for the DMA.
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
if {$use_board_preset} {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
} else {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "0" Master "Disable" Slave "Disable"} $ps
    set_property -dict $ps7_preset $ps
}
set_property -dict [list \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz \
    CONFIG.PCW_USE_M_AXI_GP0 {1} \
    CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH $hp_data_width \
    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} \
    CONFIG.PCW_IRQ_F2P_INTR {1} \
] $ps

# AXI DMA, simple (register) mode. The buffer-length register width decides the largest
# single transfer: 2^width - 1 bytes (the IP default of 14 bits = 16383 bytes is too small
# for most tile packets; the driver checks this against the .hwh).
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 axi_dma_0]
set_property -dict [list \
    CONFIG.c_include_sg {0} \
    CONFIG.c_sg_length_width $dma_length_width \
    CONFIG.c_sg_include_stscntrl_strm {0} \
    CONFIG.c_include_mm2s {1} \
    CONFIG.c_include_s2mm {1} \
    CONFIG.c_m_axi_mm2s_data_width $hp_data_width \
    CONFIG.c_m_axis_mm2s_tdata_width $stream_bits \
    CONFIG.c_m_axi_s2mm_data_width $hp_data_width \
    CONFIG.c_s_axis_s2mm_tdata_width $stream_bits \
    CONFIG.c_mm2s_burst_size {16} \
    CONFIG.c_s2mm_burst_size {16} \
    CONFIG.c_addr_width {32} \
] $dma

# The SIA accelerator: the exported Verilog as an RTL module reference. Vivado infers the
# AXI4-Lite / AXI4-Stream interfaces from the port-name prefixes (s_axi_*, s_axis_*, m_axis_*).
set sia [create_bd_cell -type module -reference $sia_top sia_0]

# Control path: PS M_AXI_GP0 -> interconnect -> {DMA S_AXI_LITE, SIA AXI4-Lite}
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
                  Master /processing_system7_0/M_AXI_GP0 Slave /axi_dma_0/S_AXI_LITE \
                  ddr_seg {Auto} intc_ip {New AXI Interconnect} master_apm {0}] \
    [get_bd_intf_pins axi_dma_0/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
                  Master /processing_system7_0/M_AXI_GP0 Slave /sia_0/$sia_s_axi \
                  ddr_seg {Auto} intc_ip {Auto} master_apm {0}] \
    [get_bd_intf_pins sia_0/$sia_s_axi]

# Data path: DMA M_AXI_MM2S / M_AXI_S2MM -> PS S_AXI_HP0 (DDR)
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
                  Master /axi_dma_0/M_AXI_MM2S Slave /processing_system7_0/S_AXI_HP0 \
                  ddr_seg {Auto} intc_ip {New AXI SmartConnect} master_apm {0}] \
    [get_bd_intf_pins processing_system7_0/S_AXI_HP0]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} \
                  Master /axi_dma_0/M_AXI_S2MM Slave /processing_system7_0/S_AXI_HP0 \
                  ddr_seg {Auto} intc_ip {Auto} master_apm {0}] \
    [get_bd_intf_pins axi_dma_0/M_AXI_S2MM]

# Streams: DMA MM2S -> SIA input stream (tile packets); SIA output stream -> DMA S2MM.
connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins sia_0/$sia_s_axis]
connect_bd_intf_net [get_bd_intf_pins sia_0/$sia_m_axis] [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]

# Clock and reset of the SIA core: FCLK_CLK0 and the interconnect's peripheral reset, unless
# the automation above already connected them (it does when the IP declares the association).
proc sia_connect_if_free {src dst} {
    if {[llength [get_bd_nets -quiet -of_objects [get_bd_pins $dst]]] == 0} {
        connect_bd_net [get_bd_pins $src] [get_bd_pins $dst]
    }
}
set rst [get_bd_cells -quiet -filter {VLNV =~ "*proc_sys_reset*"}]
if {[llength $rst] == 0} { error "sia: no proc_sys_reset in the block design (automation failed?)" }
sia_connect_if_free processing_system7_0/FCLK_CLK0 sia_0/$sia_clk
sia_connect_if_free [lindex $rst 0]/$sia_rst_source sia_0/$sia_rst

# DMA completion interrupts (and SIA's launch-done) -> PS IRQ_F2P; the driver polls, the
# interrupts are there for an interrupt-driven driver (PYNQ's AxiIntc needs an axi_intc).
set irq [create_bd_cell -type ip -vlnv xilinx.com:ip:xlconcat:2.1 xlconcat_0]
set_property -dict [list CONFIG.NUM_PORTS [expr {$sia_irq eq "" ? 2 : 3}]] $irq
connect_bd_net [get_bd_pins axi_dma_0/mm2s_introut] [get_bd_pins xlconcat_0/In0]
connect_bd_net [get_bd_pins axi_dma_0/s2mm_introut] [get_bd_pins xlconcat_0/In1]
if {$sia_irq ne ""} {
    connect_bd_net [get_bd_pins sia_0/$sia_irq] [get_bd_pins xlconcat_0/In2]
}
connect_bd_net [get_bd_pins xlconcat_0/dout] [get_bd_pins processing_system7_0/IRQ_F2P]

assign_bd_address
# Fixed base address of the SIA register file (the driver finds it in the .hwh anyway)
set seg [get_bd_addr_segs -quiet -of_objects [get_bd_addr_spaces processing_system7_0/Data] \
         -filter {NAME =~ "*sia_0*"}]
if {[llength $seg] > 0} {
    set_property offset $sia_base_addr [lindex $seg 0]
    set_property range $sia_addr_range [lindex $seg 0]
}
validate_bd_design
save_bd_design

# HDL wrapper as the top level
set bd_file [get_files ${bd_name}.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top ${bd_name}_wrapper [current_fileset]
update_compile_order -fileset sources_1
puts "sia: project [get_property DIRECTORY [current_project]] created"

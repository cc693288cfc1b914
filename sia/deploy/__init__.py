"""FPGA deployment of SIA programs on PYNQ-Z2 (docs/deploy.md).

image        the program image the accelerator consumes (header, tiles, CRC)
vivado       `sia deploy vivado`: Vivado project directory (Verilog, TCL, XDC)
reports      parsers for Vivado's utilization / timing / power reports
transport    PYNQ MMIO/DMA on the board, or the simulated twin (AXI DMA rules enforced)
pynq_driver  the PYNQ-style driver (imports pynq only on the board)
backends     one call, four backends: golden, model, rtl, pynq
"""

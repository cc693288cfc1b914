"""AXI4-Lite slave: the control/status registers of sia/hw/regmap.py."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sia.hw import regmap
from sia.hw.params import SIAConfig


def axil_ports(prefix="s_axil_"):
    return {f"{prefix}awaddr": In(8), f"{prefix}awvalid": In(1), f"{prefix}awready": Out(1),
            f"{prefix}wdata": In(32), f"{prefix}wstrb": In(4), f"{prefix}wvalid": In(1),
            f"{prefix}wready": Out(1), f"{prefix}bresp": Out(2), f"{prefix}bvalid": Out(1),
            f"{prefix}bready": In(1), f"{prefix}araddr": In(8), f"{prefix}arvalid": In(1),
            f"{prefix}arready": Out(1), f"{prefix}rdata": Out(32), f"{prefix}rresp": Out(2),
            f"{prefix}rvalid": Out(1), f"{prefix}rready": In(1)}


class AxiLiteRegs(wiring.Component):
    def __init__(self, cfg: SIAConfig):
        self.cfg = cfg
        sig = axil_ports()
        sig.update({"start": Out(1), "soft_reset": Out(1), "busy": In(1), "done": In(1),
                    "error": In(1), "error_code": In(8), "cycles": In(64), "sops": In(64),
                    "image_ops": In(64)})
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        R = regmap.REGISTERS
        pv = regmap.param_values(self.cfg)
        # write channel: accept address and data together
        acc = Signal()
        m.d.comb += [acc.eq(self.s_axil_awvalid & self.s_axil_wvalid & ~self.s_axil_bvalid),
                     self.s_axil_awready.eq(acc), self.s_axil_wready.eq(acc)]
        m.d.sync += [self.start.eq(0), self.soft_reset.eq(0)]
        with m.If(acc):
            m.d.sync += self.s_axil_bvalid.eq(1)
            with m.If(self.s_axil_awaddr == R["CTRL"][0]):
                m.d.sync += [self.start.eq(self.s_axil_wdata[0]),
                             self.soft_reset.eq(self.s_axil_wdata[1])]
        with m.Elif(self.s_axil_bready):
            m.d.sync += self.s_axil_bvalid.eq(0)
        # read channel
        m.d.comb += self.s_axil_arready.eq(~self.s_axil_rvalid)
        with m.If(self.s_axil_arvalid & ~self.s_axil_rvalid):
            m.d.sync += self.s_axil_rvalid.eq(1)
            values = {
                "ID": regmap.ID_MAGIC, "VERSION": regmap.VERSION,
                "STATUS": self.busy | (self.done << 1) | (self.error << 2) | (self.error_code << 8),
                "CYCLES_LO": self.cycles[:32], "CYCLES_HI": self.cycles[32:],
                "SOPS_LO": self.sops[:32], "SOPS_HI": self.sops[32:],
                "IMAGE_OPS_LO": self.image_ops[:32], "IMAGE_OPS_HI": self.image_ops[32:],
            }
            for n in regmap.PARAM_NAMES:
                values[f"PARAM_{n.upper()}"] = pv[n]
            with m.Switch(self.s_axil_araddr):
                for name, val in values.items():
                    with m.Case(R[name][0]):
                        m.d.sync += self.s_axil_rdata.eq(val)
                with m.Default():
                    m.d.sync += self.s_axil_rdata.eq(0)
        with m.Elif(self.s_axil_rready):
            m.d.sync += self.s_axil_rvalid.eq(0)
        return m

"""Stream helpers: the loader gearbox (64-bit beats -> W-bit memory words)."""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Gearbox(wiring.Component):
    """Accepts a 64-bit beat whenever `i_valid` (never stalls: needs W >= 64) and emits
    W-bit words LSB-first, one per cycle, as soon as W bits are buffered. `clear`
    drops any buffered bits (start of a launch: the padding of the last beat)."""

    def __init__(self, width: int, beat: int = 64):
        assert width >= beat, "gearbox needs word width >= beat width"
        self.width, self.beat = width, beat
        super().__init__({"i_valid": In(1), "i_data": In(beat), "clear": In(1),
                          "o_valid": Out(1), "o_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        W, B = self.width, self.beat
        buf = Signal(W + B)
        n = Signal(range(W + B + 1))
        emit = n >= W
        m.d.comb += [self.o_valid.eq(emit), self.o_data.eq(buf[:W])]
        buf_a = Signal(W + B)
        n_a = Signal(range(W + B + 1))
        m.d.comb += [buf_a.eq(Mux(emit, buf >> W, buf)), n_a.eq(Mux(emit, n - W, n))]
        with m.If(self.clear):
            m.d.sync += [buf.eq(0), n.eq(0)]
        with m.Elif(self.i_valid):
            m.d.sync += [buf.eq(buf_a | (self.i_data << n_a)[:W + B]), n.eq(n_a + B)]
        with m.Else():
            m.d.sync += [buf.eq(buf_a), n.eq(n_a)]
        return m

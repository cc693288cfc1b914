"""The twin's device backed by the RTL: the Verilator co-simulation of sia/hw/rtl
(sia.hw.rtl.cosim.harness).

The harness runs launches as a batch: its testbench (tb.cpp) writes CTRL.START over the
RTL's AXI4-Lite port, streams the tile packet into s_axis (TLAST on the last beat, random
TVALID stalls), collects m_axis until TLAST and reads STATUS and the counters back. This
device gathers the packet the driver's MM2S transfer delivers (framed by its header, as
the RTL frames it), runs it through the harness as one launch and serves the output to the
twin's S2MM. STATUS / CYCLES / SOPS / IMAGE_OPS are the RTL's own values for that launch;
ID, VERSION and PARAM_* are served from sia.hw.regmap (the values the RTL's register file
is elaborated with), since the batch harness does not expose single register reads.
"""

import numpy as np

from sia import SiaError
from sia.deploy.twin_device import PythonSia
from sia.hw import regmap as rm
from sia.hw.params import SIAConfig


class RtlSia(PythonSia):
    def __init__(self, cfg: SIAConfig | None = None, seed: int = 1, p_valid: float = 1.0,
                 p_ready: float = 1.0, build: bool = True):
        try:
            from sia.hw.rtl.cosim import harness
        except ImportError as e:
            raise SiaError(f"backend rtl not available: no RTL co-simulation harness ({e})") from None
        super().__init__(cfg)
        self.harness = harness
        self.seed, self.p_valid, self.p_ready = seed, p_valid, p_ready
        self.sim_cycles = 0
        if build:
            harness.build(self.cfg)       # Verilator build (cached per RTL source hash)

    def _packet(self, data: bytes):
        beats = [int(v) for v in np.frombuffer(data, dtype="<u8")]
        hdr = rm.unpack_fields(rm.LAYER_LAYOUT, beats[:rm.LAYER_BEATS]) if beats else {}
        # each harness call is a fresh RTL: a keep launch replays the full launch that
        # made its weights resident first, in the same simulation
        packets = [beats]
        if hdr.get("keep") and self.resident is not None:
            packets = [self.resident, beats]
        res, stats = self.harness.run(self.cfg, packets, seed=self.seed + self.launches,
                                      p_valid=self.p_valid, p_ready=self.p_ready)
        self.launches += 1
        self.sim_cycles += int(stats.get("cycles", 0))
        r = res[-1]
        if not hdr.get("keep") and not r.status & rm.STATUS_ERROR:
            self.resident = beats
        self.cycles, self.sops, self.image_ops = r.cycles, r.sops, r.image_ops
        if r.status & rm.STATUS_ERROR:
            return self._fail((r.status >> 8) & 0xFF)
        self.outbuf = np.asarray(r.beats, dtype="<u8").tobytes()
        self.outpos = 0

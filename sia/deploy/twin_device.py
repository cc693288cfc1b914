"""Devices behind the simulated AXI DMA twin (sia.deploy.transport.TwinTransport).

PythonSia: a pure-Python SIA. It implements the register file of sia.hw.regmap (ID,
VERSION, CTRL, STATUS, cycle/op counters, PARAM_*), takes a tile packet from the input
stream, decodes it with sia.hw.regmap's field layouts (nothing else: it never sees the
Program), computes the tile with the golden simulator's synapse and neuron functions and
sends the output packet with TLAST on the last beat. It is what lets the driver's register
and DMA sequence be tested without the RTL.

RtlSia (make_device('rtl')): the same interface over the Verilator co-simulation of
sia/hw/rtl, when the RTL provides a harness (see make_device).
"""

import numpy as np
import torch

from sia import SiaError
from sia.hw import regmap as rm
from sia.hw.params import SIAConfig
from sia.snn.neuron import if_step, integrator_step, signed_if_step

REG = {name: off for name, (off, _, _) in rm.REGISTERS.items()}
OPS = {v: k for k, v in rm.OPS.items()}


def stream_values(beats, width: int, count: int) -> np.ndarray:
    """rm.beats_to_values, vectorised: `count` signed `width`-bit values from the
    LSB-first bit stream of 64-bit beats."""
    raw = np.asarray(beats, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[:width * count].reshape(count, width)
    v = (bits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(1)
    return np.where(v >> (width - 1), v - (1 << width), v)


class PythonSia:
    def __init__(self, cfg: SIAConfig | None = None):
        self.cfg = cfg or SIAConfig()
        self.params = rm.param_values(self.cfg)
        self.resident = None      # (weight beats, neuron beats) of the last full load
        self.state = None         # (membranes, net counts) the last launch left (resume)
        self.bytes_in = 0         # input-stream traffic, all launches
        self.soft_reset()
        self.launches = 0
        self._decoded = {}

    # ------------------------------------------------------------ registers
    def soft_reset(self):
        self.busy = self.done = self.error = False
        self.error_code = 0
        self.inbuf = bytearray()
        self.outbuf = b""
        self.outpos = 0
        self.cycles = self.sops = self.image_ops = 0

    def reg_read(self, off: int) -> int:
        if off == REG["ID"]:
            return rm.ID_MAGIC
        if off == REG["VERSION"]:
            return rm.VERSION
        if off == REG["STATUS"]:
            return (int(self.busy) * rm.STATUS_BUSY | int(self.done) * rm.STATUS_DONE
                    | int(self.error) * rm.STATUS_ERROR | (self.error_code & 0xFF) << 8)
        for name, val in (("CYCLES", self.cycles), ("SOPS", self.sops), ("IMAGE_OPS", self.image_ops)):
            if off == REG[f"{name}_LO"]:
                return val & 0xFFFFFFFF
            if off == REG[f"{name}_HI"]:
                return (val >> 32) & 0xFFFFFFFF
        for n in rm.PARAM_NAMES:
            if off == REG[f"PARAM_{n.upper()}"]:
                return self.params[n]
        return 0

    def reg_write(self, off: int, value: int):
        if off != REG["CTRL"]:
            return
        if value & rm.CTRL_SOFT_RESET:
            self.soft_reset()
            self.resident = None
        if value & rm.CTRL_START:
            self.soft_reset()
            self.busy = True

    # ------------------------------------------------------------ streams
    def expects_output(self) -> bool:
        return self.busy

    def ready_in(self) -> bool:
        # TREADY is low until START and while the previous output is still going out
        return self.busy and not self.output_pending()

    def stream_in(self, data: bytes, last: bool):
        """Like the RTL, the packet is framed by its header (beat counts), not by TLAST: a
        short packet leaves the launch waiting for the rest (on a board: a hang)."""
        self.inbuf += data
        self.bytes_in += len(data)
        need = self._packet_bytes()
        if need is not None and len(self.inbuf) >= need:
            self._packet(bytes(self.inbuf[:need]))
            self.inbuf = bytearray()

    def _packet_bytes(self) -> int | None:
        if len(self.inbuf) < 8 * rm.LAYER_BEATS:
            return None
        beats = [int(v) for v in np.frombuffer(bytes(self.inbuf[:8 * rm.LAYER_BEATS]), dtype="<u8")]
        hdr = rm.unpack_fields(rm.LAYER_LAYOUT, beats)
        if hdr["magic"] != rm.HDR_MAGIC:
            return 8 * rm.LAYER_BEATS          # _packet reports the bad magic
        nb = -(-self.cfg.pes * 3 * self.cfg.v_bits // 64)
        loads = 0 if hdr["keep"] else hdr["wbeats"] + nb
        return 8 * (rm.header_beats(hdr["ngroups"]) + loads + hdr["sbeats"])

    def output_pending(self) -> bool:
        return self.outpos < len(self.outbuf)

    def stream_out(self, max_bytes: int) -> tuple[bytes, bool]:
        n = max(0, min(max_bytes, len(self.outbuf) - self.outpos))
        n -= n % 8
        chunk = self.outbuf[self.outpos:self.outpos + n]
        self.outpos += n
        last = self.outpos >= len(self.outbuf) and len(self.outbuf) > 0
        if last:
            self.busy, self.done = False, True
        return chunk, last

    def step(self):
        pass

    def _fail(self, code: int):
        self.busy, self.error, self.error_code = False, True, code
        self.resident = None

    # ------------------------------------------------------------ one launch
    def _packet(self, data: bytes):
        beats = [int(v) for v in np.frombuffer(data[:len(data) - len(data) % 8], dtype="<u8")]
        if not beats:
            return self._fail(1)
        hdr = rm.unpack_fields(rm.LAYER_LAYOUT, beats[:rm.LAYER_BEATS])
        if hdr["magic"] != rm.HDR_MAGIC:
            return self._fail(1)
        ng = hdr["ngroups"]
        hb = rm.header_beats(ng)
        groups = [rm.unpack_fields(rm.GROUP_LAYOUT, beats[rm.LAYER_BEATS + rm.GROUP_BEATS * j:
                                                          rm.LAYER_BEATS + rm.GROUP_BEATS * (j + 1)])
                  for j in range(ng)]
        cfg, P = self.cfg, self.cfg.pes
        nb = -(-P * 3 * cfg.v_bits // 64)
        loads = 0 if hdr["keep"] else hdr["wbeats"] + nb
        total = hb + loads + hdr["sbeats"]
        period = hdr["period"]   # steps per image (a packed launch: timesteps / period images)
        packed_bad = ((hdr["image"] or hdr["kind"]) and period != hdr["timesteps"]
                      or hdr["wnarrow"] and not rm.pairs_pes(cfg)
                      or any(g["phase"] for g in groups) and not cfg.phase_pairs
                      or any(g["quad"] for g in groups) and not cfg.phase_quads
                      or any(g["npos"] for g in groups) and not cfg.narrow_stream
                      # identity in the drain: group 0 only, on builds that have it,
                      # never a -1 plane (a signed identity drains as a sign pair, 1.13)
                      or any(g["drain"] and (j > 0 or not cfg.identity_drain or g["neg"])
                             for j, g in enumerate(groups))
                      # signed neurons and -1 planes (1.9): builds with net counts only,
                      # at most 2^K - 1 steps per image
                      or (hdr["signed"] or any(g["neg"] or g["spair"] for g in groups))
                      and not cfg.signed_count_bits
                      # a sign pair (1.12): one word pair per position, words scanned alone
                      or any(g["spair"] and (g["image"] or g["phase"] or g["quad"]
                                             or g["pool"] != 1 or g["nw"] != 2) for g in groups)
                      or hdr["signed"] and period >= 1 << cfg.signed_count_bits
                      # a resumed launch (1.10): one image of a spiking-input layer
                      or hdr["resume"] and (hdr["image"] or period != hdr["timesteps"]))
        if (len(beats) != total or hdr["tile_ch"] > P or not 1 <= period <= cfg.max_timesteps
                or period > hdr["timesteps"] or packed_bad
                or hdr["h_out"] > cfg.max_height or hdr["w_out"] > cfg.max_width):
            return self._fail(2)
        if hdr["resume"] and (self.state is None or tuple(self.state[0].shape)
                              != (hdr["tile_ch"], hdr["h_out"], hdr["w_out"])):
            return self._fail(2)   # (the RTL would go on from whatever its banks hold)
        if hdr["keep"]:          # resident weights (interface 1.1), like the RTL
            if self.resident is None:
                return self._fail(3)
            wb, nbeats = self.resident
        else:
            wb = beats[hb:hb + hdr["wbeats"]]
            nbeats = beats[hb + hdr["wbeats"]:hb + hdr["wbeats"] + nb]
            self.resident = (wb, nbeats)
        sb = beats[hb + loads:]
        out = self._compute(hdr, groups, wb, nbeats, sb)
        # CYCLES: the RTL's cycle formula for this packet (unstalled streams)
        from sia.hw.rtl.cycles import packet_cycles
        self.cycles = packet_cycles(groups, sb, (hdr["h_out"], hdr["w_out"]), hdr["timesteps"],
                                    bool(hdr["image"]), hdr["kind"] == rm.KINDS["integrator"],
                                    self.cfg.events_per_cycle, hb, loads, len(out),
                                    self.cfg.row_prefetch, self.cfg.psum_slots,
                                    self.cfg.pool_hold, hdr["period"],
                                    bool(hdr["resume"]))["total"]
        self.outbuf = np.asarray(out, dtype="<u8").tobytes()
        self.outpos = 0
        self.launches += 1

    def _compute(self, hdr, groups, wbeats, nbeats, sbeats) -> list[int]:
        cfg, P = self.cfg, self.cfg.pes
        T, n, H, W = hdr["timesteps"], hdr["tile_ch"], hdr["h_out"], hdr["w_out"]
        wb = cfg.weight_bits // 2 if hdr["wnarrow"] else cfg.weight_bits   # narrow stream
        rows_total = len(wbeats) * 64 // (P * 9 * wb)
        key = (tuple(wbeats), tuple(nbeats), wb)
        if key not in self._decoded:      # weights repeat for every image: decode once
            if len(self._decoded) > 64:
                self._decoded.clear()
            self._decoded[key] = (
                stream_values(wbeats, wb, rows_total * P * 9).reshape(rows_total, P, 9),
                stream_values(nbeats, cfg.v_bits, 3 * P).reshape(P, 3))
        wt, nv = self._decoded[key]
        theta, bias, v0 = nv[:n, 0], nv[:n, 1], nv[:n, 2]
        varying = torch.zeros(T, n, H, W, dtype=torch.float64)
        constant = torch.as_tensor(bias, dtype=torch.float64)[:, None, None].expand(n, H, W).clone()
        # the buffer words the beats carry (narrow streams: several per beat)
        words = rm.narrow_unpack(groups, sbeats, 1 if groups[0]["image"] else T).astype("<u8")
        # each group's weight rows run to the next group's first row (a -1 plane reads
        # the rows of its +1 plane, the group before it)
        starts = sorted({g["wrow"] for g in groups} | {rows_total})
        for j, g in enumerate(groups):
            rows = starts[starts.index(g["wrow"]) + 1] - g["wrow"]
            w = wt[g["wrow"]:g["wrow"] + rows, :n]
            hs, ws = g["hp"] * g["pool"], g["wp"] * g["pool"]     # the source as scanned
            nw = g["nw"]
            # the words at the addresses the dispatcher walks (a decimated group's view
            # skips rows and columns), in row-major order of the scanned map
            addr = rm.scan_addresses(g).reshape(-1)
            if g["image"]:
                seg = words[g["base"] + addr].reshape(hs, ws, nw)
                C = rows if OPS[g["op"]] == "conv" else (rows // (g["hp"] * g["wp"]) if OPS[g["op"]] == "dense" else n)
                x = seg.view(np.uint8).reshape(hs, ws, nw * 8)[:, :, :C].transpose(2, 0, 1)
                x = torch.as_tensor(x.astype(np.float64))[None]          # [1, C, hs, ws]
            else:
                seg = np.stack([words[g["base"] + t * g["tstride"] + addr]    # tstride apart
                                for t in range(T)]).reshape(T, hs, ws, nw)
                if g["quad"]:    # quad-interleaved: (Y, X, w, row 2Y / 2Y+1, column 2X / 2X+1)
                    nw, hs, ws = nw // 4, 2 * hs, 2 * ws
                    seg = seg.reshape(T, hs // 2, ws // 2, nw, 2, 2).transpose(
                        0, 1, 4, 2, 5, 3).reshape(T, hs, ws, nw)
                elif g["phase"]:   # pair-interleaved: (X, w, column 2X / 2X+1)
                    nw, ws = nw // 2, 2 * ws
                    seg = seg.reshape(T, hs, ws // 2, nw, 2).transpose(0, 1, 2, 4, 3).reshape(
                        T, hs, ws, nw)
                bits = np.unpackbits(seg.view(np.uint8).reshape(T, hs, ws, nw * 8), axis=-1,
                                     bitorder="little")
                op = OPS[g["op"]]
                C = rows if op == "conv" else (g["pos_rstride"] if op == "dense" else n)
                x = torch.as_tensor(bits[..., :C].transpose(0, 3, 1, 2).astype(np.float64))
                if g["spair"]:   # a sign pair: word 0 the +1 spikes, word 1 the -1 spikes
                    x = x - torch.as_tensor(bits[..., 64:64 + C].transpose(0, 3, 1, 2)
                                            .astype(np.float64))
            cur = self._synapse(OPS[g["op"]], g, w, x, n)
            if g["neg"]:          # a -1 plane's events add -w
                cur = -cur
            if g["image"]:
                constant += cur[0]
            else:
                varying += cur
        v = torch.as_tensor(v0, dtype=torch.int64)[:, None, None].expand(n, H, W).clone()
        count = torch.zeros_like(v)
        if hdr["resume"]:   # the membranes and counts the previous launch left (1.10)
            v, count = self.state
        varying = varying.round().to(torch.int64)
        constant = constant.round().to(torch.int64)
        if hdr["kind"] == rm.KINDS["if"]:
            th = torch.as_tensor(theta, dtype=torch.int64)[:, None, None]
            spikes = np.zeros((T, P, H, W), dtype=np.int8)
            v_init = v
            for t in range(T):
                if t % hdr["period"] == 0 and not hdr["resume"]:   # an image starts
                    v, count = v_init, torch.zeros_like(v_init)
                if hdr["signed"]:
                    v, s, count = signed_if_step(v, varying[t] + constant, th, count)
                else:
                    v, s = if_step(v, varying[t] + constant, th)
                spikes[t, :n] = s.numpy()
            self.state = (v, count)
            per = -(-P // 64)
            bits = np.zeros((T, H, W, per * 64), dtype=np.uint8)
            bits[..., :P] = spikes.transpose(0, 2, 3, 1) == 1
            if hdr["signed"]:      # the -1 plane in bits [P, 2P) (P <= 32)
                bits[..., P:2 * P] = spikes.transpose(0, 2, 3, 1) == -1
            if groups[0]["image"]:      # image layers: row-major, then t (regmap docs)
                bits = bits.transpose(1, 0, 2, 3).copy()
            return [int(b) for b in np.packbits(bits.reshape(-1, per * 64), axis=1,
                                               bitorder="little").view("<u8").reshape(-1)]
        for t in range(T):
            v = integrator_step(v, varying[t] + constant)
        self.state = (v, count)
        vals = np.zeros((H, W, P), dtype=np.int64)
        vals[..., :n] = v.numpy().transpose(1, 2, 0)
        out = []
        for y in range(H):
            for x_ in range(W):
                out += rm.bits_to_beats(vals[y, x_].tolist(), cfg.v_bits)
        return out

    @staticmethod
    def _synapse(op, g, w, x, n) -> torch.Tensor:
        """Exact current of one group (float64 holds every partial sum of these sizes)."""
        import torch.nn.functional as F
        p = g["pool"]
        if p > 1:
            x = F.avg_pool2d(x, p, divisor_override=1)
        if op == "conv":
            kh, kw = g["kh"], g["kw"]
            if g["phase"] and g["stride"] == 1:   # a one-tap phase group: a 1x1 conv
                kh = kw = 1
            C = w.shape[0]
            k = np.zeros((n, C, kh, kw), dtype=np.float64)
            for ky in range(kh):
                for kx in range(kw):
                    k[:, :, ky, kx] = w[:, :, ky * 3 + kx].T
            return F.conv2d(x, torch.as_tensor(k), stride=g["stride"], padding=g["pad"])
        if op == "dense":
            C, hw = g["pos_rstride"], g["hp"] * g["wp"]
            # row pos*C + c -> weight of feature c*hw + pos
            k = w[:, :, 0].reshape(hw, C, n).transpose(2, 1, 0).reshape(n, C * hw)
            return F.linear(x.flatten(1), torch.as_tensor(k, dtype=torch.float64))[:, :, None, None]
        return x * torch.as_tensor(w[0, :, 0], dtype=torch.float64)[None, :, None, None]


def make_device(kind: str, cfg: SIAConfig):
    if kind == "python":
        return PythonSia(cfg)
    if kind == "rtl":
        return rtl_device(cfg)
    raise SiaError(f"unknown twin device {kind!r} (python or rtl)")


def rtl_device(cfg: SIAConfig):
    """The Verilator co-simulation of sia/hw/rtl behind the twin's device interface."""
    try:
        from sia.deploy.rtl_device import RtlSia
    except ImportError as e:
        raise SiaError(f"backend rtl not available: {e}") from None
    return RtlSia(cfg)

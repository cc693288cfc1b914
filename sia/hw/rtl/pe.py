"""Processing element: one output channel of the tile.

Per cycle (stage S1, one cycle after the dispatcher chose the events): reads E weight
rows (9 taps each, issued at S0; phase-pair and phase-quad builds: each event set reads
its own part of the row, `weight_sets`), sign-extends, shifts (image bit b) and pre-adds them
tap-wise (E = 4: pre-adds, then shifts the sum: the cycle's image events share b), and
accumulates tap (ky, kx) into partial-sum bank (oy(ky) mod 3, kx) at
address ox(kx), with 4 row slots (global output row mod 4) so that the drain of one
row overlaps the accumulation of the next. Drain: psum(oy, ox) = sum of the 3 banks of
the row's slot at ox, cleared after the read (image layers: after the T-th read). Model twin: sia/snn/synapse.py
(conv / dense / identity current of one output channel).
"""

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sia.hw import timing
from sia.hw.params import SIAConfig
from sia.hw.rtl.bram import share_weight_port


def event_sets(cfg: SIAConfig) -> tuple[str, ...]:
    """Port-name tags of the event sets a cycle carries: one; phase pairs "" (tap column
    kx = 1) and "_b" (kx = 0, 2); phase quads "", "_b", "_c", "_d" = source positions
    (2Y + i, 2X + j) in (i, j) order."""
    return ("", "_b", "_c", "_d") if cfg.phase_quads else ("", "_b") if cfg.phase_pairs else ("",)


def weight_sets(cfg: SIAConfig) -> list[tuple[str, list[int]]]:
    """(event set, taps k = ky*3 + kx) of each part of a PE's weight memory: each part
    is read at its own set's rows. Phase quads: the taps a position of parity (i, j)
    reaches, ky = 1 (i = 0) or 0, 2 (i = 1), kx likewise by j; on groups that are not
    quads the dispatcher gives sets _c and _d the events of "" and _b, so the parts
    read together as the phase-pair split (kx = 1; kx = 0, 2) or the whole row."""
    if cfg.phase_quads:
        rows = ([1], [0, 2])
        return [(tag, [ky * 3 + kx for ky in rows[i] for kx in rows[j]])
                for tag, (i, j) in zip(event_sets(cfg), ((0, 0), (0, 1), (1, 0), (1, 1)))]
    if cfg.phase_pairs:
        return [("", [k for k in range(9) if k % 3 == 1]), ("_b", [k for k in range(9) if k % 3 != 1])]
    return [("", list(range(9)))]


def pe_ports(cfg: SIAConfig):
    E, wb = cfg.events_per_cycle, cfg.weight_bits
    rows = range(cfg.max_channels_in)
    cols = range(cfg.max_width)
    sig = {
        # weight load
        "w_we": In(1), "w_addr": In(rows), "w_data": In(9 * wb),
    }
    for e in range(E):
        sig[f"rd_addr{e}"] = In(rows)   # S0: weight row of event e
        sig[f"ev_valid{e}"] = In(1)     # S1
        sig[f"ev_shift{e}"] = In(3)     # S1
        sig[f"ev_sel{e}"] = In(range(cfg.pes))  # S1 identity: the one PE that accumulates
        for tag in event_sets(cfg)[1:]:   # the other event sets (phase pairs / quads)
            sig[f"rd_addr{tag}{e}"] = In(rows)
            sig[f"ev_valid{tag}{e}"] = In(1)
            sig[f"ev_sel{tag}{e}"] = In(range(cfg.pes))
    S = cfg.psum_slots
    if cfg.phase_quads:   # S1: a quad cycle - the slot of tap row 1 also takes tap row 2
        sig["quad"] = In(1)
    if cfg.signed_count_bits:   # S1: the events are -1 spikes (a `neg` group): add -w
        sig["neg"] = In(1)
    sig.update({"ident": In(1), "acc_en": In(1), "bank_valid": In(3 * S),
                "ky_sel": In(2 * S), "ox0": In(cols), "ox1": In(cols), "ox2": In(cols),
                "drain_en": In(1), "drain_row": In(range(S)), "drain_addr": In(cols), "drain_clear": In(1),
                "psum": Out(signed(cfg.acc_bits))})
    return sig


class PE(wiring.Component):
    def __init__(self, cfg: SIAConfig, index: int):
        self.cfg, self.index = cfg, index
        super().__init__(pe_ports(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg, E, wb, A = self.cfg, self.cfg.events_per_cycle, self.cfg.weight_bits, self.cfg.acc_bits
        plane = timing.plane_issue(E)
        # the weight memory: one 9-tap word per row, or split by event set (`weight_sets`),
        # each part read at its own set's rows. Weights are written only while no event
        # is issued (WLOAD), so event 0's read port may share its address with the write
        # port: Yosys then maps the part to a true dual-port block RAM (a read-write and a
        # read port) instead of one simple dual-port copy per read port, where that is
        # cheaper (`share_weight_port`)
        ports = []
        for tag, ks in weight_sets(cfg):
            mem = Memory(shape=unsigned(len(ks) * wb), depth=cfg.max_channels_in, init=[])
            m.submodules[f"wmem{tag}"] = mem
            wp = mem.write_port()
            addr0 = Signal(range(cfg.max_channels_in), name=f"waddr{tag}")
            rd0 = getattr(self, f"rd_addr{tag}0")
            shared = share_weight_port(cfg, len(ks) * wb)
            m.d.comb += [addr0.eq(Mux(self.w_we, self.w_addr, rd0) if shared else rd0),
                         wp.en.eq(self.w_we), wp.addr.eq(addr0 if shared else self.w_addr),
                         wp.data.eq(Cat(*[self.w_data[k * wb:(k + 1) * wb] for k in ks]))]
            ports.append((tag, ks, mem, addr0))
        # phase quads: `keep` holds each tap sum as its own carry chain, so Yosys's
        # alumacc does not fold tap row 1's adds into the quad adder `mid` (a 3-operand
        # $macc, mapped as a carry-save layer of LUTs)
        keep = {"keep": 1} if cfg.phase_quads else {}
        taps = [Signal(signed(wb + 8 + E), name=f"tap{k}", attrs=keep) for k in range(9)]
        terms = [[] for _ in range(9)]
        for e in range(E):
            # identity events go to one PE each (phase pairs: each set's own channel)
            sel = {tag: ~self.ident | (getattr(self, f"ev_sel{tag}{e}") == self.index)
                   for tag, _, _, _ in ports}
            # plane issue (E = 4): the cycle's image events share bit b, so the pre-added
            # sum is shifted once per tap (9 shifters, not 9*E)
            sh = getattr(self, f"ev_shift{e}")
            for tag, ks, mem, addr0 in ports:
                rp = mem.read_port()
                m.d.comb += rp.addr.eq(addr0 if e == 0 else getattr(self, f"rd_addr{tag}{e}"))
                act = Signal(name=f"act{tag}{e}")
                m.d.comb += act.eq(getattr(self, f"ev_valid{tag}{e}") & sel[tag])
                for j, k in enumerate(ks):
                    w = rp.data[j * wb:(j + 1) * wb].as_signed()
                    t = Signal(signed(wb + 8), name=f"t{e}_{k}")
                    m.d.comb += t.eq(Mux(act, w if plane else w << sh, 0))
                    terms[k].append(t)
        for k in range(9):
            s = terms[k][0]
            for t in terms[k][1:]:
                s = s + t
            m.d.comb += taps[k].eq(s << self.ev_shift0 if plane else s)
        mid = taps[3:6]     # the addend of ky_sel = 1
        if cfg.phase_quads:
            # a quad cycle's output row oy takes the even source row's ky = 1 tap and the
            # odd row's ky = 2 tap (ky_sel = 1 names the row pair's first output row)
            mid = [Signal(signed(wb + 9 + E), name=f"tap1_2_{kx}") for kx in range(3)]
            for kx in range(3):
                m.d.comb += mid[kx].eq(taps[3 + kx] + Mux(self.quad, taps[6 + kx], 0))
        # a -1 plane's cycle (signed builds; one group per cycle, so one sign) adds -tap =
        # ~tap + 1: the taps' ones' complement here, the +1 on the psum adder's carry-in
        # (a negation of its own per tap cost ~2.9 k LUT and ~700 CARRY4 on a 16-PE build)
        neg = self.neg if cfg.signed_count_bits else 0
        if cfg.signed_count_bits:
            def flip(x, name):
                y = Signal(signed(len(x)), name=name)
                m.d.comb += y.eq(x ^ Mux(neg, -1, 0))
                return y
            taps = [flip(t, f"tapn{k}") for k, t in enumerate(taps)]
            mid = [flip(x, f"midn{kx}") for kx, x in enumerate(mid)]
        oxs = [self.ox0, self.ox1, self.ox2]
        S = cfg.psum_slots
        reads = [[None] * 3 for _ in range(S)]
        for j in range(S):   # psum row slots: the drained row, the 3 being written (and
            # with 8 slots 4 more, so the dispatcher can run ahead of the drain)
            kysel = self.ky_sel[2 * j:2 * j + 2]
            for kx in range(3):
                bank = Memory(shape=signed(A), depth=cfg.max_width, init=[])
                m.submodules[f"bank{j}{kx}"] = bank
                rd = bank.read_port(domain="comb")
                wr = bank.write_port()
                # the drain owns the slot it reads; the accumulate path the other three
                drained = Signal(name=f"drained{j}{kx}")
                m.d.comb += drained.eq(self.drain_en & (self.drain_row == j))
                addr = Mux(drained, self.drain_addr, oxs[kx])
                # the drain's clear goes through the adder: addend ~rd and carry-in 1 write
                # rd + ~rd + 1 = 0, so the tap select, the clear and the adder's propagate
                # bit fit one LUT6 per bit (a zero mux after the adder was one more LUT per
                # bit per bank: ~400 LUTs per PE at 4 slots)
                sel = Mux(drained, 3, kysel)
                if cfg.phase_quads:
                    # the same 4-way select as below, written as bit 0 over bit 1: with the
                    # quad sum `mid` in it, ABC's AIG rewriting (&dc2) split the Array's
                    # select into extra LUTs per bit; this form (with `keep` on the taps)
                    # maps to one LUT6 per bit again: a quad PE 1,619 -> 1,345 LUT at
                    # 8-bit codes (docs/results/4-sia-rtl.md, session 25)
                    addend = Mux(sel[0], Mux(sel[1], ~rd.data, mid[kx]),
                                 Mux(sel[1], taps[6 + kx], taps[kx]))
                else:
                    addend = Array([taps[kx], mid[kx], taps[6 + kx], ~rd.data])[sel]
                m.d.comb += [rd.addr.eq(addr), wr.addr.eq(addr),
                             wr.data.eq(rd.data + addend + (drained | neg)),
                             wr.en.eq(Mux(drained, self.drain_clear,
                                          self.acc_en & self.bank_valid[j * 3 + kx]))]
                reads[j][kx] = rd.data
        row = [Array(reads[j][kx] for j in range(S))[self.drain_row] for kx in range(3)]
        m.d.comb += self.psum.eq(row[0] + row[1] + row[2])
        return m

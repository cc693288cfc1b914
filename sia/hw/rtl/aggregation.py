"""Aggregation core and ping-pong membrane memories.

The two banks are the halves of one simple-dual-port block RAM (address MSB = bank):
bank t%2 is only read and bank (t+1)%2 only written during timestep t, so one read
and one write port serve both, and the RAM's 72-bit SDP mode packs P*v_bits-bit words
without rounding each bank up to its own block RAMs. Depth: membrane_positions words
per bank.

P lanes, one output position per cycle, two stages:
  D0 (drain cycle): the PEs' psums arrive; V(t-1) is read from bank t%2 (block RAM).
  D1: cur = psum + bias (acc_bits), V = V(t-1) + cur (v_bits; t = 0: v_init);
      identity in the drain (`identity_drain` builds): + w[p] where bit p of the
      shortcut word (read at D0 beside the membrane) is set; bias + w[p] is a register
      per lane, so the addend is a 2:1 mux in front of the same adder; signed builds:
      - w[p] where bit p of a drained sign pair's -1 word is set (bias - w[p], a 3:1 mux);
      if-layer: s = V >= theta, V -= s*theta; V -> bank (t+1)%2, s -> output buffer.
      signed if-layer (`signed_count_bits` = K > 0 builds, the layer's `signed` bit): each
      lane's word also holds its net spike count c (K bits, above the P membranes);
      s = +1 if V >= theta, -1 if V < 0 and c > 0; V -= s*theta and c += s in the same
      adders; the output word is the +1 plane in bits [0, P), the -1 plane in [P, 2P).
Model twin: sia/snn/neuron.py (if_step / signed_if_step / integrator_step).
"""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sia.hw.params import SIAConfig


class Aggregation(wiring.Component):
    def __init__(self, cfg: SIAConfig):
        self.cfg = cfg
        P, A, V = cfg.pes, cfg.acc_bits, cfg.v_bits
        depth = cfg.membrane_positions
        super().__init__({
            "n_we": In(1), "n_lane": In(range(P)), "n_data": In(3 * V),
            "integ": In(1),
            "in_valid": In(1), "psum": In(P * A), "pos": In(range(depth)), "rd_bank": In(1),
            "t_first": In(1), "out_addr": In(24),
            "spk_we": Out(1), "spk_addr": Out(24), "spk_data": Out(2 * P if cfg.signed_count_bits else P),
            "un_en": In(1), "un_addr": In(range(depth)), "un_bank": In(1), "un_data": Out(P * V),
            "busy": Out(1),
        } | ({"id_on": In(1),              # the launch has a drain group (descriptor)
              "id_bits": In(P),            # D1: the shortcut word of the drained position
              "id_w": In(P * cfg.weight_bits)}   # the identity weight of each lane
             | ({"id_neg": In(P)} if cfg.signed_count_bits else {})   # D1: its -1 word
             if cfg.identity_drain else {})
          | ({"signed": In(1)} if cfg.signed_count_bits else {}))   # the layer's neurons

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        P, A, V = cfg.pes, cfg.acc_bits, cfg.v_bits
        depth = cfg.membrane_positions
        abits = max(1, (depth - 1).bit_length())
        th = [Signal(signed(V), name=f"th{p}") for p in range(P)]
        bias = [Signal(signed(V), name=f"bias{p}") for p in range(P)]
        vinit = [Signal(signed(V), name=f"vinit{p}") for p in range(P)]
        for p in range(P):
            with m.If(self.n_we & (self.n_lane == p)):
                m.d.sync += [th[p].eq(self.n_data[:V]), bias[p].eq(self.n_data[V:2 * V]),
                             vinit[p].eq(self.n_data[2 * V:])]
        K = cfg.signed_count_bits
        # (signed builds: the P net counts above the P membranes, one word)
        m.submodules.vmem = mem = Memory(shape=P * (V + K), depth=2 << abits, init=[])
        wr = mem.write_port()
        # transparent: a 1x1 map reads at t+1 the word written at t in the same cycle
        rd = mem.read_port(transparent_for=(wr,))
        m.d.comb += [rd.addr.eq(Mux(self.un_en, Cat(self.un_addr[:abits], self.un_bank),
                                    Cat(self.pos[:abits], self.rd_bank))),
                     rd.en.eq(self.un_en | self.in_valid)]
        m.d.comb += self.un_data.eq(rd.data[:P * V])
        # D0 -> D1
        v1, pos1, bank1, first1 = Signal(), Signal(range(depth)), Signal(), Signal()
        oaddr1, psum1 = Signal(24), Signal(P * A)
        m.d.sync += [v1.eq(self.in_valid), pos1.eq(self.pos), bank1.eq(self.rd_bank),
                     first1.eq(self.t_first), oaddr1.eq(self.out_addr), psum1.eq(self.psum)]
        m.d.comb += self.busy.eq(v1)
        vprev_word = rd.data
        vnew, spikes, negs, cnew = [], [], [], []
        wb = cfg.weight_bits
        for p in range(P):
            cur = Signal(signed(A), name=f"cur{p}")
            add = bias[p][:A].as_signed()
            if cfg.identity_drain:
                bias_id = Signal(signed(A), name=f"bias_id{p}")   # static during a launch
                w_id = self.id_w[p * wb:(p + 1) * wb].as_signed()
                m.d.sync += bias_id.eq(add + w_id)
                if cfg.signed_count_bits:   # a drained sign pair's -1 spike adds -w[p]
                    bias_idn = Signal(signed(A), name=f"bias_idn{p}")
                    m.d.sync += bias_idn.eq(add - w_id)
                    add = Mux(self.id_on & self.id_neg[p], bias_idn, add)
                add = Mux(self.id_on & self.id_bits[p], bias_id, add)
            m.d.comb += cur.eq(psum1[p * A:(p + 1) * A].as_signed() + add)
            vp = Signal(signed(V), name=f"vprev{p}")
            m.d.comb += vp.eq(Mux(first1, vinit[p], vprev_word[p * V:(p + 1) * V].as_signed()))
            v = Signal(signed(V), name=f"v{p}")
            m.d.comb += v.eq(vp + cur)
            s = Signal(name=f"s{p}")
            m.d.comb += s.eq(~self.integ & (v >= th[p]))
            vn = Signal(signed(V), name=f"vn{p}")
            if K:
                # a -1 spike when V < 0 and the net count c > 0 (never both: theta >= 1);
                # V + th and c - 1 on the same adders as V - th and c + 1
                c = Signal(K, name=f"c{p}")
                m.d.comb += c.eq(Mux(first1, 0, vprev_word[P * V + p * K:P * V + (p + 1) * K]))
                ng = Signal(name=f"neg{p}")
                m.d.comb += ng.eq(~self.integ & self.signed & v[-1] & (c != 0))
                m.d.comb += vn.eq(v + Mux(s, ~th[p], Mux(ng, th[p], 0)) + s)
                cn = Signal(K, name=f"cn{p}")
                m.d.comb += cn.eq(c + Mux(ng, (1 << K) - 1, s))
                negs.append(ng)
                cnew.append(cn)
            else:
                # v - s*th in one adder: ~th + 1 = -th, the +1 on the carry-in (a subtractor
                # beside a mux: 369 LUT more in the core synthesised alone, none in whole builds)
                m.d.comb += vn.eq(v + Mux(s, ~th[p], 0) + s)
            vnew.append(vn)
            spikes.append(s)
        m.d.comb += [wr.addr.eq(Cat(pos1[:abits], ~bank1)), wr.data.eq(Cat(*vnew, *cnew)),
                     wr.en.eq(v1)]
        m.d.comb += [self.spk_we.eq(v1 & ~self.integ), self.spk_addr.eq(oaddr1),
                     self.spk_data.eq(Cat(*spikes, *negs))]
        return m

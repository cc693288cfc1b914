"""Dispatcher: walks the row schedule of one output row, scans the spike-buffer words
of every scheduled (pooled) source position and issues up to E events per cycle.

Scan in issue units: spike words two at a time (word pairs: the word at the scan
address and the next one of the same (pooled column, pool row) run, read together from
the even/odd halves of the spike buffer; events are taken from a 128-bit window, low
word first); image words one at a time. A unit with n set bits costs max(1, ceil(n/E))
cycles (E = 4 image words: max(1, sum over bit planes b of ceil(n_b/E)), one plane per
cycle); the next unit's read is issued in the last cycle of the current one, so the
scan has no bubbles. Phase pairs (quads) read the two (four) words of a unit from the
buffer's banks and take up to E events of each word per cycle, one event set per word
(`sia.hw.rtl.pe.event_sets`). Stage S0
(this cycle): event channels -> weight-row addresses (to the PEs' weight memories);
stage S1 (registered): event enables/shifts and the tap geometry (bank enables,
bank-row selects, output columns) for the PEs. Model twin: sia/hw/model/schedule.py.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sia.hw import timing
from sia.hw.params import SIAConfig
from sia.hw.regmap import GROUP_LAYOUT, MAX_GROUPS, OPS
from sia.hw.rtl.pe import event_sets


def _or_all(words):
    acc = words[0]
    for w in words[1:]:
        acc = acc | w
    return acc


def _popcount(m, bits, name):
    s = Signal(range(len(bits) + 1), name=name)
    acc = Const(0, range(len(bits) + 1))
    for b in bits:
        acc = acc + b
    m.d.comb += s.eq(acc)
    return s


def _lowest_set(m, word, onehot_name, idx_name):
    """The lowest set bit of `word`: its one-hot (a carry chain, `word & -word`) and its
    index (an OR-tree encoder: log depth, not a priority-mux chain as deep as the word)."""
    n = len(word)
    oh = Signal(n, name=onehot_name)
    idx = Signal((n - 1).bit_length(), name=idx_name)
    m.d.comb += oh.eq(word & (~word + 1)[:n])
    for k in range(len(idx)):
        m.d.comb += idx[k].eq(Cat(*[oh[b] for b in range(n) if (b >> k) & 1]).any())
    return oh, idx


def count_tree(bits):
    """Set bits of a word as a balanced adder tree (a chain of adders would be as deep
    as the word is wide)."""
    terms = list(bits)
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
    return terms[0]


class Dispatch(wiring.Component):
    def __init__(self, cfg: SIAConfig, sbuf_depth: int):
        self.cfg = cfg
        E = cfg.events_per_cycle
        sig = {"ngroups": In(3), "h_out": In(9), "w_out": In(9), "tile_ch": In(8),
               "image": In(1),   # the layer's (all its groups share it; constant in a launch)
               "t_start": In(1), "t_first": In(1), "row_start": In(1),
               "row_nonempty": Out(1), "row_last": Out(1), "active": Out(1),
               # input beats the current output row needs (regmap.row_need): one step's
               # beats (image layers: the image) in, the row's need out
               "step_beats": In(24), "row_need": Out(24),
               "sb_addr": Out(range(sbuf_depth)), "sb_en": Out(1),
               "sb_data": In(64), "sb_data_hi": In(64),   # words sb_addr and sb_addr + 1
               "sb_count": In(7), "sb_count_hi": In(7),   # their set bits (stored beside them)
               # psum slot of this timestep's output row 0 (t*H_out mod psum_slots)
               "rowbase": In(range(cfg.psum_slots)),
               "ident": Out(1), "acc_en": Out(1), "bank_valid": Out(3 * cfg.psum_slots),
               "ky_sel": Out(2 * cfg.psum_slots),
               "ox0": Out(range(cfg.max_width)), "ox1": Out(range(cfg.max_width)),
               "ox2": Out(range(cfg.max_width)),
               "sops_inc": Out(16), "img_inc": Out(16)}
        for e in range(E):
            sig[f"rd_addr{e}"] = Out(range(cfg.max_channels_in))
            sig[f"ev_valid{e}"] = Out(1)
            sig[f"ev_shift{e}"] = Out(3)
            sig[f"ev_sel{e}"] = Out(range(cfg.pes))
            # event e of the other sets: a phase pair's high word (_b), a quad's words
            # (2Y+1, 2X) and (2Y+1, 2X+1) (_c, _d); outside those groups the sets repeat
            # the first's events (_c = "", _d = _b), so the PEs' weight parts read as one
            for tag in event_sets(cfg)[1:]:
                sig[f"rd_addr{tag}{e}"] = Out(range(cfg.max_channels_in))
                sig[f"ev_valid{tag}{e}"] = Out(1)
                sig[f"ev_sel{tag}{e}"] = Out(range(cfg.pes))
        if cfg.signed_count_bits:   # S1: the cycle's events are a -1 plane's (`neg` group)
            sig["neg"] = Out(1)
            # (with t_start) the step is an image's first: its -1 planes are empty, unscanned
            sig["img_first"] = In(1)
        if cfg.phase_quads:   # a quad unit's third and fourth words, and the S1 quad flag
            sig.update({"sb_data_c": In(64), "sb_data_d": In(64), "sb_count_c": In(7),
                        "sb_count_d": In(7), "quad": Out(1)})
        for g in range(MAX_GROUPS):
            for name, (_, _, bits) in GROUP_LAYOUT.items():
                sig[f"g{g}_{name}"] = In(bits)
        super().__init__(sig)

    def f(self, name):
        return Array(getattr(self, f"g{g}_{name}") for g in range(MAX_GROUPS))

    def elaborate(self, platform):
        m = Module()
        E, G = self.cfg.events_per_cycle, MAX_GROUPS
        AW = 24
        # ---- per-group state (persists across rows of one timestep)
        tbase = Array(Signal(AW, name=f"tbase{g}") for g in range(G))
        rowaddr = Array(Signal(AW, name=f"rowaddr{g}") for g in range(G))
        rlo = Array(Signal(9, name=f"rlo{g}") for g in range(G))
        rhi = Array(Signal(12, name=f"hi{g}") for g in range(G))
        dbase = Array(Signal(16, name=f"dbase{g}") for g in range(G))
        # ---- current scan position
        cg = Signal(range(G))
        r, x, i, j, w = (Signal(9, name="r"), Signal(9, name="x"), Signal(4, name="i"),
                         Signal(4, name="j"), Signal(6, name="w"))
        addr, xaddr, iaddr, raddr = (Signal(AW, name=n) for n in ("addr", "xaddr", "iaddr", "raddr"))
        db, rend = Signal(16), Signal(9)
        active, fresh = Signal(), Signal()
        rem = Signal(128)
        left = Signal(8)          # set bits still in `rem`
        nonempty = Signal(G)
        m.d.comb += self.active.eq(active)

        F = {n: self.f(n) for n in GROUP_LAYOUT}
        cur = {n: F[n][cg] for n in GROUP_LAYOUT}

        # ---- the input a row needs (regmap.row_need): the last group's beats up to the
        # end of the source rows the row scans, base + hi * prow_stride (kept by adding
        # stride * prow_stride per row, no multiplier), clamped to the step's beats
        # (dense: all of them), plus t * tstride. The groups are streamed in order, so
        # the last group's need is the largest
        tofs = Signal(24)
        rel = Signal(24, name="need_rel")
        lastg = {n: F[n][self.ngroups - 1] for n in ("op", "base", "reach", "stride", "prow_stride")}
        QD = self.cfg.phase_quads
        lastg["quad"] = F["quad"][self.ngroups - 1] if QD else Const(0, 1)
        m.d.comb += self.row_need.eq(tofs + Mux(rel < self.step_beats, rel, self.step_beats))

        # a -1 plane's map is empty at an image's first step (its net counts are 0,
        # `sia.hw.planes.unscanned_steps`): that step schedules none of its rows
        neg_off = Signal()
        # ---- timestep start
        with m.If(self.t_start):
            if self.cfg.signed_count_bits:
                m.d.sync += neg_off.eq(self.img_first)
            ps, reach = lastg["prow_stride"], lastg["reach"]
            # conv/identity reach <= 3 (kernels <= 3x3): reach * ps by two adds
            m.d.sync += [tofs.eq(Mux(self.t_first, 0, tofs + self.g0_tstride)),
                         rel.eq(Mux(lastg["op"] == OPS["dense"], self.step_beats,
                                    lastg["base"] + Mux(reach[0], ps, 0) + Mux(reach[1], ps << 1, 0)))]
            for g in range(G):
                nb = Mux(self.t_first, getattr(self, f"g{g}_base"),
                         tbase[g] + getattr(self, f"g{g}_tstride"))
                m.d.sync += [tbase[g].eq(nb), rowaddr[g].eq(nb), rlo[g].eq(0),
                             rhi[g].eq(getattr(self, f"g{g}_reach")),
                             dbase[g].eq(getattr(self, f"g{g}_wrow"))]

        # ---- row start: which groups have rows scheduled before this output row
        # (row prefetch: the row may start in the last dispatch cycle of the row before
        # it, while its last group saves its state; that group's state is forwarded)
        gdone = Signal()      # a row starting now follows the current group's last unit
        rlo_f = Array(Mux(gdone & (cg == g), r + 1, rlo[g]) for g in range(G))
        ne = Signal(G)
        rends = []
        for g in range(G):
            hp = getattr(self, f"g{g}_hp")
            re = Signal(9, name=f"rend{g}")
            m.d.comb += re.eq(Mux(rhi[g] < hp, rhi[g], hp))
            rends.append(re)
            # a drain group (identity in the drain) is added by the aggregation core
            m.d.comb += ne[g].eq((g < self.ngroups) & (rlo_f[g] < re) & ~getattr(self, f"g{g}_drain")
                                 & ~(neg_off & getattr(self, f"g{g}_neg")))
        rends = Array(rends)
        m.d.comb += self.row_nonempty.eq(ne.any())

        def first_of(mask):
            s = Signal(range(G))
            for g in reversed(range(G)):
                with m.If(mask[g]):
                    m.d.comb += s.eq(g)
            return s

        # r_end of each group for the current output row, latched at row start (hi moves on)
        rend_r = Array(Signal(9, name=f"rend_r{g}") for g in range(G))

        # pair_r: the unit being read pairs two words (registered when its read is
        # issued, so the word window does not wait for the run-end compare)
        pair_r = Signal()

        def run_pairs(g):     # the first unit of a run of group g pairs two words
            return ~self.image & ~((self.f("nw")[g] == 1) & (self.f("pool")[g] == 1))

        # words left in the run after the unit's first word (`rw`, counted down from the
        # run's pool * nw - 1): the run-end and pairing tests compare it with 0 / 1 /
        # 2 instead of comparing (w, j) and their successors with the group's nw - 1 and
        # pool - 1 through the group mux (that compare chain was the dispatcher's
        # critical path, Yosys). The run length is a shift-add of static descriptor
        # fields, registered (the descriptor is written cycles before a launch starts)
        RW = 10       # pool <= 15, nw <= 63
        rw = Signal(RW, name="run_left")
        runlen = []
        for g in range(G):
            pool_g, nw_g = self.f("pool")[g], self.f("nw")[g]
            prod = sum(Mux(pool_g[b], nw_g << b, 0) for b in range(len(pool_g)))
            rl = Signal(RW, name=f"run_len_m1_{g}")
            m.d.sync += rl.eq(prod - 1)
            runlen.append(rl)
        runlen = Array(runlen)

        def load_group(g, rend_of, rowaddr=rowaddr, rlo=rlo, dbase=dbase):
            m.d.sync += [pair_r.eq(run_pairs(g)), rw.eq(runlen[g])]
            m.d.sync += [cg.eq(g), r.eq(rlo[g]), x.eq(0), i.eq(0), j.eq(0), w.eq(0),
                         addr.eq(rowaddr[g]), xaddr.eq(rowaddr[g]), iaddr.eq(rowaddr[g]),
                         raddr.eq(rowaddr[g]), db.eq(dbase[g]), rend.eq(rend_of[g])]

        sb_addr = Signal(AW)
        sb_en = Signal()
        m.d.comb += [self.sb_addr.eq(sb_addr), self.sb_en.eq(sb_en)]

        # ---- word scan and event extraction (S0)
        image = self.image
        ident = cur["op"] == OPS["identity"]
        dense = cur["op"] == OPS["dense"]
        # plane issue (E = 4): an image word is stored plane-major (bit b*8+c = bit b of
        # pixel c; the loader transposes it) and one cycle issues events of the lowest
        # non-empty plane only, so the PEs shift their pre-added sums once
        # (docs/architecture.md, "Events"). The E lowest set bits are extracted as for
        # any word; those beyond the lowest plane stay in the word. Which events are
        # valid and whether the word ends come from the lowest plane's popcount, beside
        # the priority chain (a plane mask in front of the chain, or compares after it,
        # lengthened the path by 4-6 LUT levels)
        plane = timing.plane_issue(E)
        # the run (pool column j, word w) of the current (pooled column, pool row): the
        # unit is the word at (j, w) plus, for spike groups, its successor in the run
        end_w = w == cur["nw"] - 1
        lo_last = rw == 0            # the unit's first word is the run's last
        wh = Signal(6, name="s0_w_hi")
        jh = Signal(4, name="s0_j_hi")
        m.d.comb += [wh.eq(Mux(end_w, 0, w + 1)), jh.eq(Mux(end_w, j + 1, j))]
        pair = Signal(name="s0_pair")
        m.d.comb += pair.eq(~image & ~lo_last)
        # phase quads (`regmap.phase_quad`): every unit is four words, (2Y+i, 2X+j) of one
        # word w, read from the spike buffer's four banks
        # (builds without the option elaborate none of the quad logic)
        qd = Signal(name="s0_quad")
        if QD:
            m.d.comb += qd.eq(cur["quad"])
        run_end = Signal(name="s0_run_end")
        m.d.comb += run_end.eq(Mux(pair, rw == 1, lo_last))
        if QD:
            with m.If(qd):
                m.d.comb += run_end.eq(rw == 3)
        word = Signal(128)
        m.d.comb += word.eq(Mux(fresh, Cat(self.sb_data, Mux(pair_r, self.sb_data_hi, 0)), rem))
        if plane:
            # set bits of the lowest non-empty plane (byte), beside the priority chain:
            # event e of an image word is valid iff that plane holds more than e bits
            nz = Cat(*[word[b * 8:b * 8 + 8].any() for b in range(8)])   # image: hi = 0
            lowest = Signal(8, name="s0_low_plane")
            m.d.comb += lowest.eq(nz & (~nz + 1)[:8])
            low_byte = _or_all([word[b * 8:b * 8 + 8] & lowest[b].replicate(8) for b in range(8)])
            pc_low = _popcount(m, list(low_byte), "s0_pc_low")

        def chain(half, tag):
            """The E lowest set bits of a 64-bit word, one after the other (`_lowest_set`
            per stage). Returns one-hots, indices, valid bits (the word still had a bit)
            and the rest after each stage."""
            wv, out = half, ([], [], [], [])
            for e in range(E):
                oh, idx = _lowest_set(m, wv, f"s0_{tag}_onehot{e}", f"s0_{tag}_idx{e}")
                nxt = Signal(64, name=f"s0_{tag}_rest{e}")
                m.d.comb += nxt.eq(wv & ~oh)
                for lst, sig in zip(out, (oh, idx, wv.any(), nxt)):
                    lst.append(sig)
                wv = nxt
            return out

        # the pair's two words are scanned side by side (two 64-bit chains, not one
        # 128-bit chain: the chain is the dispatcher's critical path) and merged: event
        # slot e takes the low word's e-th event if it has one, else the high word's
        # (e - k)-th, k = events the low word gives this cycle
        lo, hi = word[:64], word[64:]
        oh_lo, idx_lo, v_lo, rest_lo = chain(lo, "lo")
        _, idx_hi, v_hi, rest_hi = chain(hi, "hi")

        def k_is(n):   # the low word gives exactly n events this cycle (n < E)
            return (v_lo[n - 1] if n else 1) & ~v_lo[n]
        # a sign pair (`spair`, signed builds): the unit is a position's +1 word (low) and
        # -1 word (high), both on channels 0..63; one sign per cycle - the high word's
        # events wait until the low word has none (so the PEs' one `neg` serves the cycle)
        SG = bool(self.cfg.signed_count_bits)
        sp = Signal(name="s0_spair")
        if SG:
            m.d.comb += sp.eq(cur["spair"])
        hi_wait = sp & v_lo[0]
        ev_valid, ev_idx, taken = [], [], []
        for e in range(E):
            v = Signal(name=f"s0_valid{e}")
            idx = Signal(7, name=f"s0_idx{e}")        # bit 6: from the unit's second word
            hidx, hv = Signal(6, name=f"s0_hidx{e}"), Signal(name=f"s0_hv{e}")
            for n in range(e + 1):
                with m.If(k_is(n)):
                    m.d.comb += [hidx.eq(idx_hi[e - n]), hv.eq(v_hi[e - n])]
            m.d.comb += idx.eq(Mux(v_lo[e], idx_lo[e], Cat(hidx, 1)))
            hv = hv & ~hi_wait
            if plane:   # image words: the low word only (its high word is empty)
                m.d.comb += v.eq(Mux(image, pc_low > e, v_lo[e] | hv))
                taken.append(Mux(v, oh_lo[e], 0))
            else:
                m.d.comb += v.eq(v_lo[e] | hv)
            ev_valid.append(v & active)
            ev_idx.append(idx)
        rem_hi = Signal(64, name="s0_rem_hi")
        m.d.comb += rem_hi.eq(hi)                      # k = E: the high word untouched
        for n in range(E):
            with m.If(k_is(n)):
                m.d.comb += rem_hi.eq(rest_hi[E - 1 - n])
        with m.If(hi_wait):
            m.d.comb += rem_hi.eq(hi)
        rem_next = Cat(rest_lo[E - 1], rem_hi)
        # phase pairs (`regmap.phase_pair`): the unit's two words are columns 2X and 2X+1
        # of one stride-2 conv; each gives up to E events per cycle to its own tap columns
        PH = self.cfg.phase_pairs
        ph = Signal(name="s0_phase")
        m.d.comb += ph.eq(cur["phase"] if PH else 0)
        if PH:
            rem_ph = Signal(128, name="s0_rem_phase")
            m.d.comb += rem_ph.eq(Mux(ph, Cat(rest_lo[E - 1], rest_hi[E - 1]), rem_next))
            rem_next = rem_ph
        if QD:   # a quad's third and fourth words: two more chains, their own remainders
            rem_c, rem_d = Signal(64, name="rem_c"), Signal(64, name="rem_d")
            left_c, left_d = Signal(8, name="left_c"), Signal(8, name="left_d")
            word_c, word_d = Signal(64, name="s0_word_c"), Signal(64, name="s0_word_d")
            m.d.comb += [word_c.eq(Mux(fresh, self.sb_data_c, rem_c)),
                         word_d.eq(Mux(fresh, self.sb_data_d, rem_d))]
            _, idx_c, v_c, rest_c = chain(word_c, "c")
            _, idx_d, v_d, rest_d = chain(word_d, "d")
            cnt_c, cnt_d = Signal(8, name="s0_count_c"), Signal(8, name="s0_count_d")
            m.d.comb += [cnt_c.eq(Mux(fresh, self.sb_count_c, left_c)),
                         cnt_d.eq(Mux(fresh, self.sb_count_d, left_d))]
        # the unit ends when at most E set bits are left: counted beside the chains (the
        # loader stores each word's popcount beside it; then the registered count minus
        # E), so the scan control does not wait for the last extraction stage
        count = Signal(8, name="s0_count")
        m.d.comb += count.eq(Mux(fresh, self.sb_count + Mux(pair_r, self.sb_count_hi, 0), left))
        last = Signal()
        m.d.comb += last.eq(active & (count <= E))
        # pool hold (build option `pool_hold`, E = 2): in a pooled position a unit ends
        # once fewer than 2E events are left with the one held before it (A = held +
        # count): it issues E and holds the rest (one event) for the next unit's first
        # cycle; the position's last unit ends as built, at A <= E
        HOLD = self.cfg.pool_hold and E == 2
        if HOLD:
            hvalid = Signal(name="hold_valid")     # an event is held (fresh cycles only)
            hrem = Signal(128, name="hold_rem")    # the window remainder: the held bit
            hw, hwh = Signal(6, name="hold_w"), Signal(6, name="hold_wh")   # its words
            holding = Signal(name="s0_holding")    # this unit may hold (not the position's last)
            m.d.comb += holding.eq(~image & (cur["pool"] != 1) & ~ph & ~(run_end & (i == cur["pool"] - 1)))
            a_cnt = Signal(8, name="s0_a_count")
            m.d.comb += [a_cnt.eq(count + hvalid),
                         last.eq(active & Mux(holding, a_cnt <= 2 * E - 1, a_cnt <= E))]
            # the window's remainder after E - held extractions (held: one, low word first)
            rem_q = Signal(128, name="s0_rem_q")
            m.d.comb += rem_q.eq(Mux(hvalid, Mux(v_lo[0], Cat(rest_lo[0], hi), Cat(lo, rest_hi[0])),
                                     rem_next))
        if PH or SG:   # the set bits left in each word of the unit
            left_b = Signal(8)
            cnt_lo, cnt_hi = Signal(8, name="s0_count_lo"), Signal(8, name="s0_count_hi")
            m.d.comb += [cnt_lo.eq(Mux(fresh, self.sb_count, left)),
                         cnt_hi.eq(Mux(fresh, self.sb_count_hi, left_b))]
        if SG:   # a sign pair ends with its last cycle of -1 events (or of +1 events, if none)
            with m.If(sp):
                m.d.comb += last.eq(active & Mux(cnt_lo != 0, (cnt_lo <= E) & (cnt_hi == 0),
                                                 cnt_hi <= E))
        if PH:   # a phase pair ends when each word has at most E set bits left
            with m.If(ph):
                m.d.comb += last.eq(active & (cnt_lo <= E) & (cnt_hi <= E) &
                                    (~qd | ((cnt_c <= E) & (cnt_d <= E)) if QD else 1))
        if plane:
            # an image word ends when its set bits lie in one plane (byte), at most E of them
            rem_img = Signal(128, name="s0_rem")
            m.d.comb += rem_img.eq(Mux(image, lo & ~_or_all(taken), rem_next))
            rem_next = rem_img
            one_plane = Signal(name="s0_one_plane")
            m.d.comb += one_plane.eq(nz == lowest)
            with m.If(image):
                m.d.comb += last.eq(active & one_plane & (pc_low <= E))

        chans, chans_b, chans_c, chans_d, shifts = [], [], [], [], []
        wch = []
        for e in range(E):
            c = Signal(12, name=f"s0_ch{e}")
            pix = ev_idx[e][:3] if plane else ev_idx[e][3:6]
            # bit 6: the event is in the unit's second word
            # (a sign pair's two words hold the same channels)
            m.d.comb += c.eq(Mux(image, (w << 3) | pix,
                                 (Mux(ev_idx[e][6] & ~sp, wh, w) << 6) | ev_idx[e][:6]))
            wch.append(c)
        if HOLD:
            # the held event (the lowest set bit of its remainder) takes slot 0, the
            # window's events move up one slot; held events are never image events
            hch = Signal(12, name="s0_hold_ch")
            h_lo = hrem[:64].any()
            _, h_idx = _lowest_set(m, hrem, "s0_hold_onehot", "s0_hold_idx")
            m.d.comb += hch.eq((Mux(h_lo, hw, hwh) << 6) | h_idx[:6])
            wch = [Mux(hvalid, hch, wch[0]), Mux(hvalid, wch[0], wch[1])]
            ev_valid = [(hvalid | ev_valid[0]) & active, Mux(hvalid, ev_valid[0], ev_valid[1])]
        for e in range(E):
            c = wch[e]
            sh = Signal(3, name=f"s0_sh{e}")
            bit = ev_idx[e][3:6] if plane else ev_idx[e][:3]
            m.d.comb += sh.eq(Mux(image, bit, 0))
            if PH:   # phase pairs: event e of each word; a word's channel is (w >> 1)*64 + bit
                # (quads: (w >> 2)*64 + bit)
                wq = Mux(qd, w >> 2, w >> 1) if QD else w >> 1
                ca, cb = Signal(12, name=f"s0_ch_a{e}"), Signal(12, name=f"s0_ch_b{e}")
                m.d.comb += [ca.eq(Mux(ph, (wq << 6) | idx_lo[e], c)),
                             cb.eq(Mux(ph, (wq << 6) | idx_hi[e], c))]
                m.d.comb += [getattr(self, f"rd_addr{e}").eq(db + Mux(ident, 0, ca)),
                             getattr(self, f"rd_addr_b{e}").eq(db + Mux(ident, 0, cb))]
                if QD:   # outside quads the third and fourth sets repeat the first two
                    cc, cd = Signal(12, name=f"s0_ch_c{e}"), Signal(12, name=f"s0_ch_d{e}")
                    m.d.comb += [cc.eq(Mux(qd, (wq << 6) | idx_c[e], ca)),
                                 cd.eq(Mux(qd, (wq << 6) | idx_d[e], cb))]
                    m.d.comb += [getattr(self, f"rd_addr_c{e}").eq(db + Mux(ident, 0, cc)),
                                 getattr(self, f"rd_addr_d{e}").eq(db + Mux(ident, 0, cd))]
                    chans_c.append(cc)
                    chans_d.append(cd)
                c = ca          # identity: the PE each set's event goes to
                chans_b.append(cb)
            else:
                m.d.comb += getattr(self, f"rd_addr{e}").eq(db + Mux(ident, 0, c))
            chans.append(c)
            shifts.append(sh)
        if PH:
            va = [Mux(ph, v_lo[e] & active, ev_valid[e]) for e in range(E)]
            vb = [Mux(ph, v_hi[e] & active, ev_valid[e]) for e in range(E)]
        else:
            va = vb = ev_valid
        if QD:
            vc = [Mux(qd, v_c[e] & active, va[e]) for e in range(E)]
            vd = [Mux(qd, v_d[e] & active, vb[e]) for e in range(E)]

        # ---- tap geometry of the current position (S0)
        vy, oyl, vx, oxl = [], [], [], []
        rp, xp = Signal(signed(12)), Signal(signed(12))
        m.d.comb += [rp.eq(r + cur["pad"]), xp.eq(x + cur["pad"])]
        for k in range(3):
            ny = Signal(signed(12), name=f"ny{k}")
            nx = Signal(signed(12), name=f"nx{k}")
            # phase quads: r counts row pairs; tap row k reads row 2r + (k != 1)
            ryk = Mux(qd, (r << 1) + int(k != 1) + cur["pad"], rp) if QD else rp
            # phase pairs: x counts column pairs; tap column k reads column 2x + (k != 1)
            # (stride-2 3x3 convs) or 2x + 1 (one-tap groups, stride 1: kx = 1 -> 2x,
            # kx = 0 -> 2x + 1)
            if PH:
                xs = (x << 1) + Mux(cur["stride"] == 2, int(k != 1), 1) + cur["pad"]
                xk = Mux(ph, xs, xp)
            else:
                xk = xp
            m.d.comb += [ny.eq(ryk - k), nx.eq(xk - k)]
            oy = Signal(12, name=f"oy{k}")
            ox = Signal(12, name=f"ox{k}")
            m.d.comb += [oy.eq(Mux(cur["stride"] == 2, ny >> 1, ny)),
                         ox.eq(Mux(cur["stride"] == 2, nx >> 1, nx))]
            a = Signal(name=f"vy{k}")
            b = Signal(name=f"vx{k}")
            m.d.comb += [
                a.eq(Mux(dense, k == 0, (k < cur["kh"]) & (ny >= 0) &
                         ((cur["stride"] == 1) | ~ny[0]) & (oy < self.h_out))),
                b.eq(Mux(dense, k == 0, (k < cur["kw"]) & (nx >= 0) &
                         ((cur["stride"] == 1) | ~nx[0]) & (ox < self.w_out)))]
            vy.append(a)
            vx.append(b)
            # psum slot = global output row (t*H_out + oy) mod psum_slots: 4 rows are live
            # when the drain of row oy overlaps the dispatch of row oy+1 (it writes
            # oy+1..oy+3); more slots let the dispatcher run further ahead of the drain
            NS = self.cfg.psum_slots
            sb = (NS - 1).bit_length()
            oym = Signal(sb, name=f"oym{k}")
            if NS & (NS - 1) == 0:
                m.d.comb += oym.eq(Mux(dense, 0, oy[:sb]) + self.rowbase)
            else:   # a valid row is < max_height: its mod is a small table, then one wrap
                om = Signal(sb, name=f"oymod{k}")
                s = Signal(sb + 1, name=f"oysum{k}")
                m.d.comb += [om.eq(Mux(dense, 0, oy[:self.cfg.max_height.bit_length()] % NS)),
                             s.eq(om + self.rowbase),
                             oym.eq(Mux(s >= NS, s - NS, s))]
            oyl.append(oym)
            oxl.append(Mux(dense, 0, ox))
        NS = self.cfg.psum_slots
        kysel = Signal(2 * NS)
        rowok = Signal(NS)
        for jj in range(NS):
            for k in reversed(range(3)):
                with m.If(vy[k] & (oyl[k] == jj)):
                    m.d.comb += [kysel[2 * jj:2 * jj + 2].eq(k), rowok[jj].eq(1)]
        bv = Signal(3 * NS)
        for jj in range(NS):
            for kx in range(3):
                m.d.comb += bv[jj * 3 + kx].eq(rowok[jj] & vx[kx])
        nvy = _popcount(m, list(vy), "nvy")

        # ---- S1 registers
        if QD:
            m.d.sync += self.quad.eq(qd)
        if SG:   # one group per cycle: its events share the sign (a sign pair: its -1 word's
            # events once its +1 word has none left)
            m.d.sync += self.neg.eq(cur["neg"] | (sp & ~v_lo[0]))
        m.d.sync += [self.acc_en.eq(Cat(*va, *vb, *(vc + vd if QD else [])).any() if PH
                                    else Cat(*ev_valid).any()),
                     self.ident.eq(ident),
                     self.bank_valid.eq(bv), self.ky_sel.eq(kysel),
                     self.ox0.eq(oxl[0]), self.ox1.eq(oxl[1]), self.ox2.eq(oxl[2])]
        for e in range(E):
            m.d.sync += [getattr(self, f"ev_valid{e}").eq(va[e]),
                         getattr(self, f"ev_shift{e}").eq(shifts[e]),
                         getattr(self, f"ev_sel{e}").eq(chans[e])]
            if PH:
                m.d.sync += [getattr(self, f"ev_valid_b{e}").eq(vb[e]),
                             getattr(self, f"ev_sel_b{e}").eq(chans_b[e])]
            if QD:
                m.d.sync += [getattr(self, f"ev_valid_c{e}").eq(vc[e]),
                             getattr(self, f"ev_sel_c{e}").eq(chans_c[e]),
                             getattr(self, f"ev_valid_d{e}").eq(vd[e]),
                             getattr(self, f"ev_sel_d{e}").eq(chans_d[e])]
        # SOP count: events and taps registered at S1, multiplied at S2 (off the scan path;
        # the counters are read after the launch, many cycles later)
        mult1 = Signal(8)
        m.d.sync += mult1.eq(Mux(ident, 1, self.tile_ch))
        ops = Signal(16)
        if PH:
            # each event set reaches its own tap columns: nvy * (n_a * vx1 + n_b * (vx0 + vx2)),
            # which is nev * ntaps when both sets are the same events
            nva, nvb = _popcount(m, va, "nev_a"), _popcount(m, vb, "nev_b")
            ta, tb = Signal(2), Signal(3)
            m.d.comb += [ta.eq(nvy * vx[1]), tb.eq(nvy * (vx[0] + vx[2]))]
            part = Signal(8)
            if QD:
                # a quad's sets reach the taps of their row parity too: (vy1 | vy0 + vy2) x
                # (vx1 | vx0 + vx2)
                nvc, nvd = _popcount(m, vc, "nev_c"), _popcount(m, vd, "nev_d")
                ry0, ry1 = Signal(2), Signal(2)
                cx0, cx1 = Signal(2), Signal(2)
                m.d.comb += [ry0.eq(vy[1]), ry1.eq(vy[0] + vy[2]),
                             cx0.eq(vx[1]), cx1.eq(vx[0] + vx[2])]
                m.d.sync += part.eq(Mux(qd, nva * ry0 * cx0 + nvb * ry0 * cx1
                                        + nvc * ry1 * cx0 + nvd * ry1 * cx1,
                                        nva * ta + nvb * tb))
            else:
                m.d.sync += part.eq(nva * ta + nvb * tb)
            m.d.comb += ops.eq(part * mult1)
        else:
            ntaps = Signal(4)
            m.d.comb += ntaps.eq(nvy * _popcount(m, list(vx), "nvx"))
            nev = _popcount(m, ev_valid, "nev")
            nev1, ntaps1 = Signal.like(nev), Signal.like(ntaps)
            m.d.sync += [nev1.eq(nev), ntaps1.eq(ntaps)]
            m.d.comb += ops.eq(nev1 * ntaps1 * mult1)
        m.d.sync += [self.sops_inc.eq(Mux(image, 0, ops)), self.img_inc.eq(Mux(image, ops, 0))]

        # ---- advance to the next word
        has_next = Signal()
        nxt_group = Signal(G)
        for g in range(G):
            m.d.comb += nxt_group[g].eq(nonempty[g] & (cg < g))
        m.d.comb += self.row_last.eq(last & ~has_next)
        end_i = i == cur["pool"] - 1
        end_x = x == cur["wp"] - 1
        end_r = r == rend - 1
        m.d.comb += has_next.eq(~(run_end & end_i & end_x & end_r) | nxt_group.any())
        with m.If(active):
            with m.If(~last):
                m.d.sync += [rem.eq(rem_next), left.eq(count - E), fresh.eq(0)]
                if QD:
                    m.d.sync += [rem_c.eq(rest_c[E - 1]), rem_d.eq(rest_d[E - 1]),
                                 left_c.eq(Mux(cnt_c > E, cnt_c - E, 0)),
                                 left_d.eq(Mux(cnt_d > E, cnt_d - E, 0))]
                if HOLD:
                    m.d.sync += [rem.eq(rem_q), left.eq(a_cnt - E)]
                if PH:
                    with m.If(ph):
                        m.d.sync += [left.eq(Mux(cnt_lo > E, cnt_lo - E, 0)),
                                     left_b.eq(Mux(cnt_hi > E, cnt_hi - E, 0))]
                if SG:   # a sign pair: this cycle took E of the +1 word's, else of the -1 word's
                    with m.If(sp):
                        m.d.sync += [left.eq(Mux(cnt_lo > E, cnt_lo - E, 0)),
                                     left_b.eq(Mux(cnt_lo != 0, cnt_hi, cnt_hi - E))]
            with m.Else():
                # the next unit starts a run of this group (overridden below when it
                # continues this run or belongs to the next group)
                m.d.sync += [fresh.eq(1), pair_r.eq(run_pairs(cg))]
                with m.If(~run_end):
                    # next unit of the run: after the pair's second word (or the word)
                    wn, jn = Signal(6, name="s0_w_next"), Signal(4, name="s0_j_next")
                    hi_end_w = wh == cur["nw"] - 1
                    m.d.comb += [wn.eq(Mux(pair, Mux(hi_end_w, 0, wh + 1), wh)),
                                 jn.eq(Mux(pair, Mux(hi_end_w, jh + 1, jh), jh))]
                    na = addr + Mux(pair, 2, 1)
                    # the next unit pairs unless its first word is the run's last
                    m.d.sync += [w.eq(wn), j.eq(jn), addr.eq(na), rw.eq(rw - 1 - pair),
                                 pair_r.eq(~image & Mux(pair, rw != 2, rw != 1))]
                    m.d.comb += [sb_addr.eq(na), sb_en.eq(1)]
                    if QD:   # a quad's four words: the next quad of the run
                        with m.If(qd):
                            nq = addr + 4
                            m.d.sync += [w.eq(w + 4), j.eq(j), addr.eq(nq), rw.eq(rw - 4),
                                         pair_r.eq(1)]
                            m.d.comb += sb_addr.eq(nq)
                with m.Elif(~end_i):
                    na = iaddr + cur["srow_stride"]
                    m.d.sync += [w.eq(0), j.eq(0), rw.eq(runlen[cg]), i.eq(i + 1), iaddr.eq(na),
                                 addr.eq(na)]
                    m.d.comb += [sb_addr.eq(na), sb_en.eq(1)]
                with m.Elif(~end_x):
                    na = xaddr + cur["pstride"]
                    m.d.sync += [w.eq(0), j.eq(0), rw.eq(runlen[cg]), i.eq(0), x.eq(x + 1),
                                 xaddr.eq(na), iaddr.eq(na), addr.eq(na),
                                 db.eq(db + cur["pos_rstride"])]
                    m.d.comb += [sb_addr.eq(na), sb_en.eq(1)]
                with m.Elif(~end_r):
                    na = raddr + cur["prow_stride"]
                    m.d.sync += [w.eq(0), j.eq(0), rw.eq(runlen[cg]), i.eq(0), x.eq(0),
                                 r.eq(r + 1), raddr.eq(na), xaddr.eq(na), iaddr.eq(na), addr.eq(na),
                                 db.eq(db + cur["pos_rstride"])]
                    m.d.comb += [sb_addr.eq(na), sb_en.eq(1)]
                with m.Else():
                    # group done: save its state, go to the next scheduled group
                    m.d.sync += [rowaddr[cg].eq(raddr + cur["prow_stride"]), rlo[cg].eq(r + 1),
                                 dbase[cg].eq(db + cur["pos_rstride"])]
                    with m.If(nxt_group.any()):
                        g1 = first_of(nxt_group)
                        load_group(g1, rend_r)
                        m.d.comb += [sb_addr.eq(rowaddr[g1]), sb_en.eq(1)]
                    with m.Else():
                        m.d.sync += [active.eq(0), fresh.eq(0)]
        if HOLD:   # a held event lives one cycle: the next unit's first issues it
            with m.If(active):
                m.d.sync += [hvalid.eq(last & holding & (a_cnt == 2 * E - 1)),
                             hrem.eq(rem_q), hw.eq(w), hwh.eq(wh)]
        if self.cfg.row_prefetch:   # (without it a row never starts in a dispatch cycle)
            # a row starts while the scan is active only in the last cycle of the row
            # before it, whose group is then finishing: the register `active` selects the
            # forwarded state, off the end-of-unit logic (`last`), which would otherwise
            # lie on the path to the spike buffer's address (6 LUT levels, Yosys)
            m.d.comb += gdone.eq(active)
        rowaddr_f = Array(Mux(gdone & (cg == g), raddr + cur["prow_stride"], rowaddr[g])
                          for g in range(G))
        dbase_f = Array(Mux(gdone & (cg == g), db + cur["pos_rstride"], dbase[g])
                        for g in range(G))

        # ---- row start (after the scan: in a prefetch cycle its loads win over the
        # finished row's last-unit updates)
        with m.If(self.row_start):
            m.d.sync += nonempty.eq(ne)
            # (a quad group's rows are row pairs: one per output row)
            m.d.sync += rel.eq(rel + Mux((lastg["stride"] == 2) & ~lastg["quad"],
                                         lastg["prow_stride"] << 1, lastg["prow_stride"]))
            for g in range(G):
                adv = getattr(self, f"g{g}_stride")
                if QD:
                    adv = Mux(getattr(self, f"g{g}_quad"), 1, adv)
                m.d.sync += [rhi[g].eq(rhi[g] + adv), rend_r[g].eq(rends[g])]
            with m.If(ne.any()):
                g0 = first_of(ne)
                load_group(g0, rends, rowaddr_f, rlo_f, dbase_f)
                m.d.comb += [sb_addr.eq(rowaddr_f[g0]), sb_en.eq(1)]
                m.d.sync += [active.eq(1), fresh.eq(1)]
        return m

"""SIA top level: packet loaders, controller FSM (timesteps x output rows x
{row prelude or prefetch, dispatch}, drain beside it), PE array, aggregation core, output streamer,
AXI4-Lite registers. Ports: clk/rst, s_axil_* (AXI4-Lite), s_axis_* (tile packet in),
m_axis_* (output packet), irq_done.
"""

from amaranth import C, Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sia import SiaError
from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.hw.regmap import (GROUP_BEATS, GROUP_LAYOUT, LAYER_BEATS, LAYER_LAYOUT, MAX_GROUPS,
                           HDR_MAGIC)
from sia.hw.rtl.aggregation import Aggregation
from sia.hw.rtl.axil import AxiLiteRegs, axil_ports
from sia.hw.rtl.dispatch import Dispatch, count_tree
from sia.hw.rtl.pe import PE, event_sets
from sia.hw.rtl.stream import Gearbox


def check_buildable(cfg: SIAConfig) -> SIAConfig:
    """Refuse, before elaboration, a parameter set this RTL cannot build."""
    problems = []
    if cfg.stream_bits != 64:
        problems.append(f"stream_bits={cfg.stream_bits}: the RTL streams 64-bit beats only")
    if cfg.pes > 64 or cfg.pes < 2:
        problems.append(f"pes={cfg.pes}: the RTL builds 2..64 PEs (one output beat per position)")
    if 9 * cfg.weight_bits < 64:
        problems.append(f"weight_bits={cfg.weight_bits}: the weight loader needs 9*weight_bits >= 64")
    if 3 * cfg.v_bits < 64:
        problems.append(f"v_bits={cfg.v_bits}: the neuron-parameter loader needs 3*v_bits >= 64")
    if cfg.acc_bits > cfg.v_bits:
        problems.append(f"acc_bits={cfg.acc_bits} > v_bits={cfg.v_bits}")
    if cfg.max_width > 511 or cfg.max_height > 511 or cfg.max_timesteps > 511:
        problems.append("max_width/max_height/max_timesteps must be < 512 (9-bit descriptor fields)")
    if cfg.max_channels_in > 65535:
        problems.append("max_channels_in must be < 65536")
    if problems:
        raise SiaError("RTL cannot build this parameter set: " + "; ".join(problems))
    return cfg


def top_ports():
    sig = axil_ports()
    sig.update({"s_axis_tdata": In(64), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
                "s_axis_tlast": In(1),
                "m_axis_tdata": Out(64), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
                "m_axis_tlast": Out(1), "irq_done": Out(1)})
    return sig


class SIATop(wiring.Component):
    def __init__(self, cfg: SIAConfig):
        self.cfg = check_buildable(cfg)
        super().__init__(top_ports())

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        P, E, V = cfg.pes, cfg.events_per_cycle, cfg.v_bits
        in_depth = regmap.buffer_beats(cfg)[0]
        NS = cfg.psum_slots
        slot_bits = (NS - 1).bit_length()   # psum slot = global row mod slots
        pow2 = NS & (NS - 1) == 0           # else the slot counters wrap at NS
        NHDR = LAYER_BEATS + GROUP_BEATS * MAX_GROUPS
        nbeats_neuron = -(-P * 3 * V // 64)

        m.submodules.regs = regs = AxiLiteRegs(cfg)
        for name in axil_ports():
            a, b = getattr(self, name), getattr(regs, name)
            if self.signature.members[name].flow == In:
                m.d.comb += b.eq(a)
            else:
                m.d.comb += a.eq(b)

        # ---- header registers and decoded fields
        hdr = Array(Signal(64, name=f"hdr{k}") for k in range(NHDR))

        def field(layout, name, base=0):
            b, lsb, bits = layout[name]
            return hdr[base + b][lsb:lsb + bits]
        L = {n: field(LAYER_LAYOUT, n) for n in LAYER_LAYOUT}
        T = L["timesteps"]          # steps of the launch (packed: images x period)
        period = L["period"]        # steps per image: membranes restart from v_init

        # ---- blocks
        m.submodules.disp = disp = Dispatch(cfg, in_depth)
        m.submodules.agg = agg = Aggregation(cfg)
        m.submodules.gbw = gbw = Gearbox(9 * cfg.weight_bits)
        m.submodules.gbn = gbn = Gearbox(3 * V)
        pes = []
        for p in range(P):
            pe = PE(cfg, p)
            m.submodules[f"pe{p}"] = pe
            pes.append(pe)
        for g in range(MAX_GROUPS):
            for n in GROUP_LAYOUT:
                m.d.comb += getattr(disp, f"g{g}_{n}").eq(
                    field(GROUP_LAYOUT, n, LAYER_BEATS + GROUP_BEATS * g))
        m.d.comb += [disp.ngroups.eq(L["ngroups"]), disp.h_out.eq(L["h_out"]),
                     disp.w_out.eq(L["w_out"]), disp.tile_ch.eq(L["tile_ch"]),
                     disp.image.eq(L["image"])]

        # ---- buffers
        # input spike buffer: in NB address banks (address mod NB), so the dispatcher
        # reads NB consecutive words (a, a + 1, ...) in one cycle: 2 (word pairs), or 4
        # on phase-quad builds (a quad's four words); the loader writes one beat per
        # cycle, which narrow streams split into up to 4 words (so they need four banks)
        NB = 4 if cfg.phase_quads or cfg.narrow_stream else 2
        lb = NB.bit_length() - 1
        depth = -(-in_depth // NB)
        # (each word with its popcount in the block RAM's 8 spare bits: the dispatcher
        # knows how many events a word holds without counting them)
        sb_wen, sb_waddr, sb_wdata = Signal(), Signal(range(in_depth)), Signal(64)
        sb_wcount = Signal(7)
        m.d.comb += sb_wcount.eq(count_tree(self.s_axis_tdata))
        # narrow-stream builds: the words a beat writes from address sb_waddr on, k =
        # 2^npos fields of 64 / k bits each (`regmap.narrow_pack`), the first sb_wn of
        # them (a segment's last beat may hold fewer); other builds write the beat
        sb_wn = Signal(3)
        if cfg.narrow_stream:
            npos_w = Signal(2)       # npos of the group the current beat belongs to
            td = self.s_axis_tdata
            q = [count_tree(td[16 * i:16 * i + 16]) for i in range(4)]
            in_words, in_counts = [], []
            for i in range(4):
                wi, ci = Signal(64, name=f"sb_in_word{i}"), Signal(7, name=f"sb_in_count{i}")
                with m.Switch(npos_w):
                    with m.Case(2):
                        m.d.comb += [wi.eq(td[16 * i:16 * i + 16]), ci.eq(q[i])]
                    with m.Case(1):
                        if i < 2:
                            m.d.comb += [wi.eq(td[32 * i:32 * i + 32]),
                                         ci.eq(q[2 * i] + q[2 * i + 1])]
                    with m.Default():
                        if i == 0:
                            m.d.comb += [wi.eq(sb_wdata), ci.eq(sb_wcount)]
                in_words.append(wi)
                in_counts.append(ci)
            in_words, in_counts = Array(in_words), Array(in_counts)

        def bank_offset(a, b):   # which of the NB words from address a lies in bank b
            return (b - a[:lb])[:lb]

        def bank_row(a, b):      # bank b's row holding that word
            return (a + bank_offset(a, b))[lb:]

        ra = disp.sb_addr
        rot = Signal(lb)       # the first word's bank, registered with the read
        m.d.sync += rot.eq(Mux(disp.sb_en, ra[:lb], rot))
        bank_out = []
        for b in range(NB):
            mem = Memory(shape=72, depth=depth, init=[])
            m.submodules[f"sbuf{b}"] = mem
            wr, rd = mem.write_port(), mem.read_port()
            # bank b holds word a + ((b - a) mod NB) of the NB read (written) from a
            if cfg.narrow_stream:   # word a + wi of the beat lands in bank b
                wi = Signal(lb, name=f"sb_wsel{b}")
                m.d.comb += wi.eq(bank_offset(sb_waddr, b))
                m.d.comb += [wr.addr.eq((sb_waddr + wi)[lb:]),
                             wr.data.eq(Cat(in_words[wi], in_counts[wi])),
                             wr.en.eq(sb_wen & (wi < sb_wn))]
            else:                   # one word per beat, at address sb_waddr
                m.d.comb += [wr.addr.eq(sb_waddr[lb:]), wr.data.eq(Cat(sb_wdata, sb_wcount)),
                             wr.en.eq(sb_wen & (sb_waddr[:lb] == b))]
            m.d.comb += [rd.addr.eq(bank_row(ra, b)), rd.en.eq(disp.sb_en)]
            bank_out.append(rd.data)
        bank_out = Array(bank_out)
        reads = []
        for k in range(NB):    # word a + k of the read: bank (rot + k) mod NB
            wk = Signal(72, name=f"sb_word{k}")
            m.d.comb += wk.eq(bank_out[(rot + k)[:lb]])
            reads.append(wk)
        words = ["sb_data", "sb_data_hi", "sb_data_c", "sb_data_d"]
        counts = ["sb_count", "sb_count_hi", "sb_count_c", "sb_count_d"]
        for k in range(4 if cfg.phase_quads else 2):   # the words the dispatcher reads
            m.d.comb += [getattr(disp, words[k]).eq(reads[k][:64]),
                         getattr(disp, counts[k]).eq(reads[k][64:71])]
        # the output buffer is a ring (`regmap.out_ring_words`): word a at a mod ring
        ring = regmap.out_ring_words(cfg)
        rbits = (ring - 1).bit_length()
        m.submodules.obuf = obuf = Memory(shape=64, depth=ring, init=[])
        ob_w = obuf.write_port()
        ob_r = obuf.read_port(transparent_for=(ob_w,))
        m.d.comb += [ob_w.en.eq(agg.spk_we), ob_w.addr.eq(agg.spk_addr[:rbits]),
                     ob_w.data.eq(agg.spk_data)]
        if cfg.identity_drain:
            # identity in the drain: the low P bits of every input beat, at the beat's
            # address, so the aggregation core reads the drained position's shortcut
            # word (group 0's map, the tile's slice) while the dispatcher reads the
            # spike buffer's two ports
            # (narrow streams: in NB banks like the spike buffer, written k words a beat;
            # signed builds: in NB banks too, so that a drained sign pair's two words,
            # +1 and -1 of one position (interface 1.13), are read in one cycle)
            SB = NB if cfg.narrow_stream or cfg.signed_count_bits else 1
            sc_raddr = Signal(range(in_depth))
            sc_sel = Signal(range(SB))
            m.d.sync += sc_sel.eq(sc_raddr[:lb] if SB > 1 else 0)
            sc_outs = []
            for b in range(SB):
                mem = Memory(shape=P, depth=-(-in_depth // SB), init=[])
                m.submodules["scbuf" if SB == 1 else f"scbuf{b}"] = mem
                sw, sr = mem.write_port(), mem.read_port()
                if SB == 1:
                    m.d.comb += [sw.en.eq(sb_wen), sw.addr.eq(sb_waddr),
                                 sw.data.eq(self.s_axis_tdata[:P]), sr.addr.eq(sc_raddr)]
                elif not cfg.narrow_stream:     # one word per beat, at address sb_waddr
                    m.d.comb += [sw.en.eq(sb_wen & (sb_waddr[:lb] == b)),
                                 sw.addr.eq(sb_waddr[lb:]), sw.data.eq(self.s_axis_tdata[:P]),
                                 sr.addr.eq(bank_row(sc_raddr, b))]
                else:
                    wi = Signal(lb, name=f"sc_wsel{b}")
                    m.d.comb += [wi.eq(bank_offset(sb_waddr, b)),
                                 sw.en.eq(sb_wen & (wi < sb_wn)),
                                 sw.addr.eq((sb_waddr + wi)[lb:]), sw.data.eq(in_words[wi][:P]),
                                 sr.addr.eq(bank_row(sc_raddr, b))]
                sc_outs.append(sr)
            sc_data = Signal(P)
            m.d.comb += sc_data.eq(Array(r.data for r in sc_outs)[sc_sel])
            if cfg.signed_count_bits:   # the next word: a drained sign pair's -1 word
                sc_data_hi = Signal(P)
                m.d.comb += sc_data_hi.eq(Array(r.data for r in sc_outs)[(sc_sel + 1)[:lb]])
            sc_en = Signal()
            for r in sc_outs:
                m.d.comb += r.en.eq(sc_en)

        # ---- PE array wiring (shared control)
        wp_cnt = Signal(range(P))
        wrow_cnt = Signal(range(cfg.max_channels_in))
        drain_en, drain_clear = Signal(), Signal()
        dg = Signal(16)        # rows fully drained (global row = t*H_out + oy)
        # the drained row's psum slot, dg mod psum_slots (a counter beside dg unless a power of two)
        dslot = dg[:slot_bits] if pow2 else Signal(range(NS))
        dslot_zero = [] if pow2 else [dslot.eq(0)]
        ox = Signal(9)
        # narrow weight streams (wnarrow): one memory word of the gearbox holds the words
        # of PEs p and p+1 at weight_bits / 2 per tap; their taps are sign-extended here
        # (two shared buses, wiring and one 2:1 mux per bit) and both PEs write at once
        wb, narrow = cfg.weight_bits, L["wnarrow"]
        hb = wb // 2
        w_even, w_odd = Signal(9 * wb), Signal(9 * wb)
        if regmap.pairs_pes(cfg):
            lo = [Signal(signed(wb), name=f"wlo{k}") for k in range(9)]
            hi = [Signal(signed(wb), name=f"whi{k}") for k in range(9)]
            for k in range(9):
                m.d.comb += [lo[k].eq(gbw.o_data[k * hb:(k + 1) * hb].as_signed()),
                             hi[k].eq(gbw.o_data[9 * hb + k * hb:9 * hb + (k + 1) * hb].as_signed())]
            m.d.comb += [w_even.eq(Mux(narrow, Cat(*lo), gbw.o_data)),
                         w_odd.eq(Mux(narrow, Cat(*hi), gbw.o_data))]
        else:
            m.d.comb += [w_even.eq(gbw.o_data), w_odd.eq(gbw.o_data)]
        psums = []
        for p, pe in enumerate(pes):
            sel = (wp_cnt == p) | (narrow & (wp_cnt == p - 1)) if p % 2 else (wp_cnt == p)
            m.d.comb += [pe.w_we.eq(gbw.o_valid & sel), pe.w_addr.eq(wrow_cnt),
                         pe.w_data.eq(w_odd if p % 2 else w_even),
                         pe.ident.eq(disp.ident), pe.acc_en.eq(disp.acc_en),
                         pe.bank_valid.eq(disp.bank_valid), pe.ky_sel.eq(disp.ky_sel),
                         pe.ox0.eq(disp.ox0), pe.ox1.eq(disp.ox1), pe.ox2.eq(disp.ox2),
                         pe.drain_en.eq(drain_en), pe.drain_row.eq(dslot),
                         pe.drain_addr.eq(ox), pe.drain_clear.eq(drain_clear)]
            if cfg.phase_quads:
                m.d.comb += pe.quad.eq(disp.quad)
            if cfg.signed_count_bits:
                m.d.comb += pe.neg.eq(disp.neg)
            for e in range(E):
                names = ["rd_addr", "ev_valid", "ev_shift", "ev_sel"]
                for tag in event_sets(cfg)[1:]:   # the other event sets (phase pairs, quads)
                    names += [f"rd_addr{tag}", f"ev_valid{tag}", f"ev_sel{tag}"]
                for n in names:
                    m.d.comb += getattr(pe, f"{n}{e}").eq(getattr(disp, f"{n}{e}"))
            psums.append(pe.psum)
        m.d.comb += agg.psum.eq(Cat(*psums))
        if cfg.identity_drain:
            # each lane's identity weight: tap 0 of weight row 0 (the drain group's row)
            # as it is written (narrow streams included), kept with resident weights
            wid = [Signal(wb, name=f"wid{p}") for p in range(P)]
            for p, pe in enumerate(pes):
                with m.If(pe.w_we & (wrow_cnt == 0)):
                    m.d.sync += wid[p].eq(pe.w_data[:wb])
            m.d.comb += [agg.id_w.eq(Cat(*wid)),
                         agg.id_on.eq(field(GROUP_LAYOUT, "drain", LAYER_BEATS))]
        with m.If(gbw.o_valid):
            with m.If((wp_cnt == P - 1) | (narrow & (wp_cnt == P - 2))):
                m.d.sync += [wp_cnt.eq(0), wrow_cnt.eq(wrow_cnt + 1)]
            with m.Else():
                m.d.sync += wp_cnt.eq(wp_cnt + 1 + narrow)
        n_lane = Signal(range(P))
        m.d.comb += [agg.n_we.eq(gbn.o_valid), agg.n_lane.eq(n_lane), agg.n_data.eq(gbn.o_data),
                     agg.integ.eq(L["kind"])]
        if cfg.signed_count_bits:
            m.d.comb += agg.signed.eq(L["signed"])
        with m.If(gbn.o_valid):
            m.d.sync += n_lane.eq(n_lane + 1)

        # ---- controller
        bcnt = Signal(24)
        t, ti = Signal(9), Signal(9)
        tp = Signal(9)   # signed builds: the dispatched step within its image (packed launches)
        oy = Signal(9)
        ocnt = Signal(24)      # output words drained so far (= output buffer write address)
        cycles, sops, iops = Signal(64), Signal(64), Signal(64)
        busy, done, error = Signal(), Signal(), Signal()
        resident = Signal()   # weights + neuron params of a completed load are in the PEs
        bad = Signal()        # the descriptor does not fit this build (registered in DECODE)
        sbeats_m1, wbeats_m1 = Signal(24), Signal(24)   # last-beat indices (DECODE)
        ecode = Signal(8)
        image = L["image"]
        # image if-layers run all T steps on one row: their membranes are one row's words
        row_local = Signal()
        m.d.comb += row_local.eq(image & ~L["kind"])
        beat = self.s_axis_tvalid & self.s_axis_tready
        m.d.comb += [regs.busy.eq(busy), regs.done.eq(done), regs.error.eq(error),
                     regs.error_code.eq(ecode), regs.cycles.eq(cycles), regs.sops.eq(sops),
                     regs.image_ops.eq(iops), self.irq_done.eq(done)]
        m.d.comb += [gbw.i_data.eq(self.s_axis_tdata), gbn.i_data.eq(self.s_axis_tdata)]
        # buffer words in (the rows' input condition compares them with row_need): one
        # per beat, or on narrow-stream builds k = 2^npos per beat of a narrow group,
        # each (step, group) segment starting on a new beat
        have = bcnt
        if cfg.narrow_stream:
            wcnt = Signal(24)
            gi = Signal(range(MAX_GROUPS))    # the group of the current segment
            seg_left, seg_fresh = Signal(24), Signal()
            gfield = [{n: field(GROUP_LAYOUT, n, LAYER_BEATS + GROUP_BEATS * g)
                       for n in ("base", "tstride", "npos")} for g in range(MAX_GROUPS)]
            seg_words = Array(
                Mux(L["ngroups"] == g + 1, gfield[0]["tstride"], gfield[g + 1]["base"]
                    if g + 1 < MAX_GROUPS else gfield[0]["tstride"]) - gfield[g]["base"]
                for g in range(MAX_GROUPS))
            mcur, kk = Signal(24), Signal(3)
            m.d.comb += [mcur.eq(Mux(seg_fresh, seg_words[gi], seg_left)),
                         npos_w.eq(Mux(image, 0, Array(f["npos"] for f in gfield)[gi])),
                         kk.eq(1 << npos_w),
                         # (image layers: one word per beat, no segments)
                         sb_wn.eq(Mux(image, 1, Mux(mcur < kk, mcur, kk))), sb_waddr.eq(wcnt)]
            have = wcnt
        else:
            m.d.comb += sb_waddr.eq(bcnt)
        if timing.plane_issue(E):
            # plane issue: image words are stored plane-major (bit b*8+c = bit b of pixel
            # c), transposed on the way in rather than in the dispatcher's scan loop
            tdata = self.s_axis_tdata
            m.d.comb += sb_wdata.eq(Mux(image, Cat(*[tdata[c * 8 + b] for b in range(8)
                                                      for c in range(8)]), tdata))
        else:
            m.d.comb += sb_wdata.eq(self.s_axis_tdata)
        id_inc = Signal(8)     # identity in the drain: the SOPs of a drained position
        with m.If(busy):
            m.d.sync += [cycles.eq(cycles + 1), sops.eq(sops + disp.sops_inc + id_inc),
                         iops.eq(iops + disp.img_inc)]
        # output: if-layers stream out while computing (the reader follows the drain's
        # writes: words are written in packet order, so word a is final once written);
        # integrators unload their final membranes in UNLOAD after the last timestep
        words_left = Signal(24)
        rd_addr = Signal(24)
        avail = Signal(24)     # output-buffer words written (if-layers)
        ov = Signal()
        bidx = Signal(range(max(2, -(-P * V // 64))))
        per = Mux(L["kind"], -(-P * V // 64), 1)
        bidx_last = bidx == per - 1
        un_word = Signal(-(-P * V // 64) * 64)
        m.d.comb += un_word.eq(agg.un_data)
        all_drained = Signal()  # the last row's last drain step is done
        all_written = Signal()  # ... and its output word is in the output buffer
        out_last = Signal()     # the word on m_axis is the packet's last (if-layers)
        streaming = busy & ~L["kind"]
        s_load = Signal()
        s_done = Signal()
        m.d.comb += [out_last.eq(all_written & (rd_addr == avail)),
                     s_load.eq(streaming & (~ov | self.m_axis_tready) & (rd_addr < avail)),
                     s_done.eq(streaming & ov & self.m_axis_tready & out_last)]
        with m.If(agg.spk_we & all_drained):
            m.d.sync += all_written.eq(1)
        with m.If(agg.spk_we):
            m.d.sync += avail.eq(avail + 1)
        # (a read port's en defaults to 1: drive it, so the held output word stays put)
        m.d.comb += [ob_r.addr.eq(rd_addr[:rbits]), ob_r.en.eq(s_load)]
        with m.If(s_load):
            m.d.sync += [rd_addr.eq(rd_addr + 1), ov.eq(1)]
        with m.Elif(streaming & self.m_axis_tready & ov):
            m.d.sync += ov.eq(0)
        m.d.comb += [self.m_axis_tvalid.eq(ov),
                     self.m_axis_tdata.eq(Mux(L["kind"], un_word.word_select(bidx, 64), ob_r.data)),
                     self.m_axis_tlast.eq(ov & Mux(L["kind"], bidx_last & (words_left == 0),
                                                   out_last))]
        nhdr = Signal(8)
        m.d.comb += nhdr.eq(LAYER_BEATS + GROUP_BEATS * L["ngroups"])

        # input maps stream in while computing: the loader runs beside the controller and
        # each output row waits (ROW_PRE) until the beats of the source rows it scans are
        # written (the dispatcher's row_need; the maps are interleaved by timestep)
        sl_active = Signal()
        m.d.comb += disp.step_beats.eq(Mux(image, L["sbeats"],
                                           field(GROUP_LAYOUT, "tstride", LAYER_BEATS)))
        # ---- aggregation side: drains row dg as soon as the dispatcher has handed it over
        # (gd > dg), one output position per cycle, concurrently with the dispatch of
        # the next row; output order = drain order: (t, oy, ox), image layers (oy, t, ox)
        gd = Signal(16)        # rows handed over by the dispatcher
        rowbase = Signal(slot_bits)
        hmod = Signal(slot_bits)   # H_out mod psum_slots: rowbase's step per timestep
        m.d.comb += hmod.eq(L["h_out"][:slot_bits] if pow2 else L["h_out"] % NS)
        t_d, oy_d, row_pos_d = Signal(9), Signal(9), Signal(17)
        tp_d = Signal(9)       # the drained row's step within its image (packed launches)
        drain_step = Signal()
        drain_done_next = Signal()   # all rows drained after this cycle
        # an if-layer's drain pauses while the output ring is full: words rd_addr ..
        # ocnt - 1 are drained and not yet taken by the output stream (never, unless
        # TREADY holds the stream back for ~ring cycles)
        ring_room = Signal()
        m.d.comb += [ring_room.eq(L["kind"] | ((ocnt - rd_addr)[:24] < ring)),
                     drain_step.eq(busy & (gd > dg) & ring_room)]
        tt = Mux(image, ti, t_d)   # membrane bank parity: the launch's step
        row_end = (ox == L["w_out"] - 1) & (~image | (ti == T - 1))
        last_row = (oy_d == L["h_out"] - 1) & (image | (t_d == T - 1))
        m.d.comb += drain_done_next.eq(all_drained | (drain_step & row_end & last_row))
        with m.If(drain_step & row_end & last_row):
            m.d.sync += all_drained.eq(1)
        if cfg.identity_drain:
            # the shortcut word of the drained position: group 0 (base 0), step t_d
            # (tstride apart), row oy_d (row_pos_d = oy_d * W), column ox; read at D0
            # beside the membrane, so it reaches the aggregation core's D1 with it;
            # its set bits count as SOPs one cycle later (off the drain path)
            idstep = Signal(24)
            d1 = Signal()
            m.d.sync += d1.eq(drain_step)
            if cfg.signed_count_bits:
                # a drained sign pair (group 0's spair, 1.13): position pos's +1 word at
                # 2 pos, its -1 word at 2 pos + 1, both read at D0
                pair0 = field(GROUP_LAYOUT, "spair", LAYER_BEATS)
                neg_bits = Signal(P)
                m.d.comb += [sc_raddr.eq(idstep + Mux(pair0, (row_pos_d + ox) << 1,
                                                      row_pos_d + ox)),
                             neg_bits.eq(Mux(pair0, sc_data_hi, 0)), agg.id_neg.eq(neg_bits)]
                m.d.sync += id_inc.eq(Mux(d1 & agg.id_on,
                                          count_tree(sc_data) + count_tree(neg_bits), 0))
            else:
                m.d.comb += sc_raddr.eq(idstep + row_pos_d + ox)
                m.d.sync += id_inc.eq(Mux(d1 & agg.id_on, count_tree(sc_data), 0))
            m.d.comb += [sc_en.eq(drain_step), agg.id_bits.eq(sc_data)]
            with m.If(drain_step & row_end & ~image & (oy_d == L["h_out"] - 1)):
                m.d.sync += idstep.eq(idstep + field(GROUP_LAYOUT, "tstride", LAYER_BEATS))
        with m.If(drain_step):
            m.d.comb += [drain_en.eq(1), drain_clear.eq(~image | (ti == T - 1)),
                         agg.in_valid.eq(1), agg.rd_bank.eq(tt[0]),
                         agg.pos.eq(Mux(row_local, ox, row_pos_d + ox)),
                         # (a resumed launch goes on from the membranes the last one left)
                         agg.t_first.eq(Mux(image, ti == 0, tp_d == 0) & ~L["resume"]),
                         agg.out_addr.eq(ocnt)]
            m.d.sync += [ox.eq(ox + 1), ocnt.eq(ocnt + 1)]
            with m.If(ox == L["w_out"] - 1):
                m.d.sync += ox.eq(0)
                with m.If(image & (ti != T - 1)):
                    m.d.sync += ti.eq(ti + 1)
                with m.Else():
                    m.d.sync += [ti.eq(0), dg.eq(dg + 1)]
                    if not pow2:
                        m.d.sync += dslot.eq(Mux(dslot == NS - 1, 0, dslot + 1))
                    with m.If(oy_d == L["h_out"] - 1):
                        m.d.sync += [oy_d.eq(0), row_pos_d.eq(0), t_d.eq(t_d + 1),
                                     tp_d.eq(Mux(tp_d == period - 1, 0, tp_d + 1))]
                    with m.Else():
                        m.d.sync += [oy_d.eq(oy_d + 1), row_pos_d.eq(row_pos_d + L["w_out"])]

        with m.If(sl_active):
            m.d.comb += [self.s_axis_tready.eq(1), sb_wen.eq(beat)]
            with m.If(beat):
                m.d.sync += bcnt.eq(bcnt + 1)
                if cfg.narrow_stream:
                    m.d.sync += wcnt.eq(wcnt + sb_wn)
                    with m.If(image | (mcur <= kk)):     # the segment ends: next group
                        m.d.sync += [seg_fresh.eq(1),
                                     gi.eq(Mux(gi == L["ngroups"] - 1, 0, gi + 1))]
                    with m.Else():
                        m.d.sync += [seg_fresh.eq(0), seg_left.eq(mcur - kk)]
                with m.If(bcnt == sbeats_m1):
                    m.d.sync += sl_active.eq(0)

        # a dispatched row goes to the drain one cycle after its last dispatch cycle
        # (hand; its last accumulates land first, timing.C_HAND) while the dispatcher
        # already starts the next row
        hand = Signal()
        m.d.sync += [hand.eq(0), gd.eq(gd + hand)]

        def row_done():   # the row's last dispatch cycle: on to the next row or step
            m.d.sync += hand.eq(1)
            with m.If(oy == L["h_out"] - 1):
                with m.If(image | (t == T - 1)):
                    m.next = "DWAIT"
                with m.Else():
                    m.d.sync += t.eq(t + 1)
                    if cfg.signed_count_bits:
                        m.d.sync += tp.eq(Mux(tp == period - 1, 0, tp + 1))
                    m.next = "STEP"
            with m.Else():
                m.d.sync += oy.eq(oy + 1)
                m.next = "ROW_PRE"

        with m.FSM(name="ctl"):
            with m.State("IDLE"):
                with m.If(regs.start):
                    m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), ecode.eq(0), bcnt.eq(0),
                                 cycles.eq(0), sops.eq(0), iops.eq(0), wp_cnt.eq(0),
                                 wrow_cnt.eq(0), n_lane.eq(0), ocnt.eq(0), avail.eq(0),
                                 rd_addr.eq(0), ov.eq(0), sl_active.eq(0), gd.eq(0), dg.eq(0),
                                 *dslot_zero,
                                 t_d.eq(0), tp_d.eq(0), oy_d.eq(0), row_pos_d.eq(0), ox.eq(0),
                                 ti.eq(0), id_inc.eq(0),
                                 all_drained.eq(0), all_written.eq(0)]
                    if cfg.narrow_stream:
                        m.d.sync += [wcnt.eq(0), gi.eq(0), seg_fresh.eq(1)]
                    if cfg.identity_drain:
                        m.d.sync += idstep.eq(0)
                    m.d.comb += [gbw.clear.eq(1), gbn.clear.eq(1)]
                    m.next = "HDR"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("HDR"):
                m.d.comb += self.s_axis_tready.eq(1)
                with m.If(beat):
                    m.d.sync += [hdr[bcnt].eq(self.s_axis_tdata), bcnt.eq(bcnt + 1)]
                    with m.If((bcnt == 0) & (self.s_axis_tdata[:12] != HDR_MAGIC)):
                        m.d.sync += [error.eq(1), ecode.eq(1), busy.eq(0), resident.eq(0)]
                        m.next = "IDLE"
                    with m.Elif((bcnt != 0) & (bcnt == nhdr - 1)):
                        m.d.sync += bcnt.eq(0)
                        m.next = "DECODE"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("DECODE"):   # register the range checks (the header just landed)
                # packed launches: the steps per image (period) obey max_timesteps, the
                # launch's steps only the field width (the drainer wraps a counter at
                # period); image layers and integrators keep one image's state, so they
                # are never packed (period == timesteps)
                # (a build that cannot pair PEs refuses narrow weight streams)
                narrow_bad = C(0, 1) if regmap.pairs_pes(cfg) else L["wnarrow"]
                # (a build without phase pairs refuses a phase group)
                phase_bad = C(0, 1) if cfg.phase_pairs else Cat(*[
                    field(GROUP_LAYOUT, "phase", LAYER_BEATS + GROUP_BEATS * g) & (g < L["ngroups"])
                    for g in range(MAX_GROUPS)]).any()
                # (a build without phase quads refuses a quad group)
                if not cfg.phase_quads:
                    phase_bad = phase_bad | Cat(*[
                        field(GROUP_LAYOUT, "quad", LAYER_BEATS + GROUP_BEATS * g) & (g < L["ngroups"])
                        for g in range(MAX_GROUPS)]).any()
                # (a build without narrow streams refuses npos > 0)
                if not cfg.narrow_stream:
                    phase_bad = phase_bad | Cat(*[
                        field(GROUP_LAYOUT, "npos", LAYER_BEATS + GROUP_BEATS * g).any()
                        & (g < L["ngroups"]) for g in range(MAX_GROUPS)]).any()
                # (a drain bit only on group 0, and only on a build with identity_drain)
                # (a -1 plane is never drained: a signed identity drains as a sign pair)
                drain_bad = Cat(*[
                    field(GROUP_LAYOUT, "drain", LAYER_BEATS + GROUP_BEATS * g) & (g < L["ngroups"])
                    for g in range(0 if not cfg.identity_drain else 1, MAX_GROUPS)]).any() | (
                    field(GROUP_LAYOUT, "drain", LAYER_BEATS) & field(GROUP_LAYOUT, "neg", LAYER_BEATS))
                # (signed neurons and -1 planes only on a build with signed_count_bits,
                # at most 2^K - 1 steps per image: the net counts' range)
                neg_any = Cat(*[field(GROUP_LAYOUT, "neg", LAYER_BEATS + GROUP_BEATS * g)
                                & (g < L["ngroups"]) for g in range(MAX_GROUPS)]).any()
                K = cfg.signed_count_bits

                def gf(name, g):
                    return field(GROUP_LAYOUT, name, LAYER_BEATS + GROUP_BEATS * g)
                # (a sign pair, 1.12: one word pair per position, scanned word by word)
                spair_bad = Cat(*[gf("spair", g) & (g < L["ngroups"]) & (
                    (gf("image", g) | gf("phase", g) | gf("quad", g) | (gf("pool", g) != 1)
                     | (gf("nw", g) != 2)) if K else C(1, 1)) for g in range(MAX_GROUPS)]).any()
                signed_bad = spair_bad | ((L["signed"] & (period >= (1 << K))) if K
                                          else (L["signed"] | neg_any))
                # (a resumed launch: one image of a spiking-input layer, never packed)
                resume_bad = L["resume"] & (image | (period != T))
                m.d.sync += bad.eq((period == 0) | (period > cfg.max_timesteps) | narrow_bad |
                                   phase_bad | drain_bad | signed_bad | resume_bad |
                                   (period > T) | ((image | L["kind"]) & (period != T)) |
                                   (L["h_out"] > cfg.max_height) | (L["w_out"] > cfg.max_width) |
                                   (L["ngroups"] == 0) | (L["ngroups"] > MAX_GROUPS) |
                                   (L["tile_ch"] > P) | (L["sbeats"] > in_depth) |
                                   (Mux(row_local, L["w_out"], L["hw_out"])
                                    > cfg.membrane_positions))
                m.d.sync += [sbeats_m1.eq(L["sbeats"] - 1), wbeats_m1.eq(L["wbeats"] - 1)]
                m.next = "CHECK"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("CHECK"):
                with m.If(bad):
                    m.d.sync += [error.eq(1), ecode.eq(2), busy.eq(0), resident.eq(0)]
                    m.next = "IDLE"
                with m.Elif(L["keep"]):
                    # resident weights: straight to the input maps (error if none loaded)
                    with m.If(resident):
                        m.d.sync += [sl_active.eq(1), t.eq(0), tp.eq(0)]
                        m.next = "STEP"
                    with m.Else():
                        m.d.sync += [error.eq(1), ecode.eq(3), busy.eq(0)]
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += resident.eq(0)
                    m.next = "WLOAD"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("WLOAD"):
                m.d.comb += [self.s_axis_tready.eq(1), gbw.i_valid.eq(beat)]
                with m.If(beat):
                    m.d.sync += bcnt.eq(bcnt + 1)
                    with m.If(bcnt == wbeats_m1):
                        m.d.sync += bcnt.eq(0)
                        m.next = "NLOAD"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("NLOAD"):
                m.d.comb += [self.s_axis_tready.eq(1), gbn.i_valid.eq(beat)]
                with m.If(beat):
                    m.d.sync += bcnt.eq(bcnt + 1)
                    with m.If(bcnt == nbeats_neuron - 1):
                        m.d.sync += [bcnt.eq(0), resident.eq(1), sl_active.eq(1), t.eq(0), tp.eq(0)]
                        m.next = "STEP"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("STEP"):
                m.d.comb += [disp.t_start.eq(1), disp.t_first.eq(t == 0)]
                if cfg.signed_count_bits:   # an image's first step: its -1 planes are empty
                    m.d.comb += disp.img_first.eq((tp == 0) & ~L["resume"])
                nb = rowbase + hmod
                m.d.sync += [oy.eq(0), rowbase.eq(Mux(t == 0, 0, nb if pow2 else
                                                      Mux(nb >= NS, nb - NS, nb)))]
                m.next = "ROW_PRE"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("ROW_PRE"):
                # row gd + hand may be accumulated once the row psum_slots - 2 before it is drained
                # (its psum slot is free) and the input rows it scans are in (the rest
                # keeps streaming)
                with m.If((dg + (cfg.psum_slots - 3) >= gd + hand) & (have >= disp.row_need)):
                    m.d.comb += disp.row_start.eq(1)
                    with m.If(disp.row_nonempty):
                        m.next = "DISPATCH"
                    with m.Else():
                        row_done()
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("DISPATCH"):
                with m.If(disp.row_last):
                    row_done()
                    # row prefetch: the next row of the step starts right away (its first
                    # word read in this cycle) if it scans something and its ROW_PRE
                    # conditions hold already (gd + hand: this row's hand is not counted)
                    if cfg.row_prefetch:
                        with m.If((oy != L["h_out"] - 1) & (dg + (cfg.psum_slots - 4) >= gd + hand) &
                                  (have >= disp.row_need) & disp.row_nonempty):
                            m.d.comb += disp.row_start.eq(1)
                            m.next = "DISPATCH"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("DWAIT"):   # every row dispatched; the drain finishes
                with m.If(drain_done_next):
                    with m.If(L["kind"]):
                        m.next = "UNLOAD"
                        m.d.sync += [rd_addr.eq(0), ov.eq(0), bidx.eq(0),
                                     words_left.eq(L["hw_out"])]
                    with m.Else():
                        m.next = "FINISH"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("FINISH"):   # if-layer: the streamed output drains
                with m.If(s_done):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
            with m.State("UNLOAD"):   # integrator: final membranes
                load = Signal()
                m.d.comb += load.eq((~ov | (self.m_axis_tready & bidx_last)) & (words_left != 0))
                m.d.comb += [agg.un_en.eq(load), agg.un_addr.eq(rd_addr),
                             agg.un_bank.eq(T[0])]
                with m.If(load):
                    m.d.sync += [rd_addr.eq(rd_addr + 1), words_left.eq(words_left - 1),
                                 ov.eq(1), bidx.eq(0)]
                with m.Elif(self.m_axis_tready & ov):
                    with m.If(bidx_last):
                        m.d.sync += ov.eq(0)
                    with m.Else():
                        m.d.sync += bidx.eq(bidx + 1)
                with m.If(self.m_axis_tready & ov & bidx_last & (words_left == 0)):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
                with m.If(regs.soft_reset):
                    m.next = "IDLE"
        m.d.comb += disp.rowbase.eq(rowbase)
        with m.If(regs.soft_reset):
            m.d.sync += [busy.eq(0), done.eq(0), ov.eq(0), resident.eq(0), sl_active.eq(0),
                         gd.eq(0), dg.eq(0), hand.eq(0), *dslot_zero]
        return m

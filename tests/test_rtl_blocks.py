"""Amaranth-simulator unit tests of the RTL blocks, each against its model twin."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from sia import SiaError
from sia.hw import regmap
from sia.hw.params import SIAConfig
from sia.hw.rtl.aggregation import Aggregation
from sia.hw.rtl.axil import AxiLiteRegs
from sia.hw.rtl.pe import PE
from sia.hw.rtl.stream import Gearbox
from sia.hw.rtl.top import check_buildable

SMALL = SIAConfig(pes=4, max_width=8, max_height=8, max_channels_in=16, max_timesteps=4)


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_gearbox_matches_bitstream():
    rng = np.random.default_rng(0)
    vals = rng.integers(-128, 128, 9 * 12).tolist()
    beats = regmap.bits_to_beats(vals, 8)
    dut = Gearbox(72)
    words = []

    async def bench(ctx):
        for i in range(len(beats) + 3):
            ctx.set(dut.i_valid, i < len(beats))
            ctx.set(dut.i_data, beats[i] if i < len(beats) else 0)
            if ctx.get(dut.o_valid):
                words.append(ctx.get(dut.o_data))
            await ctx.tick()
    _run(dut, bench)
    got = []
    for w in words:
        got += regmap.beats_to_values([w & (2**64 - 1), w >> 64], 8, 9)
    assert got == vals


async def _accumulate_all_banks(ctx, dut, valid):
    """S1 of one cycle: the `valid` event inputs set, all 9 banks enabled, ky_sel: bank
    row j <- ky = j, columns ox = 2, 3, 4; then the inputs cleared."""
    for v in valid:
        ctx.set(getattr(dut, v), 1)
    ctx.set(dut.acc_en, 1)
    ctx.set(dut.bank_valid, 0x1FF)
    ctx.set(dut.ky_sel, 0b100100)
    for kx, ox in enumerate((2, 3, 4)):
        ctx.set(getattr(dut, f"ox{kx}"), ox)
    await ctx.tick()
    ctx.set(dut.acc_en, 0)
    for v in valid:
        ctx.set(getattr(dut, v), 0)


async def _drain_banks(ctx, dut):
    """Drain (and clear) bank (j, kx) at column 2 + kx, for every j, kx: {(j, kx):
    (psum read, psum the cycle after the clear)}."""
    out = {}
    for j in range(3):
        for kx, ox in enumerate((2, 3, 4)):
            ctx.set(dut.drain_en, 1)
            ctx.set(dut.drain_row, j)
            ctx.set(dut.drain_addr, ox)
            ctx.set(dut.drain_clear, 1)
            got = ctx.get(dut.psum)
            await ctx.tick()
            out[(j, kx)] = (got, ctx.get(dut.psum))
    ctx.set(dut.drain_en, 0)
    return out


def test_pe_accumulates_taps_and_drains():
    """One event of channel c at a position: tap (ky,kx) lands in bank (oy%3, kx)."""
    cfg = SMALL
    dut = PE(cfg, index=1)
    w = np.arange(1, 10) * np.array([1, -1, 1, -1, 1, -1, 1, -1, 1])

    async def bench(ctx):
        word = sum((int(v) & 0xFF) << (8 * k) for k, v in enumerate(w))
        ctx.set(dut.w_we, 1)
        ctx.set(dut.w_addr, 3)
        ctx.set(dut.w_data, word)
        await ctx.tick()
        ctx.set(dut.w_we, 0)
        # S0: read row 3 for event 0 (shift 1), row 3 for event 1 (shift 0)
        ctx.set(dut.rd_addr0, 3)
        ctx.set(dut.rd_addr1, 3)
        await ctx.tick()
        ctx.set(dut.ev_shift0, 1)
        await _accumulate_all_banks(ctx, dut, ("ev_valid0", "ev_valid1"))
        # drain row j at ox: only bank (j, kx) with ox == 2+kx holds 3*w[j,kx]
        for (j, kx), (got, after) in (await _drain_banks(ctx, dut)).items():
            assert got == 3 * w[j * 3 + kx]
            assert after == 0     # cleared
    _run(dut, bench)


def test_pe_phase_pair_sets_feed_their_own_tap_columns():
    """Phase pairs: the first event set reads its row from the kx = 1 weight memory, the
    second from the kx = 0, 2 memory (different rows in one cycle); outside phase groups
    both sets carry the same events, so every tap sees each event once."""
    import dataclasses
    cfg = dataclasses.replace(SMALL, phase_pairs=True)
    dut = PE(cfg, index=1)
    w = {3: np.arange(1, 10), 5: -10 * np.arange(1, 10)}

    async def bench(ctx):
        for row, vals in w.items():
            ctx.set(dut.w_we, 1)
            ctx.set(dut.w_addr, row)
            ctx.set(dut.w_data, sum((int(v) & 0xFF) << (8 * k) for k, v in enumerate(vals)))
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        for a, b, want in ((3, 5, lambda k: w[3][k] if k % 3 == 1 else w[5][k]),
                           (3, 3, lambda k: w[3][k])):
            ctx.set(dut.rd_addr0, a)        # S0: first set row a, second set row b
            ctx.set(dut.rd_addr_b0, b)
            await ctx.tick()
            await _accumulate_all_banks(ctx, dut, ("ev_valid0", "ev_valid_b0"))  # one per set
            for (j, kx), (got, _) in (await _drain_banks(ctx, dut)).items():
                assert got == want(j * 3 + kx), (a, b, j, kx)
    _run(dut, bench)


def test_aggregation_if_and_integrator():
    """Lanes follow sia/snn/neuron.py: V += I; s = V >= theta; V -= s*theta."""
    from sia.snn.neuron import if_step
    import torch
    cfg = SMALL
    dut = Aggregation(cfg)
    P, V, A = cfg.pes, cfg.v_bits, cfg.acc_bits
    th, bias, vi = [5, 3, 7, 2], [1, -2, 0, 3], [0, 1, 2, -1]
    cur_seq = [[4, 6, -3, 0], [2, 2, 9, 1], [-5, 0, 4, 8]]

    async def bench(ctx):
        for p in range(P):
            ctx.set(dut.n_we, 1)
            ctx.set(dut.n_lane, p)
            ctx.set(dut.n_data, (th[p] & (2**V - 1)) | ((bias[p] & (2**V - 1)) << V)
                    | ((vi[p] & (2**V - 1)) << 2 * V))
            await ctx.tick()
        ctx.set(dut.n_we, 0)
        v = torch.tensor(vi)
        for t, cur in enumerate(cur_seq):
            ctx.set(dut.in_valid, 1)
            ctx.set(dut.pos, 5)
            ctx.set(dut.rd_bank, t % 2)
            ctx.set(dut.t_first, t == 0)
            ctx.set(dut.out_addr, t)
            ctx.set(dut.psum, sum((c & (2**A - 1)) << (A * p) for p, c in enumerate(cur)))
            await ctx.tick()
            ctx.set(dut.in_valid, 0)
            v, s = if_step(v, torch.tensor(cur) + torch.tensor(bias), torch.tensor(th))
            assert ctx.get(dut.spk_we)
            assert ctx.get(dut.spk_data) == sum(int(b) << p for p, b in enumerate(s))
            await ctx.tick()
        # final membranes in bank T%2 through the unload port
        ctx.set(dut.un_en, 1)
        ctx.set(dut.un_addr, 5)
        ctx.set(dut.un_bank, len(cur_seq) % 2)
        await ctx.tick()
        word = ctx.get(dut.un_data)
        got = regmap.beats_to_values([(word >> (64 * k)) & (2**64 - 1) for k in range(2)], V, P)
        assert got == v.tolist()
    _run(dut, bench)


def test_axil_registers():
    cfg = SIAConfig()
    dut = AxiLiteRegs(cfg)

    async def read(ctx, addr):
        ctx.set(dut.s_axil_araddr, addr)
        ctx.set(dut.s_axil_arvalid, 1)
        ctx.set(dut.s_axil_rready, 1)
        await ctx.tick()
        ctx.set(dut.s_axil_arvalid, 0)
        assert ctx.get(dut.s_axil_rvalid)
        v = ctx.get(dut.s_axil_rdata)
        await ctx.tick()
        return v

    async def bench(ctx):
        ctx.set(dut.cycles, 0x1_0000_0005)
        assert await read(ctx, 0x00) == regmap.ID_MAGIC
        assert await read(ctx, 0x10) == 5
        assert await read(ctx, 0x14) == 1
        for i, n in enumerate(regmap.PARAM_NAMES):
            assert await read(ctx, regmap.PARAMS_BASE + 4 * i) == regmap.param_values(cfg)[n]
        ctx.set(dut.s_axil_awaddr, 0x08)
        ctx.set(dut.s_axil_awvalid, 1)
        ctx.set(dut.s_axil_wdata, 1)
        ctx.set(dut.s_axil_wvalid, 1)
        ctx.set(dut.s_axil_bready, 1)
        await ctx.tick()
        ctx.set(dut.s_axil_awvalid, 0)
        ctx.set(dut.s_axil_wvalid, 0)
        assert ctx.get(dut.start) == 1
        await ctx.tick()
        assert ctx.get(dut.start) == 0
    _run(dut, bench)


@pytest.mark.parametrize("kw,msg", [({"pes": 128}, "pes=128"), ({"weight_bits": 4}, "weight_bits"),
                                    ({"v_bits": 16, "acc_bits": 16}, "v_bits"),
                                    ({"stream_bits": 128}, "stream_bits")])
def test_bad_parameters_rejected_before_elaboration(kw, msg):
    with pytest.raises(SiaError, match=msg):
        check_buildable(SIAConfig(**kw))


@pytest.mark.parametrize("nw,pool", [(1, 1), (3, 1), (2, 2), (3, 2)])
def test_dispatch_row_schedule_word_scan(nw, pool):
    """Dispatcher alone: a 3x3/pad-1 conv group over a 4x4 (pooled) map with random
    words, nw words per source position, p x p pooling; per output row it scans pooled
    rows [r_end(oy-1), r_end(oy)), issues each (pooled column, pool row) run of p*nw
    words in pairs at max(1, ceil(n/E)) cycles per pair (sia.hw.rtl.cycles), and emits
    exactly the set bits (channel = 64*w + bit, low word first) as weight rows."""
    from sia.hw.rtl.dispatch import Dispatch
    cfg = SIAConfig(pes=4, max_width=8, max_height=8, max_channels_in=256, max_timesteps=4)
    dut = Dispatch(cfg, 512)
    rng = np.random.default_rng(nw * 10 + pool)
    ws = 4 * pool                                    # source columns
    mem = [int(sum(1 << int(b) for b in rng.choice(64, rng.integers(0, 6), replace=False)))
           for _ in range(4 * pool * ws * nw)] + [0]
    g = dict(op=0, image=0, pool=pool, stride=1, pad=1, kh=3, kw=3, nw=nw, hp=4, wp=4, reach=2,
             base=0, tstride=len(mem), prow_stride=pool * ws * nw, srow_stride=ws * nw,
             pstride=pool * nw, wrow=5, pos_rstride=0)
    E = cfg.events_per_cycle
    expect_rows = {0: [0, 1], 1: [2], 2: [3], 3: []}

    def runs(r):     # the word addresses of pooled row r, run by run
        return [[r * g["prow_stride"] + i * g["srow_stride"] + x * g["pstride"] + k
                 for k in range(pool * nw)] for x in range(4) for i in range(pool)]

    def cost(run):
        n = [bin(mem[a]).count("1") for a in run] + [0]
        return sum(max(1, -(-(n[k] + n[k + 1]) // E)) for k in range(0, len(run), 2))
    seen = []

    async def bench(ctx):
        for k, v in g.items():
            ctx.set(getattr(dut, f"g0_{k}"), v)
        ctx.set(dut.ngroups, 1)
        ctx.set(dut.h_out, 4)
        ctx.set(dut.w_out, 4)
        ctx.set(dut.tile_ch, 3)
        ctx.set(dut.t_start, 1)
        ctx.set(dut.t_first, 1)
        await ctx.tick()
        ctx.set(dut.t_start, 0)

        def read(addr):          # the spike buffer: words addr and addr + 1, their popcounts
            hi = mem[addr + 1] if addr + 1 < len(mem) else 0
            ctx.set(dut.sb_data, mem[addr])
            ctx.set(dut.sb_data_hi, hi)
            ctx.set(dut.sb_count, bin(mem[addr]).count("1"))
            ctx.set(dut.sb_count_hi, bin(hi).count("1"))
        for oy in range(4):
            ctx.set(dut.row_start, 1)
            nonempty = ctx.get(dut.row_nonempty)
            assert nonempty == bool(expect_rows[oy])
            addr, en = ctx.get(dut.sb_addr), ctx.get(dut.sb_en)
            await ctx.tick()
            ctx.set(dut.row_start, 0)
            if en:
                read(addr)
            cycles = 0
            while nonempty:
                cycles += 1
                last = ctx.get(dut.row_last)
                addr, en = ctx.get(dut.sb_addr), ctx.get(dut.sb_en)
                rd = [ctx.get(getattr(dut, f"rd_addr{e}")) for e in range(E)]
                await ctx.tick()
                for e in range(E):
                    if ctx.get(getattr(dut, f"ev_valid{e}")):
                        seen.append(rd[e] - 5)
                if en:
                    read(addr)
                if last:
                    break
            assert cycles == sum(cost(run) for r in expect_rows[oy] for run in runs(r)), (oy, cycles)
    _run(dut, bench)
    order = [a for r in range(4) for run in runs(r) for a in run]
    bits = [64 * (a % nw) + b for a in order for b in range(64) if (mem[a] >> b) & 1]
    assert seen == bits

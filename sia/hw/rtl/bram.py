"""Block RAM of the design, counted without Yosys: every memory the RTL instantiates,
mapped to 7-series RAMB18s the way `synth_xilinx` maps it (the cheapest aspect ratio,
replicated in width and depth). Exact against `sia synth` on the committed reports of
the current RTL (tests/test_rtl_bram.py) and on random parameter sets
(benchmarks/bram_estimate_check.py; an upper bound for 65..128-word weight memories,
`exact`), so `sia dse` can say which builds fit the XC7Z020's 140 RAMB36 in
milliseconds instead of minutes."""

from sia.hw import regmap
from sia.hw.params import SIAConfig

XC7Z020_RAMB36 = 140
# (depth, widest port) of one RAMB18, simple dual-port; true dual-port ports are at most
# 18 wide (a RAMB36 is two RAMB18s with the same ratios, so counting RAMB18s suffices)
_RATIOS = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def ram18(width: int, depth: int, true_dual: bool = False) -> int:
    """RAMB18s of one memory of `width` x `depth` with one write and one read port
    (true_dual: a read-write and a read port)."""
    return min(-(-depth // d) * -(-width // (min(w, 18) if true_dual else w))
               for d, w in _RATIOS)


def weight_part_ram18(width: int, depth: int, reads: int, shared: bool) -> int:
    """RAMB18s of one PE weight-memory part with `reads` read ports (E) and the write port.
    Separate: one simple dual-port copy per read port. Shared: event 0's read port takes
    the write port's address (weights load while nothing is issued), so one true
    dual-port copy serves it and one more read port; the rest get simple dual-port copies."""
    if not shared:
        return reads * ram18(width, depth)
    return ram18(width, depth, True) + max(0, reads - 2) * ram18(width, depth)


def share_weight_port(cfg: SIAConfig, width: int) -> bool:
    """Share the write port's address with event 0's read port where that takes fewer
    block RAMs (narrow parts: phase quads' 1- and 2-tap parts; at 8-bit weights a 16-bit
    part is one RAMB18 for E = 2, not two). Not elsewhere: the address multiplexer costs
    LUTs for nothing (a full 9-tap row of 8-bit codes costs the same either way).
    Parts of <= 64 words go to LUT RAM, whose extra read ports are cheap."""
    E, depth = cfg.events_per_cycle, cfg.max_channels_in
    return E >= 2 and depth > 64 and (weight_part_ram18(width, depth, E, True)
                                      < weight_part_ram18(width, depth, E, False))


def weight_ram18(cfg: SIAConfig) -> int:
    """RAMB18s of one PE's weight memory (0 at <= 64 words: LUT RAM)."""
    from sia.hw.rtl.pe import weight_sets
    if cfg.max_channels_in <= 64:
        return 0
    wb, E = cfg.weight_bits, cfg.events_per_cycle
    return sum(weight_part_ram18(len(ks) * wb, cfg.max_channels_in, E,
                                 share_weight_port(cfg, len(ks) * wb))
               for _, ks in weight_sets(cfg))


def exact(cfg: SIAConfig) -> bool:
    """Whether the count is Yosys's exactly. Weight memories of 65..128 words are the
    exception: there Yosys's cost model moves some parts to LUT RAM (a shared part fits
    RAM128X1D's read-write + read ports exactly), so the count is an upper bound
    (benchmarks/bram_estimate_check.py). No CIFAR build is that shallow."""
    return not 64 < cfg.max_channels_in <= 128


def design_ram36(cfg: SIAConfig, session30: bool = True) -> dict:
    """RAMB36 equivalents per memory of the build (as sia/hw/rtl/top.py and
    aggregation.py instantiate them) and their total (an upper bound where not
    `exact(cfg)`). session30=False: the design as built before session 30 (an output
    buffer of out_buffer_beats words, not a ring; a signed build's identity copy in one
    bank), for the synthesis reports of those builds (theirs lack "output_ring")."""
    P = cfg.pes
    in_depth = regmap.buffer_beats(cfg)[0]
    nb = 4 if cfg.phase_quads or cfg.narrow_stream else 2     # spike-buffer banks
    abits = max(1, (cfg.membrane_positions - 1).bit_length())
    r18 = {"weights": P * weight_ram18(cfg),
           # 64-bit word + 7-bit popcount (+ 1 spare) per word
           "spike_buffer": nb * ram18(72, -(-in_depth // nb)),
           # P-bit spike words (signed builds: 2P, the +1 and the -1 plane): Yosys drops
           # the unused bits of the 64-bit memory; a ring (`regmap.out_ring_words`)
           "output_buffer": ram18(min(64, 2 * P if cfg.signed_count_bits else P),
                                  regmap.out_ring_words(cfg) if session30
                                  else regmap.buffer_beats(cfg)[1]),
           # both ping-pong banks in one memory, P membranes (and P net counts) per word
           "membranes": ram18(P * (cfg.v_bits + cfg.signed_count_bits), 2 << abits)}
    if cfg.identity_drain:
        # (in the spike buffer's banks on narrow-stream and signed builds, top.py)
        sb = nb if cfg.narrow_stream or (cfg.signed_count_bits and session30) else 1
        r18["identity_copy"] = sb * ram18(P, -(-in_depth // sb))
    out = {k: v / 2 for k, v in r18.items()}
    out["total"] = sum(r18.values()) / 2
    return out

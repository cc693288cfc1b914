"""The RTL's cycle formula (docs/architecture.md, "Cycle model"): the exact cycle count
of one launch with unstalled streams. The co-simulation checks CYCLES against it."""

import numpy as np

from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.hw.planes import unscanned_steps
from sia.program.format import Program


def _bits(words: np.ndarray) -> np.ndarray:
    """[n, 8 bytes, 8 bits] of 64-bit words (an image word: byte = pixel, bit = plane)."""
    w = np.ascontiguousarray(words, dtype=np.uint64)
    return np.unpackbits(w.view(np.uint8).reshape(-1, 8, 1), axis=2)


def unit_cost(n: np.ndarray, E: int) -> np.ndarray:
    """Dispatch cycles of issue units holding n set bits: max(1, ceil(n / E))."""
    return np.maximum(1, -(-n // E))


def word_costs(words: np.ndarray, E: int, image: bool) -> np.ndarray:
    """Dispatch cycles per word issued alone: max(1, ceil(popcount / E)); E = 4 image
    words issue one bit plane at a time: max(1, sum_b ceil(n_b / E))."""
    if not len(words):
        return np.zeros(0, np.int64)
    bits = _bits(words).astype(np.int64)
    if image and timing.plane_issue(E):
        return np.maximum(1, (-(-bits.sum(1) // E)).sum(1))
    return unit_cost(bits.sum((1, 2)), E)


def held_cost(n: np.ndarray, E: int) -> np.ndarray:
    """Pool hold: dispatch cycles of pooled positions [..., K] whose K issue units (in
    scan order) hold n set bits: a unit passes its last A mod E events (A = held + n
    >= E) to the next; cycles max(1, floor(A / E)), the last unit max(1, ceil(A / E))."""
    held = np.zeros(n.shape[:-1], np.int64)
    cost = np.zeros_like(held)
    K = n.shape[-1]
    for k in range(K):
        a = held + n[..., k]
        if k < K - 1:
            cost += np.maximum(1, a // E)
            held = np.where(a >= E, a % E, 0)
        else:
            cost += unit_cost(a, E)
    return cost


def launch_cycles(program: Program, li: int, tile: int, inputs: dict, cfg: SIAConfig,
                  T: int | None = None, detail: bool = False, keep: bool = False,
                  resume: bool = False):
    """keep: a resident-weight launch (no weight / neuron-param beats); resume: a later
    chunk of a split image (`regmap.launch_chunks`). inputs: one image's {source:
    array}, or a list of them for a packed launch (its images run as one launch of
    images x T steps)."""
    T = program.timesteps if T is None else T
    k = len(regmap.image_list(inputs))
    info = regmap.tile_info(program, li, tile, cfg, T, k)
    groups = regmap._groups(program, li, tile, cfg, T)[0]
    packet = regmap.pack_tile(program, li, tile, inputs, cfg, T)
    sw = packet[info.header_beats + info.weight_beats + info.neuron_beats:]
    r = packet_cycles(groups, sw, info.out_shape, k * T, info.image, info.kind == "integrator",
                      cfg.events_per_cycle, info.header_beats,
                      0 if keep else info.weight_beats + info.neuron_beats, info.out_beats,
                      cfg.row_prefetch, cfg.psum_slots, cfg.pool_hold, T, resume)
    return r if detail else r["total"]


def packet_cycles(groups: list[dict], spike_words, out_shape, T: int, image: bool,
                  integrator: bool, E: int, header_beats: int, loads: int,
                  out_beats: int, prefetch: bool = True, slots: int = 4,
                  hold: bool = False, period: int | None = None, resume: bool = False) -> dict:
    """The formula from what a tile packet carries (group descriptors, input-map words,
    header fields): what the RTL's CYCLES register shows for it. loads = the weight +
    neuron-parameter beats the packet holds (0 for keep); out_beats = output packet;
    prefetch, slots, hold = the build's row_prefetch, psum_slots and pool_hold; period,
    resume = the layer fields (steps per image, default T; a resumed launch)."""
    H, W = out_shape
    steps = 1 if image else T
    # the buffer words the input beats carry (narrow streams: several per beat)
    sw = regmap.narrow_unpack(groups, spike_words, steps)
    # image words are issued one at a time; spike words two at a time (word pairs)
    per_word = word_costs(sw, E, image) if image else _bits(sw).sum((1, 2)).astype(np.int64)

    def row_costs(g):
        """Dispatch cycles of each pooled row [step, r] of group g, over the words at the
        addresses the dispatcher walks (`regmap.scan_addresses` [r, i, x, j, w]); spike
        words: the run (j, w) of each (r, i, x) in pairs of consecutive words."""
        a = regmap.scan_addresses(g)
        out = []
        for t in range(steps):
            v = per_word[g["base"] + t * g["tstride"] + a]
            if not image and g.get("quad"):
                # a quad takes up to E events of each of its four words per cycle
                q = v.reshape(*v.shape[:3], -1, 4)
                v = np.maximum(1, (-(-q // E)).max(-1))
            elif not image:
                run = v.reshape(*v.shape[:3], -1)
                run = np.pad(run, [(0, 0)] * 3 + [(0, run.shape[-1] % 2)])
                pairs = run.reshape(*run.shape[:3], -1, 2)
                if hold and g["pool"] > 1:
                    # pool hold: the units of a pooled position (r, x) in scan order
                    # (pool rows i, then the run's units) -> [r, x]
                    n = pairs.sum(-1).transpose(0, 2, 1, 3)
                    out.append(held_cost(n.reshape(*n.shape[:2], -1), E).sum(1))
                    continue
                # a phase pair takes up to E events of each word per cycle; a sign
                # pair issues its +1 word's events, then its -1 word's
                v = (np.maximum(1, (-(-pairs // E)).max(-1)) if g.get("phase")
                     else np.maximum(1, (-(-pairs // E)).sum(-1)) if g.get("spair")
                     else unit_cost(pairs.sum(-1), E))
            out.append(v.reshape(v.shape[0], -1).sum(1))
        out = np.stack(out)
        # a -1 plane is not scanned at an image's first step (interface 1.11)
        out[unscanned_steps(bool(g.get("neg")), steps, period or T, resume)] = 0
        return out

    def r_end(g, o):   # the descriptor's row schedule (dense: reach = hp, H_out = 1)
        return 0 if o < 0 else min(max(o * regmap.row_stride(g) + g["reach"], 0), g["hp"])

    # a drain group (identity in the drain, `regmap.drain_group`) is never scanned
    scanned = [g for g in groups if not g.get("drain")]
    rows = [row_costs(g) for g in scanned]
    d = [[sum(int(c[t, r_end(g, oy - 1):max(r_end(g, oy - 1), r_end(g, oy))].sum())
              for g, c in zip(scanned, rows)) for oy in range(H)] for t in range(steps)]
    disp = sum(map(sum, d))
    # the dispatcher and the aggregation core overlap (docs/architecture.md): row g
    # starts once row g-2 is drained and the input beats its rows need are in
    # (`regmap.row_need`, one beat per cycle from the first compute cycle), its drain
    # once it is handed over (C_HAND after its dispatch) and row g-1 is drained
    wdrain = (T if image else 1) * W
    need = regmap.need_beats(groups, regmap.row_need(groups, steps, H,
                                                     len(sw) if image else groups[0]["tstride"]))
    # row prefetch: a row whose wait conditions already hold in the last dispatch cycle
    # of the row before it (same step, both rows scan something) starts right after it,
    # its first word read in that cycle; otherwise ROW_PRE costs C_ROW once they hold
    # (a row waits for row g - K drained, K = slots - 2: its psum slot is free)
    K = slots - 2
    e, des, wait, hidden = 0, [None] * K, 0, 0     # des: drain ends of rows g-1 .. g-K
    for t in range(steps):
        e += timing.C_STEP
        prev = 0
        for oy in range(H):
            # the first cycle both conditions hold (row g-K drained, its input in)
            free, de1 = des[-1], des[0]
            ready = int(need[t, oy]) if free is None else max(free, int(need[t, oy]))
            if prefetch and prev and d[t][oy] and ready <= e - 1:
                e, hidden = e + d[t][oy], hidden + 1
            else:
                s = e if free is None else max(e, free)
                wait += max(0, ready - s)
                e = max(s, ready) + timing.C_ROW + d[t][oy]
            prev = d[t][oy]
            hand = e + timing.C_HAND     # the row's last accumulates land first
            des = [(hand if de1 is None else max(hand, de1)) + wdrain] + des[:-1]
    clock = des[0]
    out = out_beats if integrator else timing.C_OUT_TAIL
    total = timing.C_LAUNCH + header_beats + loads + clock + out
    return {"total": total, "header": header_beats, "dispatch": disp, "span": clock,
            "input_wait": wait, "loads": loads, "out": out, "rows_prefetched": hidden}

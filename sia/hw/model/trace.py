"""Per-event trace mode: a plain loop over events for tiny programs.

It walks the launch loop of docs/architecture.md literally -- tiles, timesteps, output
rows, the row schedule, spike-buffer words, E events per cycle -- accumulating into an
explicit psum row buffer and running the aggregation core on explicit ping-pong
membrane banks. It is an independent implementation of both the arithmetic (checked
against the golden simulator) and the cycle count (checked against the fast path).
"""

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from sia import SiaError
from sia.hw import regmap, timing
from sia.hw.model import schedule as S
from sia.hw.model.fast import launch_chunks
from sia.hw.model.fit import check_fits, is_image_layer, weight_rows
from sia.hw.params import SIAConfig
from sia.hw.planes import PAIR, hardware_view, plane_weight, unscanned_steps
from sia.program.format import IMAGE, Program


@dataclass
class TraceResult:
    spikes: dict[str, np.ndarray] = field(default_factory=dict)   # [T, C, H, W]
    v: dict[str, np.ndarray] = field(default_factory=dict)        # [T, C, H, W], after reset
    launches: list[dict] = field(default_factory=list)
    # (layer, tile, phase) -> {(bank, "r"|"w")}; phase = timestep, or "out" (stream-out)
    bank_use: dict = field(default_factory=lambda: defaultdict(set))


class _Launch:
    """State of one (layer, tile) launch: psum rows, membrane banks, counters."""

    def __init__(self, program, i, k, config, T, res: TraceResult):
        self.p, self.i, self.k, self.cfg, self.T, self.res = program, i, k, config, T, res
        self.layer = layer = program.layers[i]
        self.lo_ch = k * config.pes
        self.a = S.active_pes(layer, k, config)
        _, self.ho, self.wo = layer.shape
        self.psum: dict[int, np.ndarray] = {}      # live output rows of the row buffer
        self.drained = -1
        self.banks = [np.zeros((self.a, self.ho, self.wo), np.int64) for _ in range(2)]
        # signed neurons: the net spike counts, in the membrane words beside V
        self.counts = [np.zeros((self.a, self.ho, self.wo), np.int64) for _ in range(2)]
        self.cyc = dict.fromkeys(S.PHASES, 0)
        self.mem = defaultdict(int)
        self.sops = self.image_ops = self.weight_reads = 0
        self.max_rows = 0
        self.shortcut = None      # (identity group, its source [T,C,H,W]) added in the drain
        self.held = []            # pool hold: events a unit passed to the next one

    # -- spiking core -------------------------------------------------------------
    def _add(self, oy, ox, vec):
        if oy <= self.drained:
            raise AssertionError(f"row schedule: accumulate into drained row {oy}")
        row = self.psum.setdefault(oy, np.zeros((self.a, self.wo), np.int64))
        self.max_rows = max(self.max_rows, len(self.psum))
        row[:, ox] += vec

    def _event(self, s, c, r, x, val, feature):
        """One event of channel c at pooled position (r, x), value val (2^b for an image bit)."""
        ch = slice(self.lo_ch, self.lo_ch + self.a)
        ops = 0
        weight = plane_weight(s)     # a -1 plane's events add -w (`sia.hw.planes`)
        if s.op == "identity":
            if not self.lo_ch <= c < self.lo_ch + self.a:
                return
            vec = np.zeros(self.a, np.int64)
            vec[c - self.lo_ch] = weight[c] * val
            self._add(r, x, vec)
            self.weight_reads += 1
            ops = 1
        elif s.op == "dense":
            self._add(0, 0, weight[ch, feature].astype(np.int64) * val)
            self.weight_reads += self.a
            ops = self.a
        else:
            self.weight_reads += self.a
            kh, kw = s.kernel
            for dy in range(kh):
                oy, ry = divmod(r + s.padding - dy, s.stride)
                if ry or not 0 <= oy < self.ho:
                    continue
                for dx in range(kw):
                    ox, rx = divmod(x + s.padding - dx, s.stride)
                    if rx or not 0 <= ox < self.wo:
                        continue
                    self._add(oy, ox, weight[ch, c, dy, dx].astype(np.int64) * val)
                    ops += self.a
        if s.source == IMAGE:
            self.image_ops += ops
        else:
            self.sops += ops

    def dispatch(self, s, events, *more, end=True):
        """Issue an issue unit's events, E per cycle; an empty unit costs one cycle. Plane issue
        (E = 4 image words): one cycle's events share a bit plane, lowest plane first.
        more: the other words' events of a phase pair (`regmap.phase_pair`: one more) or
        quad (`regmap.phase_quad`: three more): each cycle takes up to E events of each
        word; of a sign pair (`sia.hw.planes.sign_pair`): the -1 word's, issued after the
        +1 word's (one sign per cycle). Pool hold (`schedule.holds`): the events held
        from the unit before go first; a unit that does not end its pooled position
        (`end`) stops once fewer than 2E are left, issues E of them and holds the rest."""
        E = self.cfg.events_per_cycle
        if S.holds(s, self.cfg):
            evs, chunks = self.held + events, []
            while not (len(evs) <= E or (not end and len(evs) < 2 * E)):
                chunks.append(evs[:E])
                evs = evs[E:]
            chunks.append(evs[:E])
            self.held = evs[E:] if not end else []
        else:
            runs = [events]
            if S.plane_issue(s, self.cfg):
                runs = [[ev for ev in events if ev[3] == 1 << b] for b in range(8)]
            chunks = [run[j:j + E] for run in runs for j in range(0, len(run), E)] or [[]]
        if more and s.plane == PAIR:   # a sign pair: its +1 events, then its -1 events
            chunks = [w[j:j + E] for w in (events, *more) for j in range(0, len(w), E)] or [[]]
        elif more:
            sets = (events, *more)
            n = max(*map(len, sets), 1)
            chunks = [sum((w[j:j + E] for w in sets), []) for j in range(0, n, E)]
        for chunk in chunks:
            self.cyc["accumulate" if chunk else "dispatch_empty"] += 1
            for ev in chunk:
                self._event(s, *ev)

    # -- aggregation core ---------------------------------------------------------
    def drain(self, oy, steps, out_s, out_v):
        """Drain output row oy for timesteps `steps`: V = V(t-1) + psum + bias."""
        layer, ch = self.layer, slice(self.lo_ch, self.lo_ch + self.a)
        cur = self.psum.pop(oy, np.zeros((self.a, self.wo), np.int64))
        if self.shortcut is not None:   # identity in the drain: w[c] * s[c] of (oy, ox)
            s, src = self.shortcut
            (t,) = steps                # spike-source layers drain one step per row
            x = src[t, ch, oy].astype(np.int64)                     # [a, W]
            cur = cur + s.weight[ch].astype(np.int64)[:, None] * x   # (a sign pair: x = s)
            self.sops += int(np.abs(x).sum())
            self.mem["shortcut_reads"] += self.wo
        if cur.size and np.abs(cur).max() >= 1 << (self.cfg.acc_bits - 1):
            raise SiaError(f"layer {layer.name}: psum overflows acc_bits={self.cfg.acc_bits}")
        self.drained = oy
        lim = 1 << (self.cfg.v_bits - 1)
        for t in steps:
            self.mem["psum_drain_reads"] += self.wo
            for ox in range(self.wo):
                if t == 0:
                    v = layer.v_init[ch].astype(np.int64)   # parameter register, no bank read
                    c = np.zeros(self.a, np.int64)
                else:
                    v = self.banks[t % 2][:, oy, ox].copy()
                    c = self.counts[t % 2][:, oy, ox].copy()
                    self._bank(t, t % 2, "r")
                v = v + cur[:, ox] + layer.bias[ch]
                if v.min() < -lim or v.max() >= lim:
                    raise SiaError(f"layer {layer.name}: membrane overflows v_bits={self.cfg.v_bits}")
                if layer.kind == "if":
                    s = (v >= layer.threshold[ch]).astype(np.int64)
                    if layer.signed:    # a -1 spike takes back an earlier +1
                        s = s - ((v < 0) & (c > 0))
                        c = c + s
                    v = v - s * layer.threshold[ch]
                    out_s[t, ch, oy, ox] = s
                    self.mem["spike_out_writes"] += 1
                self.banks[(t + 1) % 2][:, oy, ox] = v
                self.counts[(t + 1) % 2][:, oy, ox] = c
                self._bank(t, (t + 1) % 2, "w")
                out_v[t, ch, oy, ox] = v

    def _bank(self, phase, bank, op):
        self.res.bank_use[(self.i, self.k, phase)].add((bank, op))
        self.mem[f"membrane_{'ab'[bank]}_{'reads' if op == 'r' else 'writes'}"] += 1


def _phase_words(s, src, t, lo, hi):
    """Scan order of a phase group (`regmap.phase_pair`) at step t: {row: [((events of
    column 2X, events of column 2X+1), 2, True)]} per column pair X and word w of channels
    [lo, hi) (identity: the tile's slice)."""
    h, w = src.shape[-2:]
    rows = {}
    for r in range(h):
        rows[r] = [(tuple([(ch, r, x, 1, None) for ch in range(w0, min(hi, w0 + 64))
                           if src[t, ch, r, x]] for x in (2 * X, 2 * X + 1)), 2, True)
                   for X in range(w // 2) for w0 in range(lo, hi, 64)]
    return rows


def _quad_words(s, src, t, lo, hi):
    """Scan order of a phase-quad group (`regmap.phase_quad`) at step t: {row: units},
    row 2Y holding the units of row pair Y - per column pair X and word w of channels
    [lo, hi), the events of positions (2Y + i, 2X + j) in (i, j) order, 4 words read -
    and row 2Y + 1 none (output row Y scans both rows: `schedule.r_end`)."""
    h, w = src.shape[-2:]
    rows = {}
    for Y in range(h // 2):
        rows[2 * Y] = [(tuple([(ch, r, x, 1, None) for ch in range(w0, min(hi, w0 + 64))
                               if src[t, ch, r, x]]
                              for r in (2 * Y, 2 * Y + 1) for x in (2 * X, 2 * X + 1)), 4, True)
                       for X in range(w // 2) for w0 in range(lo, hi, 64)]
        rows[2 * Y + 1] = []
    return rows


def _sign_words(s, src, t, lo, hi):
    """Scan order of a sign pair (`sia.hw.planes.sign_pair`) at step t: {row: [((events
    of the +1 word, events of the -1 word), 2, True)]} per position, channels [lo, hi) in
    one word; a -1 event has the value -1 (it adds -w)."""
    h, w = src.shape[-2:]
    return {r: [(tuple([(ch, r, x, v, ch * h * w + r * w + x) for ch in range(lo, hi)
                        if src[t, ch, r, x] == v] for v in (1, -1)), 2, True)
                for x in range(w)] for r in range(h)}


def _channels(prog, layer, s, tile, cfg):
    """The channels a group's words hold: all of its source's (identity: the tile's)."""
    if s.op == "identity":
        lo = tile * cfg.pes
        return lo, lo + S.active_pes(layer, tile, cfg)
    return 0, prog.source_shape(s.source)[0]


def _words(prog, layer, s, src, t, tile, cfg):
    """Scan order of group s at step t: {pooled row: [(issue unit, words read, ends its
    pooled position)]}, a unit being the list of its events (channel, pooled row, pooled
    col, value, dense feature). A pooled position is its p x p source positions' words, one after the
    other; a word holds <= 64 channels (image: 8 pixels, one event per set bit);
    identity: the tile's slice. Spike words are issued in pairs: the p*nw words of one
    (pooled column, pool row) run two at a time (`schedule.issue_units`)."""
    c, h, w = src.shape[-3:]        # the source as scanned (schedule.scan_view)
    p, per = s.pool, S.channels_per_word(s, cfg)
    hp, wp = h // p, w // p
    lo, hi = 0, c
    if s.op == "identity":
        lo = tile * cfg.pes
        hi = lo + S.active_pes(layer, tile, cfg)
    rows = {}
    for r in range(hp):
        row = []
        for x in range(wp):
            pos = []      # the pooled position's units, in scan order
            for dy in range(p):
                run = []
                for dx in range(p):
                    for w0 in range(lo, hi, per):
                        evs = []
                        for ch in range(w0, min(hi, w0 + per)):
                            f = ch * hp * wp + r * wp + x
                            if s.source == IMAGE:
                                pix = int(src[ch, r * p + dy, x * p + dx])
                                evs += [(ch, r, x, 1 << b, f) for b in range(8) if pix >> b & 1]
                            elif src[t, ch, r * p + dy, x * p + dx]:
                                evs.append((ch, r, x, 1, f))
                        run.append(evs)
                if s.source == IMAGE:
                    pos += [(evs, 1) for evs in run]
                else:
                    pos += [(sum(run[k:k + 2], []), len(run[k:k + 2])) for k in range(0, len(run), 2)]
            # the third field: the unit ends its pooled position (pool hold)
            row += [(evs, n, k == len(pos) - 1) for k, (evs, n) in enumerate(pos)]
        rows[r] = row
    return rows


def _stream_in(prog, layer, cfg, T, lc: _Launch):
    image = is_image_layer(layer)
    lc.cyc["header_load"] = regmap.header_beats(len(layer.inputs))
    lc.cyc["weight_load"] = S.ceil_div(weight_rows(prog, layer) * cfg.pes * cfg.taps
                                       * regmap.weight_stream_bits(prog, lc.i, cfg),
                                       cfg.stream_bits)
    lc.cyc["param_load"] = S.ceil_div(cfg.pes * 3 * cfg.v_bits, cfg.stream_bits)
    lc.mem["weight_writes"] = weight_rows(prog, layer) * cfg.pes
    for s in layer.inputs:
        c, h, w = S.scan_shape(s, prog.source_shape(s.source))   # decimated: the view
        if s.op == "identity":
            c = lc.a
        for _ in range(1 if image else T):
            for _pos in range(h * w):
                lc.mem["spike_in_writes"] += (S.ceil_div(c, S.channels_per_word(s, cfg))
                                              * S.words_per_channel_word(s))


def _run_rows(prog, layer, lc, srcs, t, drain_steps, out_s, out_v) -> list[int]:
    """Dispatch and drain every output row of one timestep (functionally in order);
    returns the dispatch cycles of each row (the timeline overlaps them with drains)."""
    views = [S.scan_view(s, srcs[s.source]) for s in layer.inputs]   # numpy maps slice alike
    words = [_sign_words(s, src, t, *_channels(prog, layer, s, lc.k, lc.cfg))
             if s.plane == PAIR else
             _quad_words(s, src, t, *_channels(prog, layer, s, lc.k, lc.cfg))
             if S.quad(orig, prog, lc.cfg) else
             _phase_words(s, src, t, *_channels(prog, layer, s, lc.k, lc.cfg))
             if S.phase(orig, prog, lc.cfg) else _words(prog, layer, s, src, t, lc.k, lc.cfg)
             for orig, (s, src) in zip(layer.inputs, views)]
    per_row = []
    drain = [S.in_drain(orig, layer, lc.cfg) for orig in layer.inputs]
    for (s, src), d in zip(views, drain):
        if d:
            lc.shortcut = (s, src)
    for oy in range(lc.ho):
        before = lc.cyc["accumulate"] + lc.cyc["dispatch_empty"]
        for (s, src), ws, d in zip(views, words, drain):
            if d:                      # added by the aggregation core (`drain`)
                continue
            if t in unscanned_steps(s.plane < 0, lc.T, lc.T):   # an empty -1 plane
                continue
            hp = src.shape[-2] // s.pool
            for r in range(S.r_end(s, hp, oy - 1), S.r_end(s, hp, oy)):
                for evs, nwords, end in ws[r]:
                    lc.mem["spike_in_reads"] += nwords
                    if isinstance(evs, tuple):      # a phase pair or quad
                        lc.dispatch(s, *evs)
                    else:
                        lc.dispatch(s, evs, end=end)
        per_row.append(lc.cyc["accumulate"] + lc.cyc["dispatch_empty"] - before)
        lc.drain(oy, drain_steps, out_s, out_v)
    return per_row


def _timeline(need: list[list[int]], rows: list[list[int]], wdrain: int,
              prefetch: bool = True, slots: int = 4) -> tuple[int, int, int]:
    """The two engines of a launch stepped one cycle at a time (the model's closed
    form, schedule.overlap, is checked against this): the dispatcher walks STEP, then
    per row ROW_PRE (waits until the row slots - 2 back is drained - its psum slot - and
    need[t][oy] input beats are in: one beat per cycle from cycle 0) and the row's
    dispatch cycles; the row is handed over C_HAND cycles after its last dispatch
    cycle and the aggregation core drains a handed-over row in wdrain cycles.
    Counters written in a cycle are seen the next one. Row prefetch (builds with
    row_prefetch): in a row's last dispatch cycle the next row of the same step checks
    its conditions; if they hold and both rows scan something it starts the next cycle
    (its ROW_PRE hidden). Returns
    (span: cycles until the last row is drained, cycles ROW_PRE waited for input only,
    rows prefetched)."""
    flat = [(t, oy, d) for t, row in enumerate(rows) for oy, d in enumerate(row)]
    cycle = waits = handed = drained = drain_done = prefetched = 0
    state, t, g, left = "STEP", 0, 0, 0
    hand_at = []             # cycles at which dispatched rows are handed over
    while drained < len(flat):
        seen_handed, seen_drained = handed, drained      # registered counters
        while hand_at and hand_at[0] == cycle:
            handed, hand_at = handed + 1, hand_at[1:]
        # spiking core: the dispatcher
        if state == "STEP":
            state, left = "BUSY_STEP", timing.C_STEP
        elif state == "ROW_PRE":
            if seen_drained + slots - 3 >= g:   # row g-(slots-2) drained: its slot is free
                if cycle >= need[t][flat[g][1]]:
                    state, left = "BUSY_ROW", flat[g][2] + timing.C_ROW
                else:
                    waits += 1
        if state.startswith("BUSY"):
            left -= 1
            if left == 0 and state == "BUSY_STEP":
                state = "ROW_PRE"
            elif left == 0:                 # dispatched: hand the row over C_HAND later
                hand_at.append(cycle + timing.C_HAND)
                g += 1
                if g == len(flat):
                    state = "DONE"
                elif flat[g][0] != t:
                    state, t = "STEP", flat[g][0]
                elif (prefetch and flat[g - 1][2] and flat[g][2] and seen_drained + slots - 3 >= g
                      and cycle >= need[t][flat[g][1]]):
                    state, left, prefetched = "BUSY_ROW", flat[g][2], prefetched + 1
                else:
                    state = "ROW_PRE"
        # aggregation core
        if seen_handed > seen_drained:
            drain_done += 1
            if drain_done == wdrain:
                drained, drain_done = drained + 1, 0
        cycle += 1
    return cycle, waits, prefetched


def trace(program: Program, image, T: int | None = None,
          config: SIAConfig | None = None) -> TraceResult:
    """Run one image (uint8 [C,H,W]) event by event."""
    config = config or SIAConfig()
    T = program.timesteps if T is None else int(T)
    check_fits(program, config, T)
    program = hardware_view(program, config)   # signed sources: sign pairs or two planes
    split = next((layer.name for i, layer in enumerate(program.layers)
                  if len(launch_chunks(program, i, config, T)) > 1), None)
    if split is not None:
        raise SiaError(f"layer {split}: its input maps need launches split over steps "
                       "(regmap.launch_chunks), which the trace does not walk; give the "
                       "build larger buffers (buffer_timesteps) or use the fast model")
    img = np.asarray(image, dtype=np.int64)
    res = TraceResult()
    outs = {IMAGE: img}
    for i, layer in enumerate(program.layers):
        C, H, W = layer.shape
        out_s = np.zeros((T, C, H, W), np.int8 if layer.signed else np.uint8)
        out_v = np.zeros((T, C, H, W), np.int64)
        for k in range(S.tiles(layer, config)):
            lc = _Launch(program, i, k, config, T, res)
            lc.cyc["stall"] += timing.C_LAUNCH
            _stream_in(program, layer, config, T, lc)
            if is_image_layer(layer):   # current once, IF recurrence for all T per row
                rows = [_run_rows(program, layer, lc, outs, 0, range(T), out_s, out_v)]
            else:
                rows = []
                for t in range(T):
                    lc.drained = -1
                    rows.append(_run_rows(program, layer, lc, outs, t, [t], out_s, out_v))
            # timing: the dispatcher and the aggregation core run side by side
            span, waits, pre = _timeline(S.stream_need(program, i, config, T, k), rows,
                                         S.drain_cycles(layer, T), config.row_prefetch,
                                         config.psum_slots)
            loops = len(rows) * (timing.C_STEP + H * timing.C_ROW) - pre * timing.C_ROW
            lc.cyc["stall"] += loops
            lc.cyc["stream_in"] += waits
            lc.cyc["aggregate"] += span - waits - loops - sum(map(sum, rows))
            if layer.kind == "if":   # streamed while computing; only the tail remains
                lc.cyc["stream_out"] += timing.C_OUT_TAIL
                for _ in range(T * H * W):
                    lc.mem["spike_out_reads"] += 1
                    lc.mem["stream_out_beats"] += S.ceil_div(config.pes, config.stream_bits)
            else:
                for _ in range(H * W):
                    beats = S.ceil_div(config.pes * config.v_bits, config.stream_bits)
                    lc.cyc["stream_out"] += beats
                    lc.mem["stream_out_beats"] += beats
                    lc._bank("out", T % 2, "r")
            res.launches.append({"layer": i, "name": layer.name, "tile": k,
                                 "phases": dict(lc.cyc), "cycles": sum(lc.cyc.values()),
                                 "sops": lc.sops, "image_ops": lc.image_ops,
                                 "weight_reads": lc.weight_reads, "memory": dict(lc.mem),
                                 "psum_rows": lc.max_rows})
        outs[i] = out_s
        res.v[layer.name] = out_v
        if layer.kind == "if":
            res.spikes[layer.name] = out_s
    return res

"""The cycle formula of docs/architecture.md ("Cycle model"), vectorised.

One launch = one (layer, tile of P output channels). Dispatch is a scan of the input
spike buffer in *issue units*: a spike group's words are read two at a time (word
pairs: consecutive words of one pooled position's run, `issue_units`), an image word
alone (64 bits hold 8 pixels of 8 bits); a unit costs max(1, ceil(popcount / E))
cycles; at E = 4 the events of one cycle of an image word share a bit plane, so an
image word costs max(1, sum_b ceil(n_b / E)) (`plane_issue`). All tiles scan the same
words except identity groups, which hold only the tile's own channel slice; a 1x1
stride-2 group is scanned decimated (`scan_view`: only the positions it reads). The
dispatcher, the aggregation core and the input stream overlap (`overlap`). Timing
constants are read from sia.hw.timing at call time.
"""

import dataclasses

import torch

from sia.hw import regmap, timing
from sia.hw.model.fit import is_image_layer, weight_rows
from sia.hw.params import SIAConfig
from sia.hw.planes import PAIR, plane_map, unscanned_steps
from sia.program.format import IMAGE, Layer, Program, Synapse
from sia.snn.synapse import fanout_map

# Phases of a launch; they partition its cycles.
PHASES = ("header_load", "weight_load", "param_load", "stream_in", "accumulate",
          "dispatch_empty", "aggregate", "stall", "stream_out")

_POPCOUNT = torch.tensor([bin(v).count("1") for v in range(256)], dtype=torch.int32)


def ceil_div(a, b):
    return -(-a // b)


def tiles(layer: Layer, config: SIAConfig) -> int:
    return ceil_div(layer.channels, config.pes)


def active_pes(layer: Layer, tile: int, config: SIAConfig) -> int:
    return min(config.pes, layer.channels - tile * config.pes)


def channels_per_word(syn: Synapse, config: SIAConfig) -> int:
    return config.stream_bits // 8 if syn.source == IMAGE else config.stream_bits


def words_per_channel_word(syn: Synapse) -> int:
    """Buffer words per word of channels: 2 in a sign pair (its +1 and -1 word), else 1."""
    return 2 if syn.plane == PAIR else 1


def phase(syn: Synapse, program: Program, config: SIAConfig) -> bool:
    """Is the group (as in the program, not `scan_synapse`'s view) scanned in phase pairs
    on this build (`regmap.phase_pair`)?"""
    return regmap.phase_pair(syn, program.source_shape(syn.source), config)


def quad(syn: Synapse, program: Program, config: SIAConfig) -> bool:
    """Is the group (as in the program) scanned in phase quads on this
    build (`regmap.phase_quad`)? A quad group is a phase group too (`phase`)."""
    return regmap.phase_quad(syn, program.source_shape(syn.source), config)


def sets_per_cycle(syn: Synapse, program: Program, config: SIAConfig) -> int:
    """Event sets one dispatch cycle takes E events from: 4 (phase quad), 2 (phase pair), 1."""
    return 4 if quad(syn, program, config) else 2 if phase(syn, program, config) else 1


def in_drain(syn: Synapse, layer, config: SIAConfig) -> bool:
    """Is the group (as in the program) the identity shortcut the aggregation core adds
    while it drains (`regmap.drain_group`)? The dispatcher then never scans it."""
    j = regmap.drain_group(layer, config)
    return j is not None and layer.inputs[j] is syn


def scan_synapse(syn: Synapse) -> Synapse:
    """The group as the dispatcher scans it (`regmap.decimation`: stride 1 over the view)."""
    return dataclasses.replace(syn, stride=1) if regmap.decimation(syn) > 1 else syn


def scan_view(syn: Synapse, x):
    """`scan_synapse` and its source maps [..., H, W] (tensor or array) as scanned: a
    spike plane's 0/1 map (`sia.hw.planes.plane_map`), decimated groups their view."""
    x = plane_map(syn, x)
    d = regmap.decimation(syn)
    return (syn, x) if d == 1 else (scan_synapse(syn), x[..., ::d, ::d])


def scan_shape(syn: Synapse, shape) -> tuple[int, int, int]:
    """(C, H, W) of the source as scanned (`scan_view`)."""
    c, h, w = shape
    d = regmap.decimation(syn)
    return c, ceil_div(h, d), ceil_div(w, d)


def r_end(syn: Synapse, hp: int, oy: int) -> int:
    """Pooled source rows [r_end(oy-1), r_end(oy)) are scanned before output row oy
    is drained: every row the row oy reaches, and no row a later output row needs first."""
    if oy < 0:
        return 0
    if syn.op == "dense":
        return hp
    if syn.op == "identity":
        return min(oy + 1, hp)
    return max(0, min(hp, oy * syn.stride + syn.kernel[0] - syn.padding))


def plane_issue(syn: Synapse, config: SIAConfig) -> bool:
    """E = 4 image words: one cycle's events share a bit plane b, so each PE shifts its
    pre-added tap sums once instead of shifting every event's weights (36 shifters)."""
    return syn.source == IMAGE and timing.plane_issue(config.events_per_cycle)


def plane_counts(syn: Synapse, x: torch.Tensor, config: SIAConfig) -> torch.Tensor | None:
    """Image words: set bits of each bit plane over the word's pixels [1,B,nw,8,H,W]
    (None for spike words), what `word_cost` needs under plane issue."""
    if syn.source != IMAGE:
        return None
    per = channels_per_word(syn, config)
    bits = torch.stack([(x.to(torch.int32) >> b) & 1 for b in range(8)], 2)   # [B,C,8,H,W]
    c = bits.shape[1]
    nw = ceil_div(c, per)
    if c % per:
        bits = torch.cat([bits, bits.new_zeros(bits.shape[0], nw * per - c, *bits.shape[2:])], 1)
    return bits.reshape(bits.shape[0], nw, per, *bits.shape[2:]).sum(2, dtype=torch.int32)[None]


def word_cost(words: torch.Tensor, E: int, planes: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch cycles of each word: max(1, ceil(n / E)); plane issue: max(1, sum_b ceil(n_b / E))."""
    if planes is None or not timing.plane_issue(E):
        return torch.clamp(ceil_div(words, E), min=1)
    return torch.clamp(ceil_div(planes, E).sum(3), min=1)


def word_counts(syn: Synapse, x: torch.Tensor, lo: int, hi: int, config: SIAConfig) -> torch.Tensor:
    """Set bits per spike-buffer word of channels [lo, hi): image uint8 [B,C,H,W] ->
    [1,B,nw,H,W]; spikes [T,B,C,H,W] -> [T,B,nw,H,W]."""
    if syn.plane == PAIR:   # a sign pair (one word of channels): its +1 word, its -1 word
        one = dataclasses.replace(syn, plane=0)
        return torch.cat([word_counts(one, (x == v).to(torch.uint8), lo, hi, config)
                          for v in (1, -1)], 2)
    per = channels_per_word(syn, config)
    if syn.source == IMAGE:
        x = _POPCOUNT[x[:, lo:hi].long()][None]
    else:
        x = x[:, :, lo:hi]
    c = hi - lo
    nw = ceil_div(c, per)
    if nw == 1:
        return x.sum(2, keepdim=True, dtype=torch.int32)
    if c % per:
        x = torch.cat([x, x.new_zeros(*x.shape[:2], nw * per - c, *x.shape[3:])], 2)
    return x.reshape(*x.shape[:2], nw, per, *x.shape[3:]).sum(3, dtype=torch.int32)


def group_words(program: Program, layer: Layer, syn: Synapse, x, tile: int,
                config: SIAConfig) -> torch.Tensor:
    """The words a launch's group scans' sources hold (identity: the tile's slice)."""
    c = program.source_shape(syn.source)[0]
    if syn.op == "identity":
        lo = tile * config.pes
        return word_counts(syn, x, lo, lo + active_pes(layer, tile, config), config)
    return word_counts(syn, x, 0, c, config)


def scanned(syn: Synapse, words: torch.Tensor, h_out: int) -> torch.Tensor:
    """The source rows of the words that are ever scanned: pooled rows < r_end(H_out-1)."""
    p = syn.pool
    hp = words.shape[-2] // p
    return words[..., :r_end(syn, hp, h_out - 1) * p, :]


def phase_units(region: torch.Tensor) -> torch.Tensor:
    """Phase pairs (`regmap.phase_pair`): the scanned words [T',B,nw,R,W] as units
    (word w of column pair X) holding two words, columns 2X and 2X+1: [T',B,nw,R,W/2,2]."""
    t, b, nw, rows, w = region.shape
    return region.reshape(t, b, nw, rows, w // 2, 2)


def quad_units(region: torch.Tensor) -> torch.Tensor:
    """Phase quads (`regmap.phase_quad`): the scanned words [T',B,nw,R,W] as units (word w
    of row pair Y and column pair X) holding four words, positions (2Y + i, 2X + j) in
    (i, j) order: [T',B,nw,R/2,W/2,4]."""
    t, b, nw, rows, w = region.shape
    return (region.reshape(t, b, nw, rows // 2, 2, w // 2, 2).permute(0, 1, 2, 3, 5, 4, 6)
            .reshape(t, b, nw, rows // 2, w // 2, 4))


def sign_units(region: torch.Tensor) -> torch.Tensor:
    """Sign pairs (`sia.hw.planes.sign_pair`): the scanned words [T',B,2,R,W] (each
    position's +1 word, then its -1 word) as units [T',B,1,R,W,2]."""
    return region.permute(0, 1, 3, 4, 2)[:, :, None]


def unit_costs(region: torch.Tensor, E: int, planes: torch.Tensor | None = None,
               phase: bool = False, signs: bool = False) -> torch.Tensor:
    """Dispatch cycles of each issue unit: `word_cost`; a phase pair (quad) takes up to E
    events from each of its two (four) words per cycle: max(1, max over words of
    ceil(n_word / E)) (region [..., 2] or [..., 4]); a sign pair issues its +1 events,
    then its -1 events: max(1, ceil(n+ / E) + ceil(n- / E)) (region [..., 2])."""
    if signs:
        return torch.clamp(ceil_div(region, E).sum(-1), min=1)
    if phase:
        return torch.clamp(ceil_div(region, E).amax(-1), min=1)
    return word_cost(region, E, planes)


def issue_units(syn: Synapse, region: torch.Tensor) -> torch.Tensor:
    """Set bits per issue unit of the scanned words [T',B,nw,R,W] -> [T',B,U,R,W//p].
    A spike group's words are issued in pairs: the words of pooled column x and pool
    row i are one run, p*nw words at consecutive addresses (pool columns j, words w),
    read two per cycle from the even/odd halves of the spike buffer, so the dispatcher
    takes events of both words in one cycle; a run of odd length ends with a single
    word (= a pair with an empty partner). Image groups: one word per unit."""
    if syn.source == IMAGE:
        return region
    t, b, nw, rows, w = region.shape
    p = syn.pool
    wp = w // p
    run = (region[..., :wp * p].reshape(t, b, nw, rows, wp, p)
           .permute(0, 1, 3, 4, 5, 2).reshape(t, b, rows, wp, p * nw))
    if run.shape[-1] % 2:
        run = torch.nn.functional.pad(run, (0, 1))
    return run.reshape(t, b, rows, wp, -1, 2).sum(-1).permute(0, 1, 4, 2, 3)


def word_hist(region: torch.Tensor) -> torch.Tensor:
    """[T',B,M]: how many scanned words of each (t, image) hold n = 0..M-1 set bits
    (one bincount pass over the region instead of one pass per statistic)."""
    tb = region.shape[0] * region.shape[1]
    m = int(region.max()) + 1 if region.numel() else 1
    off = torch.arange(tb, dtype=torch.int64).view(*region.shape[:2], 1, 1, 1) * m
    h = torch.bincount((region + off).flatten(), minlength=tb * m)
    return h.view(*region.shape[:2], m)


def dispatch(hist: torch.Tensor, E: int) -> dict[str, torch.Tensor]:
    """Per [T',B] from word_hist: cycles issuing events, empty-word cycles, events."""
    n = torch.arange(hist.shape[-1], dtype=torch.int64)
    return {"accumulate": (hist * ceil_div(n, E)).sum(-1),
            "dispatch_empty": hist[..., 0],
            "events": (hist * n).sum(-1)}


def holds(syn: Synapse, config: SIAConfig) -> bool:
    """Pool hold (build option `pool_hold`): does this group's pooled position pass a
    unit's last < E events on to the next unit? Spike groups with a pool only."""
    return config.pool_hold and syn.source != IMAGE and syn.pool > 1


def held_costs(region: torch.Tensor, E: int, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool hold: dispatch cycles and empty units per pooled position [T',B,R,X] of the
    issue units [T',B,U,R*p,X] (`issue_units`). In scan order (pool rows i, then the
    units of each run), with h events held in and A = h + n: a unit that is not the
    position's last costs max(1, floor(A / E)) and holds A mod E out if A >= E (else
    none: it issues all A); the last costs max(1, ceil(A / E)). Empty: A = 0."""
    t, b, u, rows, cols = region.shape
    seq = (region.reshape(t, b, u, rows // p, p, cols).permute(0, 1, 3, 5, 4, 2)
           .reshape(t, b, rows // p, cols, p * u).to(torch.int64))
    held = torch.zeros_like(seq[..., 0])
    cost, empty = torch.zeros_like(held), torch.zeros_like(held)
    for k in range(p * u):
        a = held + seq[..., k]
        empty += a == 0
        if k < p * u - 1:
            cost += torch.clamp(a // E, min=1)
            held = torch.where(a >= E, a % E, 0)
        else:
            cost += torch.clamp(ceil_div(a, E), min=1)
    return cost, empty


def scan_stats(syn: Synapse, words: torch.Tensor, h_out: int, E: int,
               planes: torch.Tensor | None = None, phase: bool = False,
               hold: bool = False, quad: bool = False, period: int | None = None,
               resume: bool = False) -> dict[str, torch.Tensor]:
    """`dispatch` of the units a group scans (plane issue: from the per-plane counts;
    phase pairs and quads: `unit_costs`; pool hold (`holds`): `held_costs`), per step
    [T', B]; a -1 plane's steps the dispatcher skips (`first_step_skip`) count 0."""
    d = _scan_stats(syn, words, h_out, E, planes, phase, hold, quad)
    return {k: first_step_skip(syn, v, period, resume) for k, v in d.items()}


def first_step_skip(syn: Synapse, x: torch.Tensor, period: int | None = None,
                    resume: bool = False) -> torch.Tensor:
    """Per-step counts [T', ...] of group `syn` with the steps the dispatcher does not
    scan set to 0 (`sia.hw.planes.unscanned_steps`: a -1 plane at each image's first
    step; period = steps per image, default T' - one image's steps; resume: a later
    chunk of a split image)."""
    steps = unscanned_steps(syn.plane < 0, x.shape[0], period or x.shape[0], resume)
    if not steps:
        return x
    x = x.clone()
    x[steps] = 0
    return x


def _scan_stats(syn, words, h_out, E, planes, phase, hold, quad) -> dict[str, torch.Tensor]:
    if hold:
        region = issue_units(syn, scanned(syn, words, h_out))
        cost, empty = held_costs(region, E, syn.pool)
        return {"accumulate": (cost - empty).sum((2, 3), dtype=torch.int64),
                "dispatch_empty": empty.sum((2, 3), dtype=torch.int64),
                "events": region.sum((2, 3, 4), dtype=torch.int64)}
    if syn.plane == PAIR:
        region = sign_units(scanned(syn, words, h_out))
        cost, n = unit_costs(region, E, signs=True), region.sum(-1)
    elif phase or quad:
        region = (quad_units if quad else phase_units)(scanned(syn, words, h_out))
        cost, n = unit_costs(region, E, phase=True), region.sum(-1)
    else:
        region = issue_units(syn, scanned(syn, words, h_out))
        if planes is None or not timing.plane_issue(E):
            return dispatch(word_hist(region), E)
        cost, n = word_cost(region, E, scanned(syn, planes, h_out)), region
    empty = n == 0
    return {"accumulate": (cost * ~empty).sum((2, 3, 4), dtype=torch.int64),
            "dispatch_empty": empty.sum((2, 3, 4), dtype=torch.int64),
            "events": n.sum((2, 3, 4), dtype=torch.int64)}


def pooled_events(syn: Synapse, words: torch.Tensor) -> torch.Tensor:
    """Events per pooled position [T',B,Hp,Wp] (what the taps multiply)."""
    n = words.sum(2)
    p = syn.pool
    if p > 1:
        *lead, h, w = n.shape
        n = n.reshape(*lead, h // p, p, w // p, p).sum((-3, -1))
    return n


def taps_map(syn: Synapse, hp: int, wp: int) -> torch.Tensor:
    """Valid taps (outputs reached) of one event per pooled position (dense/identity: 1)."""
    if syn.op != "conv":
        return torch.ones(hp, wp, dtype=torch.int64)
    return fanout_map(syn, (hp, wp), 1).round().to(torch.int64)


def _stream_sizes(program: Program, i: int, config: SIAConfig, tile: int) -> list[int]:
    """Input-map beats per (group, timestep) of one launch (image groups: all of it;
    decimated groups: their view, `scan_shape`)."""
    layer = program.layers[i]
    out = []
    for s in layer.inputs:
        c, h, w = scan_shape(s, program.source_shape(s.source))
        if s.op == "identity":
            c = active_pes(layer, tile, config)
        out.append(h * w * ceil_div(c, channels_per_word(s, config)) * words_per_channel_word(s))
    return out


def stream_in_beats(program: Program, i: int, config: SIAConfig, T: int, tile: int = 0) -> int:
    steps = 1 if is_image_layer(program.layers[i]) else T
    return steps * sum(_stream_sizes(program, i, config, tile))


def stream_need(program: Program, i: int, config: SIAConfig, T: int,
                tile: int = 0) -> list[list[int]]:
    """Input-map beats that must have arrived before output row oy of timestep t may
    start [t][oy] (`regmap.row_need`): the input streams in while the launch computes
    (step t of every group, then step t+1; image layers: the image once), and each
    row waits only for the source rows it scans."""
    groups, _, beats = regmap._groups(program, i, tile, config, T)
    steps = 1 if is_image_layer(program.layers[i]) else T
    need = regmap.row_need(groups, steps, program.layers[i].shape[1], beats // steps)
    # need counts buffer words; narrow streams deliver several per beat
    return regmap.need_beats(groups, need).tolist()


def row_dispatch(syn: Synapse, words: torch.Tensor, h_out: int, E: int,
                 planes: torch.Tensor | None = None, phase: bool = False,
                 hold: bool = False, quad: bool = False, period: int | None = None,
                 resume: bool = False) -> torch.Tensor:
    """Dispatch cycles per (t, image, output row) [T', B, H_out] of one group: the words
    of pooled source rows [r_end(oy-1), r_end(oy)), each issue unit `unit_costs` (pool
    hold: each pooled position `held_costs`; phase quads: a row pair's units are counted
    at its first row - every r_end of a quad group is even); 0 at the steps the
    dispatcher skips (`first_step_skip`)."""
    p = syn.pool
    signs = syn.plane == PAIR
    if quad:
        region = quad_units(scanned(syn, words, h_out))      # [T', B, nw, rows/2, pairs, 4]
    elif signs:
        region = sign_units(scanned(syn, words, h_out))      # [T', B, 1, rows, cols, 2]
    elif phase:
        region = phase_units(scanned(syn, words, h_out))     # [T', B, nw, rows, pairs, 2]
    else:
        region = issue_units(syn, scanned(syn, words, h_out))   # [T', B, units, rows*p, cols]
    planes = None if planes is None else scanned(syn, planes, h_out)
    if hold:
        cost = held_costs(region, E, p)[0].sum(-1)             # per pooled row
    elif quad:
        cost = unit_costs(region, E, phase=True).sum((2, 4), dtype=torch.int64)
        cost = torch.stack([cost, torch.zeros_like(cost)], -1).flatten(-2)   # per source row
    else:
        cost = (unit_costs(region, E, signs=True) if signs else
                unit_costs(region, E, planes, phase)).sum((2, 4), dtype=torch.int64)
        cost = cost.reshape(*cost.shape[:2], -1, p).sum(-1)     # per pooled row
    cum = torch.nn.functional.pad(cost.cumsum(-1), (1, 0))
    hp = words.shape[-2] // p
    ends = torch.tensor([r_end(syn, hp, oy) for oy in range(-1, h_out)])
    return first_step_skip(syn, cum[..., ends[1:]] - cum[..., ends[:-1]], period, resume)


def no_dispatch(words: torch.Tensor, h_out: int) -> torch.Tensor:
    """`row_dispatch` of a group the dispatcher never scans (identity in the drain):
    zero cycles per (t, image, output row) [T', B, H_out]."""
    return torch.zeros(*words.shape[:2], h_out, dtype=torch.int64)


def floor_cycles(issue: float, E: int, T: int, out_hw, tiles: int) -> float:
    """A layer's fewest cycles per image under the design's two invariants
    (`report.cycles_floor`): `issue` = its events per image, each divided by its group's
    k (`sets_per_cycle`: 2 in phase-pair groups, 4 in phase quads), issued E per cycle; one drained position per cycle, T
    times per output position of every tile."""
    h, w = out_hw
    return max(issue / E, float(T * h * w * tiles))


def drain_cycles(layer: Layer, T: int) -> int:
    """Cycles the aggregation core spends on one output row (image layers: all T steps)."""
    return (T if is_image_layer(layer) else 1) * layer.shape[2]


def loop_constant(program: Program, i: int, T: int) -> int:
    """The dispatcher's data-independent cycles of one launch: C_STEP per timestep and
    C_ROW per row (image layers: one step)."""
    layer = program.layers[i]
    steps = 1 if is_image_layer(layer) else T
    return steps * (timing.C_STEP + layer.shape[1] * timing.C_ROW)


NEVER = -(1 << 40)


def overlap(need: list[list[int]], d: torch.Tensor, wdrain: int,
            prefetch: bool = True, slots: int = 4) -> dict[str, torch.Tensor]:
    """The compute span of one launch (docs/architecture.md, "Cycle model"): the
    dispatcher runs timestep t's STEP, then each row g (ROW_PRE, dispatch d) once row
    g-2 is drained (4 psum slots) and need[t][oy] input beats are in; the aggregation
    core drains row g (wdrain cycles) once it is handed over (C_HAND cycles after its
    dispatch: its last accumulates land first) and row g-1 is drained. d: dispatch cycles [T', H, B]. Returns [B] tensors: span (first STEP
    cycle to the cycle after the last drain), wait (ROW_PRE cycles waiting for input
    only) and per_t [T', B] (span per timestep without the waits; the last holds the
    final drain) and prefetched [B] (rows whose ROW_PRE was hidden: a row whose
    conditions already hold in the last dispatch cycle of the row before it, same
    step, both scanning something, starts right after it; builds with row_prefetch).
    slots: psum row slots; a row waits for row g - (slots - 2) drained."""
    steps, rows = d.shape[:2]
    e = torch.zeros(d.shape[2:], dtype=torch.int64)
    des = [torch.full_like(e, NEVER) for _ in range(slots - 2)]   # rows g-1 .. g-K drained
    wait = torch.zeros_like(e)
    prefetched = torch.zeros_like(e)
    per_t = torch.zeros(d.shape[0], *d.shape[2:], dtype=torch.int64)
    for t in range(steps):
        t0, wt = e, torch.zeros_like(e)
        e = e + timing.C_STEP
        prev = torch.zeros_like(e, dtype=torch.bool)
        for oy in range(rows):
            dd, free = d[t, oy], des[-1]      # free: row g-K drained, its psum slot free
            pre = prev & (dd > 0) & (torch.clamp(free, min=need[t][oy]) <= e - 1) & prefetch
            s = torch.maximum(e, free)
            w = torch.where(pre, 0, torch.clamp(need[t][oy] - s, min=0))
            wt = wt + w
            e = torch.where(pre, e + dd, s + w + timing.C_ROW + dd)
            prefetched = prefetched + pre
            prev = dd > 0
            des = [torch.maximum(e + timing.C_HAND, des[0]) + wdrain] + des[:-1]
        wait = wait + wt
        per_t[t] = e - t0 - wt
    per_t[-1] += des[0] - e
    return {"span": des[0], "wait": wait, "per_t": per_t, "prefetched": prefetched}


def static_phases(program: Program, i: int, config: SIAConfig, T: int,
                  tile: int = 0, keep: bool = False) -> dict[str, int]:
    """The data-independent cycles of one launch (dispatch phases are 0).
    keep: a resident-weight launch (no weight / neuron-parameter beats)."""
    layer = program.layers[i]
    P, sb = config.pes, config.stream_bits
    _, ho, wo = layer.shape
    image = is_image_layer(layer)
    if layer.kind == "if":   # streamed during compute: only the tail after the last drain
        stream_out = timing.C_OUT_TAIL
    else:
        stream_out = ho * wo * ceil_div(P * config.v_bits, sb)
    loop = timing.C_STEP + ho * timing.C_ROW
    return {"header_load": regmap.header_beats(len(layer.inputs)),
            "weight_load": 0 if keep else ceil_div(weight_rows(program, layer) * P * config.taps
                                                   * regmap.weight_stream_bits(program, i, config),
                                                   sb),
            "param_load": 0 if keep else ceil_div(P * 3 * config.v_bits, sb),
            # the input maps stream in while computing: the exposed part (stream_wait)
            # depends on the data and is added by the model
            # so does the drain (the aggregation core runs beside the dispatcher): its
            # exposed part, "aggregate", is added by the model too
            "stream_in": 0, "accumulate": 0, "dispatch_empty": 0,
            "aggregate": 0, "stall": timing.C_LAUNCH + (1 if image else T) * loop,
            "stream_out": stream_out}


def compute_cycles(phases: dict) -> float:
    """Cycles between stream-in and stream-out: dispatch + drain + in-loop stalls
    (the denominator of PE utilisation)."""
    return (phases["accumulate"] + phases["dispatch_empty"] + phases["aggregate"]
            + phases["stall"] - timing.C_LAUNCH)


def memory_static(program: Program, i: int, config: SIAConfig, T: int,
                  tile: int = 0) -> dict[str, int]:
    """Data-independent accesses of one launch, in each memory's own word (see docs)."""
    layer = program.layers[i]
    _, ho, wo = layer.shape
    image = is_image_layer(layer)
    pos = ho * wo
    scan = shortcut = 0
    for s in layer.inputs:
        if in_drain(s, layer, config):   # the aggregation core reads it, once per output
            shortcut += T * pos
            continue
        c, h, w = scan_shape(s, program.source_shape(s.source))
        s = scan_synapse(s)
        if s.op == "identity":
            c = active_pes(layer, tile, config)
        rows = r_end(s, h // s.pool, ho - 1) * s.pool
        steps = 1 if image else T - len(unscanned_steps(s.plane < 0, T, T))   # an image's T
        scan += (steps * rows * w * ceil_div(c, channels_per_word(s, config))
                 * words_per_channel_word(s))
    reads = [sum(pos for t in range(1, T) if t % 2 == b) for b in (0, 1)]   # t = 0 reads v_init
    writes = [sum(pos for t in range(T) if (t + 1) % 2 == b) for b in (0, 1)]
    if layer.kind == "integrator":
        reads[T % 2] += pos   # the final membranes are streamed out
    spikes_out = T * pos if layer.kind == "if" else 0
    return {"weight_writes": weight_rows(program, layer) * config.pes,
            "spike_in_writes": stream_in_beats(program, i, config, T, tile),
            "spike_in_reads": scan, "shortcut_reads": shortcut, "psum_drain_reads": T * pos,
            "membrane_a_reads": reads[0], "membrane_a_writes": writes[0],
            "membrane_b_reads": reads[1], "membrane_b_writes": writes[1],
            "spike_out_writes": spikes_out, "spike_out_reads": spikes_out,
            "stream_out_beats": (spikes_out * ceil_div(config.pes, config.stream_bits)
                                 if layer.kind == "if" else
                                 pos * ceil_div(config.pes * config.v_bits, config.stream_bits))}

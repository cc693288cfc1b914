"""SIA host interface: AXI4-Lite register map and the AXI4-Stream tile-packet format.

The single source of truth for the RTL (sia/hw/rtl), the program-image packer and the
PYNQ driver (sia/deploy). Everything here is pure Python (numpy only).

One launch = one (layer, tile of P output channels). The host writes CTRL.START, then
streams one *tile packet* (64-bit beats, TLAST on the last beat) into the input
AXI4-Stream and reads the tile's output packet from the output AXI4-Stream.

Tile packet (all multi-bit fields little-endian, two's complement where signed):

  Resident weights (interface 1.1): a header with `keep` = 1 is followed directly by
  section 4; the PEs reuse the weights and neuron params of the previous launch (the
  host sends the same tile for a batch of images, the first with keep = 0).

  Packed launches (interface 1.3): one launch may carry k images of a spiking-input
  if-layer (`timesteps` = k*T steps, `period` = T): section 4 holds the images one
  after the other (image b's step t is step b*T + t of the launch) and the membranes
  restart from v_init every `period` steps; the output packet likewise holds the k
  images' outputs in order. k is bounded by the buffers (`launch_images`); image
  layers and integrators run one image per launch (period = timesteps). Compatibility:
  a 1.3 packet of one image runs on a 1.2 build (the field's bits were unused); a 1.2
  packet (period = 0) is refused by a 1.3 build (error code 2).

  Phase pairs (interface 1.4): on builds with `phase_pairs` (PARAM_PHASE_PAIRS = 1), a
  stride-2 3x3 conv group or a one-tap group (`phase_pair`) carries the descriptor bit `phase` and
  pair-interleaved maps (section 4); other builds refuse it (error code 2). A packet
  without phase groups is the same as in 1.3.

  Identity in the drain (interface 1.5): on builds with `identity_drain`
  (PARAM_IDENTITY_DRAIN = 1), a layer's identity shortcut (`drain_group`) is group 0
  with the descriptor bit `drain`: its maps stream first in every step (raster order,
  the tile's slice, one beat per position) and its weight row is row 0; the dispatcher
  skips it and the aggregation core adds w[p] * s[p] of the drained position's word.
  Other builds, or a `drain` bit on any other group, are refused (error code 2).

  Pool hold (interface 1.6): PARAM_POOL_HOLD = 1 builds issue a pooled position's
  events with fewer cycles (a unit's last < E events wait for the next unit's first
  cycle); packets and results are those of 1.5, only CYCLES differs.

  Phase quads (interface 1.7): on builds with `phase_quads` (PARAM_PHASE_QUADS = 1), a
  stride-2 3x3 phase group whose source height is even too (`phase_quad`) also carries
  the descriptor bit `quad` and quad-interleaved maps (section 4); its descriptor counts
  row pairs (hp, reach, prow_stride) and column pairs (wp, pstride), nw = 4 x words per
  position, and its row schedule advances one row pair per output row. Other builds
  refuse it (error code 2).

  Narrow streams (interface 1.8): on builds with `narrow_stream` (PARAM_NARROW_STREAM =
  1), a spike group of C <= 32 channels (`stream_positions`) carries `npos` = log2 k
  (k = 4 for C <= 16, 2 for C <= 32): each input beat of its map holds k consecutive
  buffer words of 64 / k bits each (word i in bits [i*64/k, (i+1)*64/k)), and every
  (step, group) segment starts on a new beat (its last beat may hold fewer words). The
  descriptor's addresses (base, tstride, strides) still count buffer words; the
  header's `sbeats` counts beats. Other builds refuse `npos` > 0 (error code 2).

  Signed spikes (interface 1.9): on builds with `signed_count_bits` = K > 0
  (PARAM_SIGNED_COUNT_BITS = K), a layer with signed IF neurons carries the layer bit
  `signed` (at most 2^K - 1 steps per image, `period`), and each synapse group of a
  signed source is two groups (`sia.hw.planes`): its +1 plane, then its -1 plane with
  the group bit `neg` (its events add -w) and the +1 plane's `wrow` (its weight rows are
  not sent again); both planes' maps are 0/1 spike maps as below. A signed layer's
  output word holds the +1 spikes in bits [0, P) and the -1 spikes in bits [P, 2P)
  (K > 0 needs P <= 32). Other builds refuse `signed` and `neg` (error code 2).

  Split launches (interface 1.10): a spiking-input layer whose T steps of input maps do
  not fit the buffers runs each image as launches of fewer steps (`launch_chunks`: an
  even number each, the last one shorter); every launch after the first carries the
  layer bit `resume` (its membranes and net counts go on from the previous launch, which
  must be the chunk before it: same layer, tile and image; its weights are resident,
  `keep`) and only its own steps' maps and outputs. `resume` on an image layer or a
  packed launch is refused (error code 2). A 1.9 build reads the bit as 0 (it would
  restart the membranes): the driver refuses to split launches on builds before 1.10.

  First-step skip (interface 1.11, CYCLES only): at an image's first step (step 0,
  period, 2*period, ... of a launch that does not `resume`) the dispatcher skips every
  `neg` group: a -1 plane is empty there (`sia.hw.planes.unscanned_steps`), so only the
  cycle count changes; the maps are streamed as before.

  Sign pairs (interface 1.12): on builds with signed neurons, a signed source's group
  whose positions fit one word and that has no pool and no phase pair
  (`sia.hw.planes.sign_pair`) is one group with the bit `spair`: per position its +1 word
  and then its -1 word (`nw` = 2, one run), read as one issue unit; the dispatcher issues
  the +1 events, then the -1 events (one sign per cycle), both on the group's weight rows
  (channel = bit index). A 1.11 build would read the -1 word as channels 64..127: the
  driver refuses sign pairs on builds before 1.12; builds without signed neurons refuse
  `spair` (error code 2).

  Signed identity drain (interface 1.13): on builds with signed neurons and
  `identity_drain`, the drain group may be a sign pair (`drain` and `spair`: per position
  the tile slice's +1 word, then its -1 word); the aggregation core adds w[p] for a set
  bit p of the +1 word and -w[p] for one of the -1 word. A 1.12 build would add the -1
  word's bits as the next position's +1 spikes: the driver refuses drained sign pairs on
  builds before 1.13; a -1 plane (`neg`) is never drained (error code 2).

  1. header: LAYER_BEATS beats of layer descriptor + GROUP_BEATS beats per synapse
     group (fields and positions: LAYER_FIELDS / GROUP_FIELDS, packed LSB-first,
     in order, a field never straddles a beat).
  2. weights: for each weight row (groups in order, group g's rows start at its
     `wrow` field), for each PE p = 0..P-1, one word of 9 taps x wb bits
     (tap k = ky*3+kx at bits [k*wb, (k+1)*wb)). The words are concatenated into one
     LSB-first bit stream cut into 64-bit beats; the last beat is zero padded.
     wb = weight_bits, or weight_bits / 2 when `wnarrow` is set (`narrow_weights`:
     every group's weights fit half the width, e.g. 4-bit hidden layers on an 8-bit
     build): the loader then splits each 9*weight_bits-bit memory word into the words
     of PEs p and p+1 and sign-extends their taps, so the weight stream is half as long.
       conv:     row c          -> w[tile*P+p, c, ky, kx]
       dense:    row pos*C + c  -> w[tile*P+p, c*Hp*Wp + pos]  (pos = pooled y*Wp+x, tap 0)
       identity: one row        -> w[tile*P+p]                 (tap 0)
       a one-tap phase group (`one_tap`, `phase_pair`) repeats its tap-0 weight in tap 1
  3. neuron params: for p = 0..P-1 one word threshold | bias << vb | v_init << 2vb
     (vb = v_bits bits each), one LSB-first bit stream, zero padded.
  4. input maps, interleaved by timestep: for t, for each group g (step t of group g
     starts at beat `base + t * tstride` of this section, tstride = the beats of one
     step of all groups):
       spikes: for each source position (raster), ceil(C/64) beats;
               bit c of the position's bit string = spike of channel c.
               identity groups send only the tile's channel slice (bit p = channel tile*P+p);
               a decimated group (`decimation`) only every d-th row and column;
               a phase group (`phase_pair`, interface 1.4) per row, per column pair X,
               per word w the words of columns 2X and 2X+1 (pair-interleaved);
               a quad group (`phase_quad`, interface 1.7) per row pair Y, per column
               pair X, per word w the words of (2Y, 2X), (2Y, 2X+1), (2Y+1, 2X),
               (2Y+1, 2X+1) (quad-interleaved);
               a sign pair (`spair`, interface 1.12) per position the word of its +1
               spikes, then the word of its -1 spikes.
       image:  once, for each source position, ceil(8*C/64) beats; byte c = pixel channel c.
Output packet (streamed while the launch computes, in drain order):
  if-layer:    for t, for each output position (raster), ceil(P/64) beats; bit p = spike
               of channel tile*P+p. Image layers (interface 1.1): for each output row y,
               for t, for each x of the row (the image current is computed once per row
               and all T steps of that row are drained together).
  integrator:  for each output position, ceil(P*vb/64) beats: the LSB-first bit stream of
               the P final membranes (vb-bit two's complement) after T timesteps.
"""

from dataclasses import dataclass

import numpy as np

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.hw.planes import PAIR, check_signed, hardware_view, plane_map
from sia.program.format import IMAGE, Program

BEAT_BITS = 64
ID_MAGIC = 0x53494131          # "SIA1"
VERSION = 0x0001_000D          # major.minor = 1.13 (1.1: resident-weight launches, `keep`;
                               # 1.2: PARAM_MEMBRANE_POSITIONS; 1.3: packed launches, `period`,
                               # narrow weight streams, `wnarrow`; 1.4: phase pairs, group
                               # field `phase`, PARAM_PHASE_PAIRS; 1.5: identity in the
                               # drain, group field `drain`, PARAM_IDENTITY_DRAIN; row
                               # prefetch, PARAM_ROW_PREFETCH, and PARAM_PSUM_SLOTS: CYCLES
                               # only; 1.6: pool hold, PARAM_POOL_HOLD: CYCLES only;
                               # 1.7: phase quads, group field `quad`, PARAM_PHASE_QUADS;
                               # 1.8: narrow streams, group field `npos`,
                               # PARAM_NARROW_STREAM; 1.9: signed spikes, layer field
                               # `signed`, group field `neg`, PARAM_SIGNED_COUNT_BITS;
                               # 1.10: split launches, layer field `resume`; 1.11: -1
                               # planes skipped at an image's first step: CYCLES only;
                               # 1.12: sign pairs, group field `spair`; 1.13: a signed
                               # identity drained as a sign pair, `drain` + `spair`)
HDR_MAGIC = 0x51A              # first 12 bits of every tile packet
MAX_GROUPS = 4
OPS = {"conv": 0, "dense": 1, "identity": 2}
KINDS = {"if": 0, "integrator": 1}

# ---------------------------------------------------------------- AXI4-Lite registers
# name: (byte offset, access, description)
REGISTERS = {
    "ID":           (0x00, "ro", "magic 0x53494131 ('SIA1')"),
    "VERSION":      (0x04, "ro", "interface version, major << 16 | minor"),
    "CTRL":         (0x08, "wo", "bit0 START (self-clearing): begin a launch; "
                                 "bit1 SOFT_RESET (self-clearing): abort, back to idle"),
    "STATUS":       (0x0C, "ro", "bit0 BUSY, bit1 DONE (until next START), bit2 ERROR, "
                                 "bits[15:8] ERROR_CODE"),
    "CYCLES_LO":    (0x10, "ro", "clock cycles of the last launch, START to last output beat"),
    "CYCLES_HI":    (0x14, "ro", ""),
    "SOPS_LO":      (0x18, "ro", "spike-driven accumulates of the last launch (1 op = 1 acc)"),
    "SOPS_HI":      (0x1C, "ro", ""),
    "IMAGE_OPS_LO": (0x20, "ro", "image (bit-serial) accumulates of the last launch"),
    "IMAGE_OPS_HI": (0x24, "ro", ""),
}
CTRL_START, CTRL_SOFT_RESET = 1 << 0, 1 << 1
STATUS_BUSY, STATUS_DONE, STATUS_ERROR = 1 << 0, 1 << 1, 1 << 2
ERROR_CODES = {0: "none", 1: "bad header magic", 2: "descriptor out of range for this build",
               3: "keep=1 but no weights are resident (none loaded since reset / error)"}
PARAMS_BASE = 0x40
# read-only PARAMS registers, one 32-bit word each from PARAMS_BASE, in this order
PARAM_NAMES = ["pes", "events_per_cycle", "taps", "weight_bits", "acc_bits", "v_bits",
               "max_channels_in", "max_width", "max_height", "max_timesteps", "stream_bits",
               "clock_khz", "max_groups", "in_buffer_beats", "out_buffer_beats",
               "membrane_positions", "phase_pairs", "identity_drain", "row_prefetch",
               "psum_slots", "pool_hold", "phase_quads", "narrow_stream", "signed_count_bits"]
# the interface version that added each later PARAMS register (older bitstreams lack it)
PARAM_SINCE = {"membrane_positions": "1.2", "phase_pairs": "1.4", "identity_drain": "1.5",
               "row_prefetch": "1.5", "psum_slots": "1.5", "pool_hold": "1.6",
               "phase_quads": "1.7", "narrow_stream": "1.8", "signed_count_bits": "1.9"}
for _i, _n in enumerate(PARAM_NAMES):
    REGISTERS[f"PARAM_{_n.upper()}"] = (
        PARAMS_BASE + 4 * _i, "ro",
        f"SIAConfig / build: {_n}" + (f" (interface {PARAM_SINCE[_n]})" if _n in PARAM_SINCE else ""))


def buffer_beats(cfg: SIAConfig) -> tuple[int, int]:
    """Depths (64-bit beats) of the input spike buffer and the output buffer:
    buffer_timesteps (default 8) maps of max_height x max_width positions of one
    64-channel word (8192 for 32x32)."""
    n = cfg.buffer_timesteps * cfg.max_height * cfg.max_width
    return n, n


def out_ring_words(cfg: SIAConfig) -> int:
    """Words of the output buffer as built (session 30): a ring of 16 rows of max_width
    words (512 for 32-wide maps), not out_buffer_beats. An if-layer's output words
    stream out while the launch computes, each as soon as it is written, so a few words
    are ever waiting; the drain pauses only if the ring is full (the output stream held
    back by TREADY). out_buffer_beats stays what a launch may produce (the launch
    planning is unchanged)."""
    return 1 << (16 * cfg.max_width - 1).bit_length()


def param_values(cfg: SIAConfig) -> dict:
    vals = cfg.to_json()
    vals["clock_khz"] = int(round(cfg.clock_mhz * 1000))
    vals["max_groups"] = MAX_GROUPS
    vals["in_buffer_beats"], vals["out_buffer_beats"] = buffer_beats(cfg)
    return {n: int(vals[n]) for n in PARAM_NAMES}


def register_map(cfg: SIAConfig) -> dict:
    """JSON-able register map with the read-only values of this build."""
    pv = param_values(cfg)
    regs = {}
    for name, (off, acc, desc) in REGISTERS.items():
        r = {"offset": off, "access": acc, "description": desc}
        if name.startswith("PARAM_"):
            r["value"] = pv[name[6:].lower()]
        regs[name] = r
    regs["ID"]["value"], regs["VERSION"]["value"] = ID_MAGIC, VERSION
    return {"registers": regs, "ctrl_bits": {"START": CTRL_START, "SOFT_RESET": CTRL_SOFT_RESET},
            "status_bits": {"BUSY": STATUS_BUSY, "DONE": STATUS_DONE, "ERROR": STATUS_ERROR,
                            "ERROR_CODE": "bits[15:8]"},
            "error_codes": ERROR_CODES}


# ---------------------------------------------------------------- descriptor fields
LAYER_FIELDS = [  # (name, bits)
    ("magic", 12), ("kind", 1), ("image", 1), ("ngroups", 3), ("timesteps", 9),
    ("tile_ch", 8), ("h_out", 9), ("w_out", 9),
    ("keep", 1),       # 1: weights + neuron params of the previous launch stay; none sent
    ("period", 9),     # timesteps per image: a packed launch runs timesteps / period images
    ("wnarrow", 1),    # weights streamed at weight_bits / 2 (two PEs' words per memory word)
    ("resume", 1),     # (1.10) the membranes (and net counts) go on from the tile's previous
                       # launch: a layer's T steps split over launches (`launch_chunks`)
    ("wbeats", 22), ("sbeats", 24), ("hw_out", 17),
    ("signed", 1),     # signed IF neurons (interface 1.9): +1 and -1 spikes, net counts
]
GROUP_FIELDS = [
    ("op", 2), ("image", 1), ("pool", 4), ("stride", 2), ("pad", 2), ("kh", 2), ("kw", 2),
    ("nw", 6), ("hp", 9), ("wp", 9), ("reach", 9),     # reach: r_end(oy) = clamp(oy*stride+reach)
    ("base", 24), ("tstride", 24),                     # spike-buffer beat addresses
    ("prow_stride", 24), ("srow_stride", 16), ("pstride", 12),
    ("wrow", 16), ("pos_rstride", 16),                 # weight row of the group; dense: += C/pos
    ("phase", 1),      # phase pairs: words (2X, w) and (2X+1, w) interleaved, one unit
    ("drain", 1),      # identity in the drain: group 0, added by the aggregation core
    ("quad", 1),       # phase quads: words of the 2x2 block (2Y+i, 2X+j) interleaved, one unit
    ("npos", 2),       # narrow streams: log2 of the buffer words one input beat carries
    ("neg", 1),        # signed spikes (1.9): the -1 plane of a signed source; its events
                       # add -w, and it shares the weight rows of the +1 plane before it
    ("spair", 1),      # sign pairs (1.12): per position the +1 word, then the -1 word (its
                       # events add -w), one issue unit, one sign per cycle
]


def _layout(fields):
    out, beat, lsb = {}, 0, 0
    for name, bits in fields:
        if lsb + bits > BEAT_BITS:
            beat, lsb = beat + 1, 0
        out[name] = (beat, lsb, bits)
        lsb += bits
    return out, beat + 1


LAYER_LAYOUT, LAYER_BEATS = _layout(LAYER_FIELDS)
GROUP_LAYOUT, GROUP_BEATS = _layout(GROUP_FIELDS)


def _pack_fields(layout, nbeats, values) -> list[int]:
    beats = [0] * nbeats
    for name, (b, lsb, bits) in layout.items():
        v = int(values.get(name, 0))
        if not 0 <= v < (1 << bits):
            raise SiaError(f"tile packet field {name}={v} does not fit {bits} bits")
        beats[b] |= v << lsb
    return beats


def unpack_fields(layout, beats) -> dict:
    return {n: (beats[b] >> lsb) & ((1 << bits) - 1) for n, (b, lsb, bits) in layout.items()}


def header_beats(ngroups: int) -> int:
    return LAYER_BEATS + GROUP_BEATS * ngroups


# ---------------------------------------------------------------- bit streams
def bits_to_beats(values, width: int) -> list[int]:
    """Concatenate `values` (ints, two's complement in `width` bits) LSB-first and cut
    into 64-bit beats (last one zero padded)."""
    mask = (1 << width) - 1
    acc, n, out = 0, 0, []
    for v in values:
        acc |= (int(v) & mask) << n
        n += width
        while n >= BEAT_BITS:
            out.append(acc & ((1 << BEAT_BITS) - 1))
            acc >>= BEAT_BITS
            n -= BEAT_BITS
    if n:
        out.append(acc)
    return out


def beats_to_values(beats, width: int, count: int, signed: bool = True) -> list[int]:
    acc = 0
    for i, b in enumerate(beats):
        acc |= int(b) << (BEAT_BITS * i)
    mask, out = (1 << width) - 1, []
    for i in range(count):
        v = (acc >> (i * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def _bitmap_beats(vec: np.ndarray, bits_per: int) -> list[int]:
    """One position: channel values -> ceil(C*bits_per/64) beats."""
    return bits_to_beats([int(v) for v in vec], bits_per)


# ---------------------------------------------------------------- tile packets
@dataclass
class TileInfo:
    """What a tile launch looks like from outside (counts of beats, shapes)."""
    layer: int
    tile: int
    channels: int           # output channels in this tile (<= P)
    kind: str
    timesteps: int
    out_shape: tuple        # (H_out, W_out)
    header_beats: int
    weight_beats: int
    neuron_beats: int
    spike_beats: int
    out_beats: int
    weight_rows: int
    image: bool
    images: int = 1         # images the launch carries (packed launch: timesteps each)


def decimation(syn) -> int:
    """d > 1 for a 1x1 conv of stride d with no padding and no pool (a ResNet
    downsampling shortcut): only every d-th row and column of its source reaches an
    output, so the host streams just that view (`pack_inputs`) and the dispatcher scans
    it as a stride-1 group (session 7; before, the whole map was streamed and the
    descriptor's address steps skipped the other positions). 1 for every other group."""
    if (syn.op == "conv" and syn.kernel == (1, 1) and syn.stride > 1 and syn.padding == 0
            and syn.pool == 1):
        return syn.stride
    return 1


def one_tap(syn) -> bool:
    """A group whose every event reaches one output through one tap: an identity
    shortcut, or an unpadded, unpooled 1x1 conv of stride 1 or a decimated one."""
    return syn.pool == 1 and (syn.op == "identity" or (
        syn.op == "conv" and tuple(syn.weight.shape[2:]) == (1, 1) and syn.padding == 0
        and (syn.stride == 1 or decimation(syn) > 1)))


def phase_pair(syn, src_shape, cfg: SIAConfig) -> bool:
    """Is this group scanned in phase pairs? On builds with `phase_pairs`, two groups of
    spike sources whose scanned width (the source's, or a decimated group's view) is
    even: a stride-2, padding-1, 3x3 unpooled conv - source columns 2X and 2X+1 reach
    disjoint tap columns (kx = 1; kx = 0 and 2) - and a one-tap group (`one_tap`) -
    column 2X goes through tap (0, 1), column 2X+1 through tap (0, 0), the weight
    being in both. The dispatcher takes up to E events from each of the two words (w
    of both positions) in one cycle and each PE pre-adds them into its own tap columns.
    Their maps are streamed pair-interleaved (`pack_inputs`): per row, per column pair
    X, per word w, the words of columns 2X and 2X+1. src_shape: the source's (C, H, W)."""
    if not cfg.phase_pairs or syn.source == IMAGE:
        return False
    width = -(-src_shape[2] // decimation(syn))
    if width % 2:
        return False
    return one_tap(syn) or (syn.op == "conv" and tuple(syn.weight.shape[2:]) == (3, 3)
                            and syn.stride == 2 and syn.padding == 1 and syn.pool == 1)


def phase_quad(syn, src_shape, cfg: SIAConfig) -> bool:
    """Is this group scanned in phase quads? On builds with `phase_quads`, a
    stride-2, padding-1, 3x3 phase-pair conv (`phase_pair`, not a one-tap group) whose
    source height is even too: output row oy scans source rows 2oy and 2oy+1, and the
    four positions (2oy + i, 2X + j), i, j in {0, 1}, reach disjoint tap sets (ky = 1 or
    ky = 0, 2 by row parity; kx likewise by column parity), so the dispatcher takes up
    to E events from each of the four words (w of all four) in one cycle (interface 1.7:
    descriptor bit `quad`, quad-interleaved maps)."""
    return (cfg.phase_quads and phase_pair(syn, src_shape, cfg) and not one_tap(syn)
            and src_shape[1] % 2 == 0)


def stream_positions(g: dict, cfg: SIAConfig) -> int:
    """Spike-buffer words one input beat carries for descriptor g: 1, or on builds with
    `narrow_stream` 64 // C' for a spike group of C <= 32 channels (C' = C rounded up to
    16 or 32): 4 or 2 positions per beat, each the low C' bits of its buffer word
    (descriptor field `npos` = log2 of it)."""
    if not cfg.narrow_stream or g["image"] or g["_C"] > 32:
        return 1
    return 4 if g["_C"] <= 16 else 2


def _segment_words(groups: list[dict]) -> list[int]:
    """Buffer words of each group's map in one step, from the descriptors (base, tstride)."""
    ends = [g["base"] for g in groups[1:]] + [groups[0]["tstride"]]
    return [e - g["base"] for g, e in zip(groups, ends)]


def need_beats(groups: list[dict], words):
    """Input beats that carry the first `words` buffer words of a launch's input maps
    (int or array): the same number, or with narrow streams (`npos`) per step, group
    after group, ceil(words of the group / k) - each segment starts on a new beat."""
    if not any(g.get("npos", 0) for g in groups):
        return words
    ks = [1 << g["npos"] for g in groups]
    seg = _segment_words(groups)
    step_words = groups[0]["tstride"]
    t, rel = np.divmod(np.asarray(words), step_words)
    out = t * sum(-(-m // k) for m, k in zip(seg, ks))
    for g, m, k in zip(groups, seg, ks):
        out = out + -(-np.clip(rel - g["base"], 0, m) // k)
    return out


def narrow_pack(groups: list[dict], words: list[int], steps: int) -> list[int]:
    """The input-map words of a launch (step after step, group after group) as beats:
    k = 2^npos words per beat, word i in bits [i*64/k, (i+1)*64/k)."""
    if not any(g.get("npos", 0) for g in groups):
        return list(words)
    out, a = [], 0
    for _ in range(steps):
        for g, m in zip(groups, _segment_words(groups)):
            k, seg = 1 << g["npos"], words[a:a + m]
            a += m
            bits = BEAT_BITS // k
            out += [sum(int(w) << (i * bits) for i, w in enumerate(seg[b:b + k]))
                    for b in range(0, m, k)]
    return out


def narrow_unpack(groups: list[dict], beats, steps: int) -> np.ndarray:
    """`narrow_pack` undone: the input-map beats of a launch as buffer words (uint64)."""
    beats = np.asarray(beats, dtype=np.uint64)
    if not any(g.get("npos", 0) for g in groups):
        return beats
    out, b = [], 0
    for _ in range(steps):
        for g, m in zip(groups, _segment_words(groups)):
            k = 1 << g["npos"]
            nb = -(-m // k)
            bits = BEAT_BITS // k
            mask = np.uint64((1 << bits) - 1)
            seg = beats[b:b + nb]
            b += nb
            w = np.stack([(seg >> np.uint64(i * bits)) & mask for i in range(k)], 1).reshape(-1)
            out.append(w[:m])
    return np.concatenate(out) if out else beats[:0]


def scan_addresses(g: dict) -> np.ndarray:
    """Spike-buffer addresses (relative to the group's base, one timestep) of the words
    the dispatcher walks for descriptor g, indexed [pooled row r, pool row i, pooled
    column x, pool column j, word w]: r*prow_stride + i*srow_stride + x*pstride + j*nw + w
    (a decimated group: of its streamed view)."""
    p, nw = g["pool"], g["nw"]
    r, i, x, j, w = np.ix_(np.arange(g["hp"]), np.arange(p), np.arange(g["wp"]), np.arange(p),
                           np.arange(nw))
    return r * g["prow_stride"] + i * g["srow_stride"] + x * g["pstride"] + j * nw + w


def row_stride(g: dict) -> int:
    """Source rows (row pairs: a quad group) the row schedule of descriptor g advances per
    output row: r_end(oy) = clamp(oy * row_stride + reach, 0, hp)."""
    return 1 if g.get("quad") else g["stride"]


def row_need(groups: list[dict], steps: int, h_out: int, step_beats: int) -> np.ndarray:
    """Input-map beats that must have arrived before output row oy of step t is
    dispatched [steps, h_out] (ROW_PRE waits for them): the beats of the step-t maps up
    to the end of the last group's source rows that row scans, `base + hi * prow_stride`
    with `hi = reach + oy * stride` (the row schedule's r_end before the clamp),
    clamped to the step's beats (step_beats; image layers: the image). Within a step
    the maps are streamed group after group, so the last group's need covers every
    earlier group's whole map."""
    g = groups[-1]
    hi = g["reach"] + np.arange(h_out) * row_stride(g)
    rel = np.minimum(g["base"] + hi * g["prow_stride"], step_beats)
    return np.arange(steps)[:, None] * g["tstride"] + rel[None, :]


MAX_LAUNCH_STEPS = (1 << LAYER_LAYOUT["timesteps"][2]) - 1   # steps of one (packed) launch


def packable(layer) -> bool:
    """Can launches of this layer carry several images? Only if-layers with spike
    inputs: image layers run all T steps per row and integrators unload one image's
    final membranes."""
    return layer.kind == "if" and all(s.source != IMAGE for s in layer.inputs)


def image_list(inputs) -> list:
    """A launch's inputs as a list of per-image {source: array} dicts (one dict = one
    image; a list = a packed launch)."""
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def pairs_pes(cfg: SIAConfig) -> bool:
    """Does this build take narrow weight streams (`wnarrow`)? The loader splits a
    9*weight_bits-bit word into the words of PEs p and p+1, so weight_bits and P must
    be even; other builds refuse a `wnarrow` packet."""
    return cfg.weight_bits % 2 == 0 and cfg.pes % 2 == 0


def narrow_weights(program: Program, layer_index: int, cfg: SIAConfig) -> bool:
    """Can the layer's weights be streamed at weight_bits / 2 (`wnarrow`)? The build
    must pair PEs and every group's weights fit that many bits (signed)."""
    half = cfg.weight_bits // 2
    return pairs_pes(cfg) and all(s.weight_bits <= half
                                  for s in program.layers[layer_index].inputs)


def weight_stream_bits(program: Program, layer_index: int, cfg: SIAConfig) -> int:
    """Bits per tap in the weight stream of the layer's launches."""
    return cfg.weight_bits // 2 if narrow_weights(program, layer_index, cfg) else cfg.weight_bits


def num_tiles(program: Program, layer_index: int, cfg: SIAConfig) -> int:
    return -(-program.layers[layer_index].channels // cfg.pes)


def drain_group(layer, cfg: SIAConfig) -> int | None:
    """Index (in layer.inputs) of the identity shortcut the aggregation core adds while
    it drains, on builds with `identity_drain`: the layer's first unpooled identity
    group of a spike source (its source position is the drained position itself; a
    signed source's: its sign pair, interface 1.13, `sia.hw.planes.sign_pair`); None
    when there is none or the build lacks the option. Any further identity group is
    dispatched as events."""
    if not cfg.identity_drain:
        return None
    return next((j for j, s in enumerate(layer.inputs)
                 if s.op == "identity" and s.pool == 1 and s.source != IMAGE
                 and s.plane in (0, PAIR)), None)


def _groups(program: Program, layer_index: int, tile: int, cfg: SIAConfig, T: int):
    """Per-group geometry (the descriptor values) for one tile, in stream order: the
    drain group (`drain_group`) first, then the layer's inputs in order (a signed
    source's two planes, `sia.hw.planes`: the -1 plane after the +1 plane, on its rows)."""
    program = hardware_view(program, cfg)
    layer = program.layers[layer_index]
    P = cfg.pes
    _, H_out, W_out = layer.shape
    groups, wrow, base = [], 0, 0
    dj = drain_group(layer, cfg)
    order = list(range(len(layer.inputs)))
    if dj is not None:
        order = [dj] + [j for j in order if j != dj]
    for j in order:
        s = layer.inputs[j]
        where = f"layer {layer_index} ({layer.name}) input {j}"
        C, Hs, Ws = program.source_shape(s.source)
        p = s.pool
        hp, wp = Hs // p, Ws // p
        image = s.source == IMAGE
        if s.op == "identity":
            C = min(P, layer.channels - tile * P)
        nw = -(-(8 * C if image else C) // BEAT_BITS)
        if s.op == "conv":
            kh, kw = s.weight.shape[2:]
            if kh > 3 or kw > 3 or s.stride not in (1, 2) or s.padding > 1:
                raise SiaError(f"{where}: the RTL supports kernels <= 3x3, stride 1/2, padding 0/1")
            stride, pad, reach, rows, rstride = s.stride, s.padding, kh - s.padding, C, 0
        elif s.op == "dense":
            kh = kw = 1
            stride, pad, reach, rows, rstride = 1, 0, hp, C * hp * wp, C
        else:
            kh = kw = 1
            stride, pad, reach, rows, rstride = 1, 0, 1, 1, 0
        # a decimated group (1x1, stride d: `decimation`) is streamed and scanned as a
        # stride-1 group over its view, every d-th row and column of the source
        d = decimation(s)
        if d > 1:
            stride, reach, Hs, Ws = 1, 1, -(-Hs // d), -(-Ws // d)
            hp, wp = Hs, Ws
        # a phase group (`phase_pair`) is walked as W/2 column pairs whose 2*nw words,
        # (2X, w) and (2X+1, w) next to each other, form one run of word pairs
        ph = phase_pair(s, program.source_shape(s.source), cfg) and j != dj
        if ph and one_tap(s):    # columns 2X+1 - kx for kx = 0, 1 (`phase_pair`)
            stride, pad, kh, kw, reach = 1, 0, 1, 2, 1
        # a quad group (`phase_quad`) is walked as Hs/2 row pairs of Ws/2 column pairs
        # whose 4*nw words, (2Y+i, 2X+j, w) in (w, i, j) order, form one run of quads
        qd = ph and phase_quad(s, program.source_shape(s.source), cfg)
        # a sign pair (`sia.hw.planes.sign_pair`, interface 1.12): per position its +1
        # word and its -1 word, one run of one word pair
        sp = s.plane == PAIR
        k = 4 if qd else 2 if ph or sp else 1       # words per unit of one channel word
        g = dict(op=OPS[s.op], image=int(image), pool=p, stride=stride, pad=pad, kh=kh, kw=kw,
                 nw=k * nw, hp=hp // 2 if qd else hp, wp=wp // 2 if ph else wp,
                 reach=1 if qd else reach, base=base, tstride=0,
                 prow_stride=p * Ws * nw * (2 if qd or sp else 1),
                 srow_stride=Ws * nw * (2 if sp else 1), pstride=p * nw * k, wrow=wrow,
                 pos_rstride=rstride, phase=int(ph), drain=int(j == dj), quad=int(qd),
                 neg=int(s.plane < 0), spair=int(sp))
        if s.plane < 0:   # the -1 plane reads the weight rows of its +1 plane, just before
            g["wrow"], rows = groups[-1]["wrow"], 0
        g["_rows"], g["_C"], g["_src"], g["_syn"] = rows, C, (C, Hs, Ws), s   # as streamed
        g["npos"] = stream_positions(g, cfg).bit_length() - 1
        g["_beats"] = Hs * Ws * nw * (2 if sp else 1)   # one timestep (image: the image)
        groups.append(g)
        wrow += rows
        base += g["_beats"]
    # input maps are interleaved by timestep (t, then group): timestep t of every
    # group is in once (t+1) * base beats are, so the launch computes step t while
    # the later steps stream in; image layers have one step
    image = bool(groups[0]["image"])
    for g in groups:
        g["tstride"] = 0 if image else base
    return groups, wrow, base * (1 if image else T)


def check_layer(program: Program, layer_index: int, cfg: SIAConfig, T: int | None = None,
                images: int = 1):
    """Refuse (SiaError) a layer this build of the RTL cannot run (`images` per launch)."""
    T = program.timesteps if T is None else T
    layer = program.layers[layer_index]
    where = f"layer {layer_index} ({layer.name})"
    if layer.signed:
        check_signed(program, cfg, T, f"{where}: ")
    program = hardware_view(program, cfg)
    layer = program.layers[layer_index]
    if int(images) != images or images < 1:
        raise SiaError(f"{where}: images per launch must be a positive integer, got {images}")
    if images > 1 and not packable(layer):
        raise SiaError(f"{where}: only if-layers with spike inputs run packed launches "
                       f"(images per launch {images} > 1)")
    if images * T > MAX_LAUNCH_STEPS:
        raise SiaError(f"{where}: {images} images x T={T} steps do not fit the 9-bit "
                       f"timesteps field")
    _, H, W = layer.shape
    if len(layer.inputs) > MAX_GROUPS:
        raise SiaError(f"{where}: {len(layer.inputs)} synapse groups > {MAX_GROUPS}")
    if not 1 <= T <= cfg.max_timesteps:
        raise SiaError(f"{where}: T={T} outside 1..max_timesteps={cfg.max_timesteps}")
    if H > cfg.max_height or W > cfg.max_width:
        raise SiaError(f"{where}: output {H}x{W} exceeds max {cfg.max_height}x{cfg.max_width}")
    if layer.v_bits > cfg.v_bits or layer.acc_bits > cfg.acc_bits:
        raise SiaError(f"{where}: needs v_bits={layer.v_bits}/acc_bits={layer.acc_bits}, the "
                       f"build has {cfg.v_bits}/{cfg.acc_bits}")
    imgs = {s.source == IMAGE for s in layer.inputs}
    if len(imgs) > 1:
        raise SiaError(f"{where}: mixing image and spike synapse groups is not supported")
    for j, s in enumerate(layer.inputs):
        if s.weight_bits > cfg.weight_bits:
            raise SiaError(f"{where} input {j}: {s.weight_bits}-bit weights > {cfg.weight_bits}")
        _, Hs, Ws = program.source_shape(s.source)
        if Ws > cfg.max_width or Hs > cfg.max_height:
            raise SiaError(f"{where} input {j}: source {Hs}x{Ws} exceeds max")
    groups, rows, sbeats = _groups(program, layer_index, 0, cfg, T)
    if rows > cfg.max_channels_in:
        raise SiaError(f"{where}: {rows} weight rows > max_channels_in={cfg.max_channels_in}")
    inb, outb = buffer_beats(cfg)
    if images * sbeats > inb:
        raise SiaError(f"{where}: input maps need {images * sbeats} beats > input buffer {inb}")
    ob = images * _out_beats(layer, cfg, T)
    if layer.kind == "if" and ob > outb:
        raise SiaError(f"{where}: output needs {ob} beats > output buffer {outb}")
    return groups


def launch_chunks(program: Program, layer_index: int, cfg: SIAConfig,
                  T: int | None = None) -> list[tuple[int, int]]:
    """The steps [t0, t1) of each launch one image of the layer takes: all T in one launch
    where the input maps of T steps fit the buffers, else chunks of the most steps that
    fit, an even number (each chunk then ends on the membrane bank the next one reads),
    the last one shorter; every chunk after the first resumes (`resume`) the membranes and
    net counts the one before left. Image layers run all T steps per row and hold one
    row's membranes, so they are never split; a layer whose two steps do not fit is
    refused (`check_layer`)."""
    T = program.timesteps if T is None else T
    layer = program.layers[layer_index]
    if layer.signed:     # the net counts run over all T steps, whatever the chunks
        check_signed(program, cfg, T, f"layer {layer_index} ({layer.name}): ")
    if T <= 2 or layer.inputs[0].source == IMAGE or _fits_steps(program, layer_index, cfg, T):
        return [(0, T)]
    c = 2
    while c + 2 < T and _fits_steps(program, layer_index, cfg, c + 2):
        c += 2
    check_layer(program, layer_index, cfg, c)
    return [(t, min(T, t + c)) for t in range(0, T, c)]


def check_launches(program: Program, layer_index: int, cfg: SIAConfig, T: int | None = None):
    """`check_layer` for the launches one image of the layer takes (`launch_chunks`): a layer
    whose input maps of T steps do not fit the buffers is refused only if its launches
    of fewer steps cannot run either."""
    T = program.timesteps if T is None else T
    t0, t1 = launch_chunks(program, layer_index, cfg, T)[0]
    return check_layer(program, layer_index, cfg, t1 - t0)


def _fits_steps(program: Program, layer_index: int, cfg: SIAConfig, steps: int) -> bool:
    """Do one image's input maps and outputs of `steps` steps fit the buffers?"""
    inb, outb = buffer_beats(cfg)
    layer = program.layers[layer_index]
    sbeats = _groups(program, layer_index, 0, cfg, steps)[2]
    return sbeats <= inb and (layer.kind != "if" or _out_beats(layer, cfg, steps) <= outb)


def launch_images(program: Program, layer_index: int, cfg: SIAConfig, T: int | None = None,
                  limit: int | None = None) -> int:
    """The most images one launch of this layer can carry (packed launch): as many as
    the input and output buffers hold (and the 9-bit timesteps field counts), at most
    `limit`; 1 for image layers and integrators (they unload one image's state)."""
    T = program.timesteps if T is None else T
    layer = program.layers[layer_index]
    if len(launch_chunks(program, layer_index, cfg, T)) > 1:
        return 1                 # split over launches: one image at a time
    check_layer(program, layer_index, cfg, T)
    program = hardware_view(program, cfg)
    if not packable(layer):
        return 1
    inb, outb = buffer_beats(cfg)
    sbeats = _groups(program, layer_index, 0, cfg, T)[2]
    k = min(inb // sbeats, outb // _out_beats(layer, cfg, T), MAX_LAUNCH_STEPS // T)
    return max(1, k if limit is None else min(k, int(limit)))


def _out_beats(layer, cfg: SIAConfig, T: int) -> int:
    _, H, W = layer.shape
    if layer.kind == "if":
        return T * H * W * -(-cfg.pes // BEAT_BITS)
    return H * W * -(-cfg.pes * cfg.v_bits // BEAT_BITS)


def tile_info(program: Program, layer_index: int, tile: int, cfg: SIAConfig,
              T: int | None = None, images: int = 1) -> TileInfo:
    """Beat counts of one launch carrying `images` images (packed launch if > 1)."""
    program = hardware_view(program, cfg)
    T = program.timesteps if T is None else T
    layer = program.layers[layer_index]
    groups = check_layer(program, layer_index, cfg, T, images)
    P = cfg.pes
    rows = sum(g["_rows"] for g in groups)
    image = bool(groups[0]["image"])
    steps = 1 if image else T
    sbeats = int(need_beats(groups, steps * groups[0]["tstride"])) if not image else \
        sum(g["_beats"] for g in groups)
    return TileInfo(
        layer=layer_index, tile=tile, channels=min(P, layer.channels - tile * P),
        kind=layer.kind, timesteps=T, out_shape=tuple(layer.shape[1:]),
        header_beats=header_beats(len(groups)),
        weight_beats=-(-rows * P * 9 * weight_stream_bits(program, layer_index, cfg) // BEAT_BITS),
        neuron_beats=-(-P * 3 * cfg.v_bits // BEAT_BITS), spike_beats=images * sbeats,
        out_beats=images * _out_beats(layer, cfg, T), weight_rows=rows, image=image,
        images=images)


def pack_tile(program: Program, layer_index: int, tile: int, inputs: dict,
              cfg: SIAConfig, T: int | None = None, keep: bool = False,
              resume: bool = False) -> list[int]:
    """The input tile packet of one launch, as a list of 64-bit beats (ints).

    inputs: {source index: array}: the uint8 image [C, H, W] under key -1 (IMAGE) and
    spike maps [T, C, H, W] (0/1) of earlier layers under their layer index; or a list
    of such dicts, one per image, for a packed launch (interface 1.3).
    keep: resident-weight launch (header + input maps only); the previous launch on
    the accelerator must have been the same (layer, tile) with keep=False.
    resume: a later chunk of one image's steps (`launch_chunks`, interface 1.10): T is
    the chunk's steps, `inputs` its maps, and the previous launch on the accelerator the
    chunk before it (same layer, tile and image).
    """
    program = hardware_view(program, cfg)
    T = program.timesteps if T is None else T
    layer = program.layers[layer_index]
    per_image = image_list(inputs)
    k = len(per_image)
    if resume and (k > 1 or layer.inputs[0].source == IMAGE):
        raise SiaError(f"layer {layer_index} ({layer.name}): a resumed launch carries one image "
                       "of a spiking-input layer")
    info = tile_info(program, layer_index, tile, cfg, T, k)
    groups = _groups(program, layer_index, tile, cfg, T)[0]
    P, wb, vb = cfg.pes, weight_stream_bits(program, layer_index, cfg), cfg.v_bits
    lo, n = tile * P, info.channels
    _, H, W = layer.shape
    hdr = _pack_fields(LAYER_LAYOUT, LAYER_BEATS, dict(
        magic=HDR_MAGIC, kind=KINDS[layer.kind], image=int(info.image), ngroups=len(groups),
        timesteps=k * T, period=T, tile_ch=n, h_out=H, w_out=W, keep=int(keep),
        resume=int(resume),
        wnarrow=int(wb < cfg.weight_bits),
        wbeats=info.weight_beats,
        sbeats=info.spike_beats, hw_out=H * W, signed=int(layer.signed)))
    for g in groups:
        hdr += _pack_fields(GROUP_LAYOUT, GROUP_BEATS, g)
    # weights: rows x P words of 9 taps
    words = []
    for g in groups:
        if g["neg"]:   # a -1 plane: its +1 plane's rows are its rows (`sia.hw.planes`)
            continue
        s, C = g["_syn"], g["_C"]
        wt = np.zeros((g["_rows"], P, 9), dtype=np.int64)
        w = np.asarray(s.weight, dtype=np.int64)[lo:lo + n] if s.op != "identity" else None
        if s.op == "conv":
            kh, kw = w.shape[2:]
            for ky in range(kh):
                for kx in range(kw):
                    wt[:, :n, ky * 3 + kx] = w[:, :, ky, kx].T
        elif s.op == "dense":
            hw = g["hp"] * g["wp"]
            wt[:, :n, 0] = w.reshape(n, C, hw).transpose(2, 1, 0).reshape(hw * C, n)
        else:
            wt[0, :n, 0] = np.asarray(s.weight, dtype=np.int64)[lo:lo + n]
        if g["phase"] and one_tap(s):   # column 2X+1 uses tap (0, 0), column 2X tap (0, 1)
            wt[:, :, 1] = wt[:, :, 0]
        words.append(wt.reshape(-1))
    wvals = np.concatenate(words) if words else np.zeros(0, np.int64)
    wbeats = bits_to_beats(wvals.tolist(), wb)
    # neuron params
    th = np.ones(P, np.int64)
    bias, vi = np.zeros(P, np.int64), np.zeros(P, np.int64)
    if layer.threshold is not None:
        th[:n] = layer.threshold[lo:lo + n]
    bias[:n], vi[:n] = layer.bias[lo:lo + n], layer.v_init[lo:lo + n]
    nvals = np.stack([th, bias, vi], 1).reshape(-1).tolist()
    nbeats = bits_to_beats(nvals, vb)
    sbeats = [b for x in per_image
              for b in pack_inputs(program, layer_index, tile, x, cfg, T, groups)]
    assert len(sbeats) == info.spike_beats, (len(sbeats), info.spike_beats)
    if keep:
        return hdr + sbeats
    beats = hdr + wbeats + nbeats + sbeats
    assert len(wbeats) == info.weight_beats and len(nbeats) == info.neuron_beats
    return beats


def pack_inputs(program: Program, layer_index: int, tile: int, inputs: dict, cfg: SIAConfig,
                T: int | None = None, groups=None) -> list[int]:
    """The input-map section of a tile packet (the part that changes per image): the
    image once, or the spike maps of every group for T steps."""
    T = program.timesteps if T is None else T
    if groups is None:
        groups = _groups(program, layer_index, tile, cfg, T)[0]
    lo = tile * cfg.pes
    n = min(cfg.pes, program.layers[layer_index].channels - lo)
    per_group = []
    for g in groups:
        s = g["_syn"]
        d = decimation(s)
        x = plane_map(s, np.asarray(inputs[s.source]))[..., ::d, ::d]   # decimated: its view
        if g["image"]:
            C, Hs, Ws = x.shape
            beats = []
            for y in range(Hs):
                for xx in range(Ws):
                    v = _bitmap_beats(x[:, y, xx], 8)
                    beats += v + [0] * (g["nw"] - len(v))
            per_group.append([beats])
        else:
            if x.shape[0] < T:
                raise SiaError(f"spike input of source {s.source} has {x.shape[0]} < T={T} steps")
            x = x[:T]
            if s.op == "identity":
                x = x[:, lo:lo + n]
            if g["quad"]:                  # (Y, X, w, row 2Y / 2Y+1, column 2X / 2X+1)
                nw, (_, _, H, W) = g["nw"] // 4, x.shape
                per_group.append([np.asarray(_spike_beats(x[t:t + 1], nw), dtype=object)
                                  .reshape(H // 2, 2, W // 2, 2, nw).transpose(0, 2, 4, 1, 3)
                                  .reshape(-1).tolist() for t in range(T)])
            elif g["spair"]:               # per position: the +1 word, the -1 word
                per_group.append([[w for pair in zip(_spike_beats(x[t:t + 1] == 1, 1),
                                                     _spike_beats(x[t:t + 1] == -1, 1))
                                   for w in pair] for t in range(T)])
            elif g["phase"]:               # (X, w, column 2X / 2X+1) order
                nw, (_, _, H, W) = g["nw"] // 2, x.shape
                per_group.append([np.asarray(_spike_beats(x[t:t + 1], nw), dtype=object)
                                  .reshape(H, W // 2, 2, nw).transpose(0, 1, 3, 2)
                                  .reshape(-1).tolist() for t in range(T)])
            else:
                per_group.append([_spike_beats(x[t:t + 1], g["nw"]) for t in range(T)])
    # timestep-major: step t of every group, then step t+1 (image layers: one step);
    # narrow streams: k words per beat (`narrow_pack`)
    steps = len(per_group[0])
    return narrow_pack(groups, [b for t in range(steps) for seg in per_group for b in seg[t]],
                       steps)


def _spike_beats(x: np.ndarray, nw: int) -> list[int]:
    """x: [T, C, H, W] 0/1 -> per t, per position, nw 64-bit words (vectorised)."""
    T, C, H, W = x.shape
    pad = np.zeros((T, nw * 64, H, W), dtype=np.uint8)
    pad[:, :C] = x != 0
    b = pad.transpose(0, 2, 3, 1).reshape(T * H * W * nw, 64)
    words = np.ascontiguousarray(np.packbits(b, axis=1, bitorder="little")).view("<u8").reshape(-1)
    return [int(v) for v in words]


def unpack_output(program: Program, layer_index: int, tile: int, beats, cfg: SIAConfig,
                  T: int | None = None, images: int | None = None):
    """Output packet -> spikes uint8 [T, n, H, W] (if-layer) or final membranes
    int64 [n, H, W] (integrator), n = channels of the tile; a packed launch
    (`images` given) -> a list with one such array per image."""
    if images is not None:
        T = program.timesteps if T is None else T
        info = tile_info(program, layer_index, tile, cfg, T, images)
        if len(beats) != info.out_beats:
            raise SiaError(f"output packet has {len(beats)} beats, expected {info.out_beats}")
        per = info.out_beats // images
        return [unpack_output(program, layer_index, tile, beats[b * per:(b + 1) * per], cfg, T)
                for b in range(images)]
    T = program.timesteps if T is None else T
    info = tile_info(program, layer_index, tile, cfg, T)
    H, W = info.out_shape
    n, P = info.channels, cfg.pes
    if len(beats) != info.out_beats:
        raise SiaError(f"output packet has {len(beats)} beats, expected {info.out_beats}")
    if info.kind == "if":
        per = -(-P // BEAT_BITS)
        a = np.array([int(b) for b in beats], dtype=np.uint64).reshape(T * H * W, per)
        bits = np.unpackbits(a.view(np.uint8).reshape(T * H * W, per * 8), axis=1,
                             bitorder="little")
        if program.layers[layer_index].signed:   # bit p: +1 spike, bit P + p: -1 spike
            bits = bits[:, :n].astype(np.int8) - bits[:, P:P + n].astype(np.int8)
        else:
            bits = bits[:, :n]
        if info.image:      # image layers drain row by row, all T steps of a row at once
            return bits.reshape(H, T, W, n).transpose(1, 3, 0, 2).copy()
        return bits.reshape(T, H, W, n).transpose(0, 3, 1, 2).copy()
    per = -(-P * cfg.v_bits // BEAT_BITS)
    out = np.zeros((n, H, W), np.int64)
    for i in range(H * W):
        v = beats_to_values(beats[i * per:(i + 1) * per], cfg.v_bits, n)
        out[:, i // W, i % W] = v
    return out


def docs_markdown(cfg: SIAConfig | None = None) -> str:
    """The "Register map and tile packets" section of docs/architecture.md."""
    cfg = cfg or SIAConfig()
    lines = ["| register | offset | access | description |", "|---|---|---|---|"]
    for name, (off, acc, desc) in REGISTERS.items():
        lines.append(f"| `{name}` | 0x{off:02X} | {acc} | {desc} |")
    lines += ["", f"Layer descriptor ({LAYER_BEATS} beats) and per-group descriptor "
              f"({GROUP_BEATS} beats), `field: beat[lsb +: bits]`:", ""]
    lines.append("- layer: " + ", ".join(f"`{n}`: {b}[{l} +: {w}]"
                                          for n, (b, l, w) in LAYER_LAYOUT.items()))
    lines.append("- group: " + ", ".join(f"`{n}`: {b}[{l} +: {w}]"
                                          for n, (b, l, w) in GROUP_LAYOUT.items()))
    return "\n".join(lines)

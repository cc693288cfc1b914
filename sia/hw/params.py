"""SIA parameter set: the single source of truth shared by the cycle-level model,
the RTL generator, the program image and the PYNQ driver (docs/architecture.md)."""

import json
import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from sia import SiaError


def _shown(v) -> str:
    """A parameter value as its JSON file spells it (true, 8.5, Infinity)."""
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


# the fabric clock a parameter set may name: the CLOCK_KHZ register's resolution (1 kHz)
# up to 1 GHz, far above any 7-series fabric clock (the PYNQ-Z2 build runs at 100 MHz)
CLOCK_MHZ_MIN = 0.001
CLOCK_MHZ_MAX = 1000.0


@dataclass(frozen=True)
class SIAConfig:
    pes: int = 64               # P: processing elements = output channels per tile
    events_per_cycle: int = 2   # E: spike events each PE consumes per cycle
    taps: int = 9               # K: kernel taps per event (kernels up to 3x3)
    weight_bits: int = 8        # widest weight code the weight memory holds
    acc_bits: int = 24          # partial-sum (per-timestep current) width
    v_bits: int = 24            # membrane width (ping-pong memories)
    max_channels_in: int = 512  # weight-memory rows per PE (sum over a layer's inputs)
    max_width: int = 32         # longest output / source row
    max_height: int = 32
    max_timesteps: int = 16
    stream_bits: int = 64       # AXI4-Stream data width (one beat per cycle)
    buffer_timesteps: int = 8   # spike buffers: this many max_height x max_width maps of
                                # one 64-channel word (two-group layers need 2 x T)
    membrane_positions: int = 256   # membrane words per ping-pong bank: the largest map
                                # of a spiking-input layer (16x16; image if-layers need one row)
    clock_mhz: float = 100.0
    phase_pairs: bool = False   # stride-2 3x3 convs take E events from each of two
                                # horizontally adjacent positions per cycle (weight memory
                                # split by tap column; docs/architecture.md, "Phase pairs")
    psum_slots: int = 4         # psum row slots per PE (4..8): a row may start once the
                                # row slots - 2 before it is drained (5 slots: the dispatcher
                                # runs up to 3 rows ahead of the drain; +3 psum banks per slot)
    row_prefetch: bool = True   # a row whose ROW_PRE conditions hold in the last dispatch
                                # cycle of the row before it starts right after it (~200
                                # LUT; off in configs/sia/xc7z020.json, where the E = 4
                                # build would pass 60 % LUT and 19 LUT levels)
    identity_drain: bool = False  # a layer's identity shortcut is added by the aggregation
                                # core while it drains (not dispatched as events; a copy
                                # of the tile's spike slice beside the input buffer;
                                # docs/architecture.md, "Identity in the drain")
    pool_hold: bool = False     # in a pooled position, a unit's last < E events are held
                                # and issued in the next unit's first cycle (E <= 2;
                                # docs/architecture.md, "Pool hold")
    phase_quads: bool = False   # a phase-pair build whose stride-2 3x3 convs also pair the
                                # two source rows of an output row: E events from each of
                                # four positions per cycle (weight memory split into four
                                # tap sets; docs/architecture.md, "Phase quads")
    narrow_stream: bool = False  # spike maps of <= 32 channels stream 2 or 4 positions per
                                # 64-bit beat, the input spike buffer taking up to 4 words
                                # per cycle in four address banks (docs/architecture.md,
                                # "Narrow streams")
    signed_count_bits: int = 0  # > 0: signed IF neurons (+1 and -1 spikes): each lane keeps
                                # its net spike count in this many bits beside V, so a
                                # signed layer runs <= 2^bits - 1 steps per image; a -1
                                # spike is an event of its own plane (docs/architecture.md,
                                # "Signed neurons"); needs pes <= 32 (both planes in one
                                # output beat). 0: the build refuses signed programs

    def __post_init__(self):
        self._check_types()
        checks = [
            (self.pes >= 1 and self.pes & (self.pes - 1) == 0, "pes must be a power of two"),
            (self.events_per_cycle in (1, 2, 4), "events_per_cycle must be 1, 2 or 4"),
            (self.taps == 9, "taps must be 9 (3x3 kernels)"),
            (2 <= self.weight_bits <= 16, "weight_bits must be in 2..16"),
            (8 <= self.acc_bits <= 32, "acc_bits must be in 8..32"),
            (8 <= self.v_bits <= 32, "v_bits must be in 8..32"),
            (self.max_channels_in >= 1, "max_channels_in must be >= 1"),
            (1 <= self.max_width <= 256 and 1 <= self.max_height <= 256,
             "max_width/max_height must be in 1..256"),
            (1 <= self.max_timesteps <= 256, "max_timesteps must be in 1..256"),
            (self.stream_bits in (32, 64, 128), "stream_bits must be 32, 64 or 128"),
            (1 <= self.buffer_timesteps <= 256, "buffer_timesteps must be in 1..256"),
            (1 <= self.membrane_positions <= 65536, "membrane_positions must be in 1..65536"),
            (CLOCK_MHZ_MIN <= self.clock_mhz <= CLOCK_MHZ_MAX,
             f"clock_mhz must be a finite number in {CLOCK_MHZ_MIN:g}..{CLOCK_MHZ_MAX:g} (MHz), "
             f"got {_shown(self.clock_mhz)}"),
            (isinstance(self.phase_pairs, bool), "phase_pairs must be true or false"),
            (isinstance(self.identity_drain, bool), "identity_drain must be true or false"),
            (isinstance(self.row_prefetch, bool), "row_prefetch must be true or false"),
            (self.psum_slots in range(4, 9), "psum_slots must be in 4..8"),
            (isinstance(self.pool_hold, bool), "pool_hold must be true or false"),
            (isinstance(self.phase_quads, bool), "phase_quads must be true or false"),
            (isinstance(self.narrow_stream, bool), "narrow_stream must be true or false"),
            (0 <= self.signed_count_bits <= 9, "signed_count_bits must be in 0..9"),
            (not self.signed_count_bits or self.pes <= 32,
             "signed_count_bits needs pes <= 32 (a signed layer's output beat holds the +1 "
             "and the -1 plane)"),
            (not self.phase_quads or self.phase_pairs,
             "phase_quads needs phase_pairs (it extends the phase-pair datapath)"),
            (not self.pool_hold or self.events_per_cycle <= 2,
             "pool_hold needs events_per_cycle <= 2 (it holds one event)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise SiaError(f"invalid SIA parameters: {msg}")

    def _check_types(self):
        """Every int field a whole number (not a bool, not a float), every bool field a
        bool, clock_mhz a finite real; numpy numbers become plain Python ones."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in (bool, "bool"):
                if not isinstance(v, bool):
                    raise SiaError(f"invalid SIA parameters: {f.name} must be true or false, "
                                   f"got {_shown(v)}")
            elif f.type in (int, "int"):
                if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                    raise SiaError(f"invalid SIA parameters: {f.name} must be an integer, "
                                   f"got {_shown(v)}")
                object.__setattr__(self, f.name, int(v))
            elif f.type in (float, "float"):
                if (isinstance(v, bool) or not isinstance(v, numbers.Real)
                        or not math.isfinite(v)):
                    raise SiaError(f"invalid SIA parameters: {f.name} must be a finite number, "
                                   f"got {_shown(v)}")
                if type(v) not in (int, float):     # (a JSON int stays one: config_id)
                    object.__setattr__(self, f.name, float(v))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "SIAConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SiaError(f"invalid SIA parameters: unknown keys {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, path=None, **overrides) -> "SIAConfig":
        """The parameter set in JSON file `path` (None: the defaults) with `overrides`
        (None values ignored); a missing or malformed file is a one-line SiaError."""
        cfg = cls()
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise SiaError(f"no such parameter-set file: {p}")
            try:
                d = json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise SiaError(f"{p}: not valid JSON ({e})") from None
            if not isinstance(d, dict):
                raise SiaError(f"{p}: a parameter set is a JSON object")
            try:
                cfg = cls.from_json(d)
            except TypeError as e:
                raise SiaError(f"{p}: bad parameter set ({e})") from None
        over = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(over) - set(cls.__dataclass_fields__)
        if unknown:
            raise SiaError(f"invalid SIA parameters: unknown keys {sorted(unknown)}")
        return replace(cfg, **over)

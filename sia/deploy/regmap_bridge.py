"""The deploy side of sia.hw.regmap: the one place sia.deploy touches the register map
and the tile-packet format, so the image, the driver and the twin device cannot drift from
the RTL. Everything format-specific is delegated to sia.hw.regmap; this module only adapts
it to what the driver has on the board: a program image (no Program object, no weights).

Beats are 64-bit little-endian words; on the AXI4-Stream beat i is bytes 8i..8i+7 of the
DMA buffer (the AXI DMA reads memory in address order, byte 0 -> tdata[7:0]).
"""

import numpy as np

from sia import SiaError
from sia.hw import regmap as rm
from sia.hw.params import SIAConfig
from sia.program.format import IMAGE, Layer, Program, Synapse

# Vivado names an RTL module reference cell's VLNV like this; PYNQ binds drivers by VLNV.
IP_VLNV = "xilinx.com:module_ref:sia_top:1.0"
REG = {name: off for name, (off, _, _) in rm.REGISTERS.items()}


def regmap_version() -> int:
    return rm.VERSION


def beats_to_bytes(beats) -> bytes:
    return np.asarray([int(b) for b in beats], dtype="<u8").tobytes()


def bytes_to_beats(data: bytes) -> list[int]:
    if len(data) % 8:
        raise SiaError(f"stream data of {len(data)} bytes is not a whole number of 64-bit beats")
    return [int(v) for v in np.frombuffer(data, dtype="<u8")]


# ------------------------------------------------------------------ image side

def _zero_inputs(program: Program, layer: int, T: int) -> dict:
    inputs = {}
    for s in program.layers[layer].inputs:
        shp = program.source_shape(s.source)
        inputs[s.source] = (np.zeros(shp, np.uint8) if s.source == IMAGE
                            else np.zeros((T, *shp), np.uint8))
    return inputs


def _static_beats(info: rm.TileInfo) -> int:
    return info.header_beats + info.weight_beats + info.neuron_beats


def pack_tile_static(program: Program, ln, cfg: SIAConfig, T: int) -> bytes:
    """Header + weights + neuron params of one launch (the part that is program; a layer
    split over launches, `regmap.launch_chunks`: its first chunk's header)."""
    if cfg.stream_bits != rm.BEAT_BITS:
        raise SiaError(f"the packet format is defined for {rm.BEAT_BITS}-bit streams; "
                       f"stream_bits={cfg.stream_bits} is not supported by sia.hw.regmap")
    T = rm.launch_chunks(program, ln.layer, cfg, T)[0][1]
    info = rm.tile_info(program, ln.layer, ln.tile, cfg, T)
    beats = rm.pack_tile(program, ln.layer, ln.tile, _zero_inputs(program, ln.layer, T), cfg, T)
    return beats_to_bytes(beats[:_static_beats(info)])


def skeleton(image) -> Program:
    """A Program with the image's topology and zero weights (no memory: broadcast views):
    what regmap needs to size and (un)pack a launch's spike maps and outputs on the board."""
    key = id(image)
    hit = _SKELETONS.get(key)
    if hit is not None and hit[0] is image:
        return hit[1]
    m = image.manifest
    layers = []
    for L in m["layers"]:
        C = L["shape"][0]
        inputs = []
        for s in L["inputs"]:
            if s["op"] == "conv":
                cin = (m["input_shape"] if s["source"] == IMAGE else m["layers"][s["source"]]["shape"])[0]
                shape = (C, cin, *s["kernel"])
            elif s["op"] == "dense":
                src = m["input_shape"] if s["source"] == IMAGE else m["layers"][s["source"]]["shape"]
                shape = (C, src[0] * (src[1] // s["pool"]) * (src[2] // s["pool"]))
            else:
                shape = (C,)
            inputs.append(Synapse(source=s["source"], op=s["op"],
                                  weight=np.broadcast_to(np.int64(0), shape),
                                  weight_bits=s["weight_bits"], stride=s["stride"],
                                  padding=s["padding"], pool=s["pool"]))
        z = np.zeros(C, np.int64)
        layers.append(Layer(name=L["name"], kind=L["kind"], shape=tuple(L["shape"]), bias=z,
                            v_init=z, v_bits=L["v_bits"], acc_bits=L["acc_bits"], inputs=inputs,
                            threshold=np.ones(C, np.int64) if L["kind"] == "if" else None,
                            signed=bool(L.get("signed", False))))
    p = Program(name=m["program"], input_shape=tuple(m["input_shape"]), levels=m["levels"],
                timesteps=m["timesteps"], t_max=m["timesteps"], layers=layers,
                num_classes=m["num_classes"])
    _SKELETONS.clear()
    _SKELETONS[key] = (image, p)
    return p


_SKELETONS: dict = {}


def launch_chunks(image, k: int) -> list[tuple[int, int]]:
    """The steps [t0, t1) of one image's launches of launch k's layer (`regmap.launch_chunks`:
    one launch of all T steps unless its input maps do not fit the buffers)."""
    cache = image.__dict__.setdefault("_chunks", {})
    if k not in cache:
        ln = image.launches[k]
        cache[k] = rm.launch_chunks(skeleton(image), ln["layer"], image.config, image.timesteps)
    return cache[k]


def launch_info(image, k: int, steps: tuple[int, int] | None = None) -> rm.TileInfo:
    """Beat counts of launch k over `steps` (default: its first chunk, the longest)."""
    t0, t1 = steps or launch_chunks(image, k)[0]
    ln = image.launches[k]
    cache = image.__dict__.setdefault("_infos", {})
    if (k, t1 - t0) not in cache:
        cache[k, t1 - t0] = rm.tile_info(skeleton(image), ln["layer"], ln["tile"], image.config,
                                         t1 - t0)
    return cache[k, t1 - t0]


def packed_header(image, k: int, images: int, keep: bool,
                  steps: tuple[int, int] | None = None) -> bytes:
    """The header of launch k carrying `images` images (packed launch, interface 1.3:
    timesteps = images x T, period = T, the input beats of all of them), `keep` set
    (a resident-weight launch, interface 1.1: only this header and the input maps are
    sent, the weights of the previous launch are reused) or not; `steps` [t0, t1) of a
    layer split over launches (interface 1.10: a chunk after the first resumes)."""
    t0, t1 = steps or launch_chunks(image, k)[0]
    info = launch_info(image, k, (t0, t1))
    beats = bytes_to_beats(image.tile_static(k)[:8 * info.header_beats])
    for name, value in (("timesteps", images * (t1 - t0)), ("period", t1 - t0),
                        ("sbeats", images * info.spike_beats), ("keep", int(keep)),
                        ("resume", int(t0 > 0))):
        b, lsb, bits = rm.LAYER_LAYOUT[name]
        if not 0 <= value < 1 << bits:
            raise SiaError(f"launch {k}: {name}={value} does not fit the {bits}-bit field")
        beats[b] = beats[b] & ~(((1 << bits) - 1) << lsb) | value << lsb
    return beats_to_bytes(beats)


def group_descriptors(image, k: int) -> list[dict]:
    """The group descriptors of launch k's header."""
    info = launch_info(image, k)
    beats = bytes_to_beats(image.tile_static(k)[:8 * info.header_beats])
    n = rm.unpack_fields(rm.LAYER_LAYOUT, beats[:rm.LAYER_BEATS])["ngroups"]
    return [rm.unpack_fields(rm.GROUP_LAYOUT, beats[rm.LAYER_BEATS + rm.GROUP_BEATS * g:
                                                    rm.LAYER_BEATS + rm.GROUP_BEATS * (g + 1)])
            for g in range(n)]


def sign_pairs(image, k: int) -> bool:
    """Does launch k carry a sign-pair group (descriptor bit `spair`, interface 1.12)?"""
    return any(g["spair"] for g in group_descriptors(image, k))


def drained_sign_pair(image, k: int) -> bool:
    """Does launch k's drain group carry a sign pair (`drain` and `spair`, interface 1.13)?"""
    return any(g["spair"] and g["drain"] for g in group_descriptors(image, k))


def launch_images(image, k: int, limit: int | None) -> int:
    """Images one launch k can carry (`regmap.launch_images`; at most `limit`)."""
    ln = image.launches[k]
    return rm.launch_images(skeleton(image), ln["layer"], image.config, image.timesteps, limit)


def input_nbytes(image, k: int, steps: tuple[int, int] | None = None) -> int:
    return launch_info(image, k, steps).spike_beats * 8


def output_nbytes(image, k: int, steps: tuple[int, int] | None = None) -> int:
    return launch_info(image, k, steps).out_beats * 8


def pack_inputs(image, k: int, outs: dict, x: np.ndarray,
                steps: tuple[int, int] | None = None) -> bytes:
    """The input-map section of launch k (over `steps`, default all T): this image's pixels
    (x, uint8 [C, H, W]) and the spike maps (outs: layer -> uint8 [T, C, H, W]; a signed
    layer's int8) of the layers it reads."""
    ln = image.launches[k]
    prog = skeleton(image)
    t0, t1 = steps or (0, image.timesteps)
    T = t1 - t0
    inputs = {}
    for s in prog.layers[ln["layer"]].inputs:
        if s.source == IMAGE:
            inputs[IMAGE] = x
        else:
            if s.source not in outs:
                raise SiaError(f"launch {k}: layer {s.source}'s output is not available yet")
            inputs[s.source] = outs[s.source][t0:t1]
    return beats_to_bytes(rm.pack_inputs(prog, ln["layer"], ln["tile"], inputs, image.config, T))


def unpack_output(image, k: int, data: bytes, steps: tuple[int, int] | None = None) -> np.ndarray:
    ln = image.launches[k]
    t0, t1 = steps or (0, image.timesteps)
    return rm.unpack_output(skeleton(image), ln["layer"], ln["tile"], bytes_to_beats(data),
                            image.config, t1 - t0)


# ------------------------------------------------------------------ registers

def read_hw_config(read) -> SIAConfig:
    """ID, VERSION and PARAM_* registers -> the accelerator's SIAConfig."""
    ident = read(REG["ID"])
    if ident != rm.ID_MAGIC:
        raise SiaError(f"no SIA accelerator at this address: ID reads 0x{ident:08X}, "
                       f"expected 0x{rm.ID_MAGIC:08X} (wrong bitstream or base address?)")
    ver = read(REG["VERSION"])
    if ver >> 16 != rm.VERSION >> 16:
        raise SiaError(f"accelerator interface version {ver >> 16}.{ver & 0xFFFF}, this sia "
                       f"speaks {rm.VERSION >> 16}.x; use a matching sia or bitstream")
    vals = {n: read(REG[f"PARAM_{n.upper()}"]) for n in rm.PARAM_NAMES}
    # a register newer than the bitstream (`regmap.PARAM_SINCE`) reads as what builds
    # before it had: the option off, 4 psum slots, full-map membrane banks
    before = {"membrane_positions": vals["max_height"] * vals["max_width"], "psum_slots": 4}
    for n, since in rm.PARAM_SINCE.items():
        if ver & 0xFFFF < int(since.split(".")[1]):
            vals[n] = before.get(n, 0)
    fields = SIAConfig.__dataclass_fields__
    kw = {n: bool(v) if isinstance(fields[n].default, bool) else v
          for n, v in vals.items() if n in fields}
    kw["clock_mhz"] = vals["clock_khz"] / 1000.0
    try:
        return SIAConfig(**kw)
    except SiaError as e:
        raise SiaError(f"accelerator reports an invalid parameter set ({e})") from None


def reset_accelerator(write):
    write(REG["CTRL"], rm.CTRL_SOFT_RESET)


def start_accelerator(write):
    write(REG["CTRL"], rm.CTRL_START)


def wait_done(read, expired, sleep, poll_s) -> str | None:
    """Polls STATUS until DONE (returns None) or ERROR (returns the message); raises on
    the deadline."""
    while True:
        st = read(REG["STATUS"])
        if st & rm.STATUS_ERROR:
            code = (st >> 8) & 0xFF
            return (f"accelerator reported error {code} "
                    f"({rm.ERROR_CODES.get(code, 'unknown')}), STATUS=0x{st:08X}")
        if st & rm.STATUS_DONE:
            return None
        if expired():
            raise SiaError(f"accelerator did not signal DONE (STATUS=0x{st:08X}, busy="
                           f"{bool(st & rm.STATUS_BUSY)})")
        sleep(poll_s)


def status_error(read) -> str | None:
    st = read(REG["STATUS"])
    if st & rm.STATUS_ERROR:
        code = (st >> 8) & 0xFF
        return (f"accelerator reported error {code} ({rm.ERROR_CODES.get(code, 'unknown')}), "
                f"STATUS=0x{st:08X}")
    return None


def read_cycles(read) -> int:
    return read(REG["CYCLES_LO"]) | (read(REG["CYCLES_HI"]) << 32)


def regmap_summary(cfg: SIAConfig) -> dict:
    """regmap.json of the Vivado directory: registers (with this build's values) and the
    packet layout, for whoever writes another driver."""
    d = rm.register_map(cfg)
    d["interface_version"] = rm.VERSION
    d["packet"] = {"beat_bits": rm.BEAT_BITS, "header_magic": rm.HDR_MAGIC,
                   "layer_fields": {n: list(v) for n, v in rm.LAYER_LAYOUT.items()},
                   "group_fields": {n: list(v) for n, v in rm.GROUP_LAYOUT.items()},
                   "layer_beats": rm.LAYER_BEATS, "group_beats": rm.GROUP_BEATS}
    d["ip_vlnv"] = IP_VLNV
    return d

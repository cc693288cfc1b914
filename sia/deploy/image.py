"""The program image: what the accelerator consumes, in one checked binary file.

    offset  size  field (little-endian)
    0       8     magic b"SIAIMG\\r\\n" (the CR LF catches text-mode transfers)
    8       2     image format version (IMAGE_VERSION)
    10      2     header size (HEADER_SIZE)
    12      4     register-map / packet-format version the payload follows (sia.hw.regmap)
    16      4     parameter-set id: CRC-32 of the canonical SIAConfig JSON
    20      4     number of tiles (launches)
    24      4     manifest offset     28  4  manifest size
    32      4     payload offset      36  4  payload size
    40      4     total file size
    44      4     CRC-32 of the payload     48  4  CRC-32 of the manifest
    52      8     reserved (zero)
    60      4     CRC-32 of bytes 0..59 (the header)

    manifest  UTF-8 JSON: the full parameter set, the program's topology (layer kinds,
              shapes, sources, ops; no weights), T, the launch table (layer, tile, channel
              range, payload offset and size of the tile's static packet part)
    payload   per launch, the static part of its tile packet exactly as the RTL's packet
              parser takes it over AXI4-Stream (descriptor words, weight-memory words,
              threshold / bias / v_init words: sia.hw.regmap's format), each padded to a
              whole number of stream beats. The driver appends the input spike maps per
              image (they are data, not program) and streams packet = static + spikes.

`sia deploy pack PROGRAM -o IMAGE` writes it (temp file + rename); load_image checks every
field and refuses an image built for another parameter set, naming the differing fields.
"""

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from sia import SiaError, __version__
from sia.hw.params import SIAConfig
from sia.program.format import Program

MAGIC = b"SIAIMG\r\n"
# 2 (session 7): a decimated group's input maps are streamed as their view only
# (`regmap.decimation`), so its descriptor in the packet heads differs from version 1's
IMAGE_VERSION = 2
HEADER_FMT = "<8sHHIIIIIIIIII8sI"
HEADER_SIZE = struct.calcsize(HEADER_FMT)   # 64
assert HEADER_SIZE == 64


def config_id(cfg: SIAConfig) -> int:
    return zlib.crc32(json.dumps(cfg.to_json(), sort_keys=True).encode())


def _crc(b: bytes) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


@dataclass
class ProgramImage:
    config: SIAConfig
    regmap_version: int
    manifest: dict
    payload: bytes

    @property
    def launches(self) -> list[dict]:
        return self.manifest["launches"]

    def tile_static(self, k: int) -> bytes:
        ln = self.launches[k]
        return self.payload[ln["offset"]:ln["offset"] + ln["size"]]

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])

    def to_bytes(self) -> bytes:
        man = json.dumps(self.manifest, sort_keys=True, separators=(",", ":")).encode()
        man += b" " * (-len(man) % 8)
        m_off = HEADER_SIZE
        p_off = m_off + len(man)
        total = p_off + len(self.payload)
        head = struct.pack(HEADER_FMT[:-1], MAGIC, IMAGE_VERSION, HEADER_SIZE, self.regmap_version,
                           config_id(self.config), len(self.launches), m_off, len(man), p_off,
                           len(self.payload), total, _crc(self.payload), _crc(man), bytes(8))
        return head + struct.pack("<I", _crc(head)) + man + self.payload


def build_image(program: Program, cfg: SIAConfig | None = None, T: int | None = None) -> ProgramImage:
    """Packs a validated program for the accelerator with parameter set cfg."""
    from sia.deploy import regmap_bridge as rb
    from sia.deploy.tiles import plan
    from sia.hw.model.fit import check_membranes
    from sia.hw.regmap import check_launches
    cfg = cfg or SIAConfig()
    T = program.timesteps if T is None else int(T)
    if not 1 <= T <= program.t_max:
        raise SiaError(f"T={T} outside 1..t_max={program.t_max} of program {program.name}")
    for i in range(len(program.layers)):
        check_launches(program, i, cfg, T)     # what this build of the RTL refuses
        check_membranes(program, i, cfg)       # (its packet check refuses these too)
    beat = cfg.stream_bits // 8
    payload, launches = bytearray(), []
    for ln in plan(program, cfg):
        static = rb.pack_tile_static(program, ln, cfg, T)
        static += bytes(-len(static) % beat)
        launches.append({"layer": ln.layer, "tile": ln.tile, "c0": ln.c0, "c1": ln.c1,
                         "offset": len(payload), "size": len(static)})
        payload += static
    layers = [{"name": L.name, "kind": L.kind, "shape": list(L.shape), "v_bits": L.v_bits,
               "acc_bits": L.acc_bits,
               "inputs": [{"source": s.source, "op": s.op, "stride": s.stride, "padding": s.padding,
                           "pool": s.pool, "weight_bits": s.weight_bits,
                           "kernel": list(s.weight.shape[2:]) if s.op == "conv" else [1, 1]}
                          for s in L.inputs],
               **({"signed": True} if L.signed else {})}   # signed IF neurons (1.9)
              for L in program.layers]
    manifest = {"format": "sia-program-image", "sia_version": __version__, "program": program.name,
                "input_shape": list(program.input_shape), "num_classes": program.num_classes,
                "timesteps": T, "levels": program.levels, "sia_config": cfg.to_json(),
                "layers": layers, "launches": launches}
    return ProgramImage(cfg, rb.regmap_version(), manifest, bytes(payload))


def save_image(img: ProgramImage, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(img.to_bytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _diff(a: SIAConfig, b: SIAConfig) -> str:
    da, db = a.to_json(), b.to_json()
    return ", ".join(f"{k}={da[k]} (accelerator: {db[k]})" for k in da if da[k] != db.get(k))


def parse_image(data: bytes, expect: SIAConfig | None = None, where: str = "image",
                expect_regmap: int | None = None) -> ProgramImage:
    """Checks every header field, both CRCs and the parameter set; returns the image."""
    if len(data) < HEADER_SIZE:
        raise SiaError(f"{where}: {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    (magic, version, hsize, rm_ver, cfg_id, n_tiles, m_off, m_size, p_off, p_size, total,
     p_crc, m_crc, reserved, h_crc) = struct.unpack(HEADER_FMT, data[:HEADER_SIZE])
    if magic != MAGIC:
        raise SiaError(f"{where}: not a sia program image (bad magic {magic!r})")
    if _crc(data[:HEADER_SIZE - 4]) != h_crc:
        raise SiaError(f"{where}: header CRC mismatch (corrupted image)")
    if version != IMAGE_VERSION:
        raise SiaError(f"{where}: image format version {version}, this sia reads {IMAGE_VERSION}")
    if hsize != HEADER_SIZE or reserved != bytes(8):
        raise SiaError(f"{where}: malformed header (size {hsize}, reserved bytes set)")
    if total != len(data):
        raise SiaError(f"{where}: file is {len(data)} bytes, header says {total} (truncated?)")
    if not (m_off == HEADER_SIZE and p_off == m_off + m_size and p_off + p_size == total):
        raise SiaError(f"{where}: section offsets/sizes inconsistent")
    man_b, payload = data[m_off:m_off + m_size], data[p_off:p_off + p_size]
    if _crc(man_b) != m_crc:
        raise SiaError(f"{where}: manifest CRC mismatch (corrupted image)")
    if _crc(payload) != p_crc:
        raise SiaError(f"{where}: payload CRC mismatch (corrupted image)")
    try:
        manifest = json.loads(man_b.decode())
        cfg = SIAConfig.from_json(manifest["sia_config"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise SiaError(f"{where}: unreadable manifest ({type(e).__name__})") from None
    if manifest.get("format") != "sia-program-image":
        raise SiaError(f"{where}: manifest is not a sia program image manifest")
    if config_id(cfg) != cfg_id:
        raise SiaError(f"{where}: parameter-set id does not match the manifest's parameter set")
    launches = manifest.get("launches", [])
    if not isinstance(launches, list) or not all(
            isinstance(ln, dict) and all(type(ln.get(f)) is int
                                         for f in ("layer", "tile", "c0", "c1", "offset", "size"))
            for ln in launches):
        raise SiaError(f"{where}: malformed manifest (the launch table must list objects with "
                       f"integer layer, tile, c0, c1, offset and size)")
    if len(launches) != n_tiles:
        raise SiaError(f"{where}: header says {n_tiles} tiles, manifest lists {len(launches)}")
    end = 0
    for k, ln in enumerate(launches):
        if ln["offset"] != end or ln["size"] <= 0:
            raise SiaError(f"{where}: launch {k} payload range is not contiguous")
        end += ln["size"]
    if end != p_size:
        raise SiaError(f"{where}: launches cover {end} of {p_size} payload bytes")
    _check_launches(manifest, payload, cfg, where)
    if expect is not None and cfg != expect:
        raise SiaError(f"{where}: built for another SIA parameter set: {_diff(cfg, expect)}; "
                       f"re-pack with `sia deploy pack` for this accelerator")
    if expect_regmap is not None and rm_ver != expect_regmap:
        raise SiaError(f"{where}: packet format version {rm_ver}, the accelerator speaks "
                       f"{expect_regmap}; re-pack with a matching sia")
    return ProgramImage(cfg, rm_ver, manifest, payload)


def _check_launches(manifest: dict, payload: bytes, cfg: SIAConfig, where: str):
    """Manifest <-> payload: every launch names a real layer and tile, and its static part
    is a packet head of exactly the size sia.hw.regmap gives that launch."""
    from sia.deploy import regmap_bridge as rb
    from sia.hw import regmap as rm
    from sia.hw.model.fit import membrane_words
    from sia.program.format import IMAGE
    try:
        layers, T = manifest["layers"], int(manifest["timesteps"])
        if not 1 <= T <= cfg.max_timesteps:
            raise SiaError(f"{where}: T={T} outside 1..max_timesteps={cfg.max_timesteps}")
        if not isinstance(manifest["program"], str) or not isinstance(layers, list):
            raise TypeError("program must be a name, layers a list")
        for i, L in enumerate(layers):
            if not isinstance(L["name"], str):
                raise TypeError(f"layer {i} has no name")
            # the membrane rule of sia.hw.model.fit.check_membranes (the RTL refuses it too)
            _, h, w = (int(v) for v in L["shape"])
            need = membrane_words((0, h, w), L["kind"], L["inputs"][0]["source"] == IMAGE)
            if need > cfg.membrane_positions:
                raise SiaError(f"{where}: layer {i} ({L['name']}): {h}x{w} membranes need "
                               f"{need} words per bank > membrane_positions="
                               f"{cfg.membrane_positions}")
        img = ProgramImage(cfg, rm.VERSION, manifest, payload)
        expected = [(i, k) for i, L in enumerate(layers)
                    for k in range(-(-int(L["shape"][0]) // cfg.pes))]
        got = [(ln["layer"], ln["tile"]) for ln in manifest["launches"]]
        if got != expected:
            raise SiaError(f"{where}: launch table does not cover the layers' tiles in order")
        for k, ln in enumerate(manifest["launches"]):
            info = rb.launch_info(img, k)
            static = 8 * (info.header_beats + info.weight_beats + info.neuron_beats)
            if ln["size"] != static or (ln["c0"], ln["c1"]) != (ln["tile"] * cfg.pes,
                                                                ln["tile"] * cfg.pes + info.channels):
                raise SiaError(f"{where}: launch {k} does not match its layer's tile geometry")
            b, lsb, bits = rm.LAYER_LAYOUT["magic"]
            word = int.from_bytes(payload[ln["offset"] + 8 * b:ln["offset"] + 8 * b + 8], "little")
            if (word >> lsb) & ((1 << bits) - 1) != rm.HDR_MAGIC:
                raise SiaError(f"{where}: launch {k} does not start with a tile-packet header")
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise SiaError(f"{where}: malformed manifest ({type(e).__name__}: {e})") from None


def load_image(path, expect: SIAConfig | None = None, expect_regmap: int | None = None) -> ProgramImage:
    path = Path(path)
    if not path.is_file():
        raise SiaError(f"no such image file: {path}")
    return parse_image(path.read_bytes(), expect, str(path), expect_regmap)

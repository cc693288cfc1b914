"""Program files: one safetensors file; integer tensors + the JSON manifest stored
in its header metadata under "sia.program" (inspect with `sia inspect`).

Writes go to a temporary file renamed into place, so a failed save leaves nothing
half-written; loads validate everything before returning.

A name ending in `.xz` holds the same safetensors bytes xz-compressed (Python's lzma):
4-bit weight codes stored one per int8 compress ~3x, which keeps full-width zoo
entries small.
"""

import json
import lzma
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load, load_file, save

from sia import SiaError
from sia.program.format import FORMAT_VERSION, Layer, Program, Synapse
from sia.program.validate import check_version, validate

MANIFEST_KEY = "sia.program"


def _int_dtype(bits: int):
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if bits <= np.iinfo(dt).bits:
            return dt
    raise SiaError(f"{bits}-bit integers are wider than int64")


def _stored(a: np.ndarray, bits: int) -> np.ndarray:
    # C order: safetensors writes an array's memory as it lies, so a strided view (e.g.
    # the weights of a channels_last model) would come back permuted.
    return np.ascontiguousarray(a.astype(_int_dtype(bits)))


def to_manifest(p: Program) -> tuple[dict, dict]:
    tensors, layers = {}, []
    for i, layer in enumerate(p.layers):
        key = f"layers.{i}"
        tensors[f"{key}.bias"] = _stored(layer.bias, layer.acc_bits)
        tensors[f"{key}.v_init"] = _stored(layer.v_init, layer.v_bits)
        if layer.threshold is not None:
            tensors[f"{key}.threshold"] = _stored(layer.threshold, layer.v_bits)
        inputs = []
        for j, s in enumerate(layer.inputs):
            tensors[f"{key}.inputs.{j}.weight"] = _stored(s.weight, s.weight_bits)
            inputs.append({"source": s.source, "op": s.op, "weight_bits": s.weight_bits,
                           "stride": s.stride, "padding": s.padding, "pool": s.pool})
        layers.append({"name": layer.name, "kind": layer.kind, "shape": list(layer.shape),
                       "v_bits": layer.v_bits, "acc_bits": layer.acc_bits, "inputs": inputs,
                       **({"signed": True} if layer.signed else {})})
    # version 1 unless a layer has signed neurons: older readers keep reading the rest
    manifest = {"format": "sia-snn-program", "format_version": FORMAT_VERSION if p.signed else 1,
                "name": p.name,
                "input_shape": list(p.input_shape), "input_bits": p.input_bits,
                "levels": p.levels, "timesteps": p.timesteps, "t_max": p.t_max,
                "num_classes": p.num_classes, "layers": layers, "meta": p.meta}
    return manifest, tensors


def save_program(p: Program, path) -> Path:
    validate(p)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest, tensors = to_manifest(p)
    meta = {MANIFEST_KEY: json.dumps(manifest)}
    if path.is_dir():
        raise SiaError(f"{path} is a directory; give a program file name")
    tmp = path.with_name(path.name + ".tmp")
    data = save(tensors, metadata=meta)
    try:
        # plain writes (not save_file's private temporary file): the file gets the
        # umask's mode like any other output, and a failure names the real path
        tmp.write_bytes(lzma.compress(data, preset=9) if _xz(path) else data)
        os.replace(tmp, path)
    except OSError as e:
        raise SiaError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _xz(path: Path) -> bool:
    return Path(path).suffix == ".xz"


def _unxz(path) -> bytes:
    try:
        return lzma.decompress(Path(path).read_bytes())
    except lzma.LZMAError as e:
        raise SiaError(f"{path}: not a readable xz file ({e})") from None


def _header_metadata(data: bytes) -> dict:
    """The __metadata__ of safetensors bytes (8-byte little-endian header size, JSON)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header.get("__metadata__") or {}


def read_manifest(path, data: bytes | None = None) -> dict:
    """The manifest of a program file; `data`: its bytes, already decompressed (.xz)."""
    from safetensors import safe_open
    try:
        if _xz(path):
            meta = _header_metadata(_unxz(path) if data is None else data)
        else:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
    except SiaError:
        raise
    except Exception as e:
        raise SiaError(f"{path}: not a readable program file ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else 'malformed'})") from None
    if MANIFEST_KEY not in meta:
        raise SiaError(f"{path}: safetensors file without a sia program manifest")
    try:
        manifest = json.loads(meta[MANIFEST_KEY])
    except json.JSONDecodeError as e:
        raise SiaError(f"{path}: manifest is not valid JSON ({e.msg})") from None
    if not isinstance(manifest, dict):
        raise SiaError(f"{path}: manifest is not a JSON object")
    return manifest


def from_manifest(manifest: dict, tensors: dict, where: str = "program") -> Program:
    if not isinstance(manifest, dict) or manifest.get("format") != "sia-snn-program":
        raise SiaError(f"{where}: not a sia SNN program manifest")
    version = manifest.get("format_version")
    check_version(version)
    try:
        layers = []
        for i, m in enumerate(manifest["layers"]):
            key = f"layers.{i}"
            inputs = [Synapse(source=int(s["source"]), op=str(s["op"]),
                              weight=tensors[f"{key}.inputs.{j}.weight"].astype(np.int64),
                              weight_bits=int(s["weight_bits"]), stride=int(s["stride"]),
                              padding=int(s["padding"]), pool=int(s["pool"]))
                      for j, s in enumerate(m["inputs"])]
            th = tensors.get(f"{key}.threshold")
            layers.append(Layer(name=str(m["name"]), kind=str(m["kind"]),
                                shape=tuple(int(v) for v in m["shape"]),
                                bias=tensors[f"{key}.bias"].astype(np.int64),
                                v_init=tensors[f"{key}.v_init"].astype(np.int64),
                                v_bits=int(m["v_bits"]), acc_bits=int(m["acc_bits"]),
                                inputs=inputs,
                                threshold=None if th is None else th.astype(np.int64),
                                signed=_signed(m, version, f"{where} layer {i}")))
        p = Program(name=str(manifest["name"]),
                    input_shape=tuple(int(v) for v in manifest["input_shape"]),
                    levels=int(manifest["levels"]), timesteps=int(manifest["timesteps"]),
                    t_max=int(manifest["t_max"]), layers=layers,
                    num_classes=int(manifest["num_classes"]), meta=dict(manifest.get("meta", {})),
                    input_bits=int(manifest.get("input_bits", 8)))
    except KeyError as e:
        raise SiaError(f"{where}: missing field or tensor {e.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise SiaError(f"{where}: malformed manifest ({e})") from None
    extra = sorted(set(tensors) - _tensor_names(manifest))
    if extra:
        raise SiaError(f"{where}: unexpected tensors {extra[:3]}")
    return validate(p)


def _signed(m: dict, version, where: str) -> bool:
    signed = m.get("signed", False)
    if not isinstance(signed, bool):
        raise SiaError(f"{where}: 'signed' must be true or false")
    if signed and version < 2:
        raise SiaError(f"{where}: signed neurons need format version 2, the file says {version}")
    return signed


def _tensor_names(manifest: dict) -> set[str]:
    names = set()
    for i, m in enumerate(manifest["layers"]):
        names |= {f"layers.{i}.bias", f"layers.{i}.v_init"}
        if m["kind"] == "if":
            names.add(f"layers.{i}.threshold")
        names |= {f"layers.{i}.inputs.{j}.weight" for j in range(len(m["inputs"]))}
    return names


def load_program(path) -> Program:
    """Load a program file (or a zoo name, resolved by sia.zoo when installed)."""
    if not str(path):
        raise SiaError("empty program file name")
    path = Path(path)
    if not path.exists():
        raise SiaError(f"no such program file: {path}")
    if path.is_dir():
        raise SiaError(f"{path} is a directory, not a program file")
    data = _unxz(path) if _xz(path) else None
    manifest = read_manifest(path, data)
    try:
        tensors = load(data) if data is not None else load_file(str(path))
    except Exception as e:
        raise SiaError(f"{path}: truncated or corrupt tensor data ({type(e).__name__})") from None
    return from_manifest(manifest, tensors, where=str(path))

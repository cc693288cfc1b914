"""CIFAR-10 from the official *binary* distribution (never the pickled one).

Accepted layouts under the data directory (argument, else $SIA_CIFAR10_DIR):
    cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin   (or the dir itself)
    cifar-10-binary.tar.gz                                   (read in place)
One record = 1 label byte + 3072 pixel bytes (R, G, B planes, 32x32 row-major).
"""

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from sia import SiaError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ENV = "SIA_CIFAR10_DIR"
BIN_DIR = "cifar-10-batches-bin"
TARBALL = "cifar-10-binary.tar.gz"
RECORD = 1 + 3 * 32 * 32
PER_FILE = 10_000
FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def resolve_dir(data_dir=None) -> Path:
    d = data_dir or os.environ.get(ENV)
    if not d:
        raise SiaError(f"no CIFAR-10 directory given: pass --data-dir or set {ENV}")
    return Path(d).expanduser()


def parse_records(raw: bytes, name: str, records: int = PER_FILE):
    """Decode one batch file; truncated or corrupt data is a one-line SiaError."""
    if len(raw) % RECORD or len(raw) // RECORD != records:
        raise SiaError(f"CIFAR-10 file {name} is truncated or the wrong size: {len(raw)} bytes, "
                       f"expected {records} records of {RECORD} bytes")
    a = np.frombuffer(raw, np.uint8).reshape(-1, RECORD)
    if a[:, 0].max() > 9:
        raise SiaError(f"CIFAR-10 file {name} is corrupt: label {int(a[:, 0].max())} > 9")
    images = torch.from_numpy(a[:, 1:].reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(a[:, 0].astype(np.int64))


def _read_members(tar_path: Path, names):
    try:
        with tarfile.open(tar_path, "r:gz") as tf:
            out = []
            for n in names:
                try:
                    f = tf.extractfile(f"{BIN_DIR}/{n}")
                except KeyError:
                    raise SiaError(f"{tar_path} has no member {BIN_DIR}/{n}") from None
                out.append((f"{tar_path.name}:{n}", f.read()))
            return out
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise SiaError(f"cannot read {tar_path}: {e}") from None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(data_dir) -> Path:
    """Fetch the official tarball into data_dir and check its md5."""
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    dst, part = d / TARBALL, d / (TARBALL + ".part")
    try:
        urllib.request.urlretrieve(URL, part)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise SiaError(f"cannot download CIFAR-10 from {URL} (offline?): {e}") from None
    if _md5(part) != MD5:
        part.unlink()
        raise SiaError(f"downloaded {TARBALL} fails its md5 check (expected {MD5})")
    part.rename(dst)
    return dst


def load_cifar10(split: str, data_dir=None, download_ok: bool = False,
                 records_per_file: int = PER_FILE):
    """Return (images uint8 [N,3,32,32], labels int64 [N]) for split 'train' or 'test'."""
    if split not in FILES:
        raise SiaError(f"unknown CIFAR-10 split {split!r} (train or test)")
    d = resolve_dir(data_dir)
    names = FILES[split]
    bin_dir = next((p for p in (d / BIN_DIR, d) if (p / names[0]).is_file()), None)
    if bin_dir is not None:
        for n in names:
            if not (bin_dir / n).is_file():
                raise SiaError(f"CIFAR-10 file missing: {bin_dir / n}")
        blobs = [(str(bin_dir / n), (bin_dir / n).read_bytes()) for n in names]
    else:
        tar = d / TARBALL
        if not tar.is_file():
            if not download_ok:
                raise SiaError(f"no CIFAR-10 binary data in {d} (expected {BIN_DIR}/ or {TARBALL})")
            tar = download(d)
        blobs = _read_members(tar, names)
    parts = [parse_records(raw, name, records_per_file) for name, raw in blobs]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def describe(data_dir=None) -> str:
    """Name of the data copy, recorded beside every number (e.g. 'cifar10-jpeg75')."""
    return resolve_dir(data_dir).resolve().name

"""CIFAR-10 binary reader (synthetic files), digits split, augmentation, batches."""

import tarfile
import urllib.error

import numpy as np
import pytest
import torch

from sia import SiaError
from sia.data import Batches, crop_flip, load_cifar10, load_digits_split
from sia.data import cifar

R = 7  # records per synthetic batch file


def _records(seed, n=R, label_max=9):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, label_max + 1, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels[:, None], pixels], 1).tobytes(), labels, pixels


@pytest.fixture
def cifar_dir(tmp_path):
    d = tmp_path / "c10" / cifar.BIN_DIR
    d.mkdir(parents=True)
    for i, name in enumerate(cifar.FILES["train"] + cifar.FILES["test"]):
        (d / name).write_bytes(_records(i)[0])
    return tmp_path / "c10"


def test_binary_layout(cifar_dir):
    x, y = load_cifar10("train", cifar_dir, records_per_file=R)
    assert x.shape == (5 * R, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    _, labels, pixels = _records(1)
    assert torch.equal(y[R:2 * R], torch.from_numpy(labels.astype(np.int64)))
    # CHW: the first 1024 bytes after the label are the red plane, row-major
    assert torch.equal(x[R, 0, 0, :], torch.from_numpy(pixels[0, :32]))
    assert torch.equal(x[R, 2, 31, 31], torch.tensor(pixels[0, 3071]))
    xt, _ = load_cifar10("test", cifar_dir / cifar.BIN_DIR, records_per_file=R)  # the dir itself
    assert len(xt) == R


def test_tarball_equals_directory(cifar_dir, tmp_path, monkeypatch):
    tdir = tmp_path / "tar"
    tdir.mkdir()
    with tarfile.open(tdir / cifar.TARBALL, "w:gz") as tf:
        tf.add(cifar_dir / cifar.BIN_DIR, arcname=cifar.BIN_DIR)
    monkeypatch.setenv(cifar.ENV, str(tdir))
    for split in ("train", "test"):
        a = load_cifar10(split, records_per_file=R)
        b = load_cifar10(split, cifar_dir, records_per_file=R)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_truncated_wrong_count_corrupt(cifar_dir):
    f = cifar_dir / cifar.BIN_DIR / "test_batch.bin"
    raw = f.read_bytes()
    f.write_bytes(raw[:-5])
    with pytest.raises(SiaError, match="truncated"):
        load_cifar10("test", cifar_dir, records_per_file=R)
    f.write_bytes(raw[:-cifar.RECORD])
    with pytest.raises(SiaError, match="wrong size"):
        load_cifar10("test", cifar_dir, records_per_file=R)
    f.write_bytes(bytes([10]) + raw[1:])
    with pytest.raises(SiaError, match="corrupt"):
        load_cifar10("test", cifar_dir, records_per_file=R)


def test_missing_and_bad_tarball(tmp_path, monkeypatch):
    monkeypatch.delenv(cifar.ENV, raising=False)
    with pytest.raises(SiaError, match=cifar.ENV):
        load_cifar10("train")
    with pytest.raises(SiaError, match="no CIFAR-10 binary data"):
        load_cifar10("train", tmp_path)
    (tmp_path / cifar.TARBALL).write_bytes(b"not a tarball")
    with pytest.raises(SiaError, match="cannot read"):
        load_cifar10("train", tmp_path)
    with pytest.raises(SiaError, match="split"):
        load_cifar10("valid", tmp_path)


def test_download_offline_and_md5(tmp_path, monkeypatch):
    def offline(url, dst):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(cifar.urllib.request, "urlretrieve", offline)
    with pytest.raises(SiaError, match="offline"):
        load_cifar10("train", tmp_path, download_ok=True)

    def garbage(url, dst):
        open(dst, "wb").write(b"garbage")
    monkeypatch.setattr(cifar.urllib.request, "urlretrieve", garbage)
    with pytest.raises(SiaError, match="md5"):
        load_cifar10("train", tmp_path, download_ok=True)
    assert not any(tmp_path.iterdir())


def test_shared_copy():
    import os
    if not os.environ.get(cifar.ENV):
        pytest.skip(f"set {cifar.ENV} to the CIFAR-10 binary copy to check it")
    x, y = load_cifar10("test")
    assert x.shape == (10_000, 3, 32, 32)
    assert torch.bincount(y).tolist() == [1000] * 10


def test_digits_split():
    xtr, ytr = load_digits_split("train")
    xte, yte = load_digits_split("test")
    assert xtr.shape == (1437, 1, 8, 8) and xte.shape == (360, 1, 8, 8)
    assert xtr.dtype == torch.uint8 and int(xtr.max()) == 255 and int(xtr.min()) == 0
    assert all(35 <= c <= 37 for c in torch.bincount(yte).tolist())  # stratified
    again = load_digits_split("test")
    assert torch.equal(again[0], xte) and torch.equal(again[1], yte)


def _reference_crop_flip(x, seed, pad=4):
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = x.shape
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    flip = torch.rand(b, generator=g) < 0.5
    xp = torch.nn.functional.pad(x, (pad,) * 4)
    out = torch.stack([xp[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(b)])
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def test_crop_flip():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    a = crop_flip(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == torch.uint8 and a.is_contiguous()
    assert torch.equal(a, crop_flip(x, torch.Generator().manual_seed(3)))
    assert torch.equal(a, _reference_crop_flip(x, 3))
    b = crop_flip(x, torch.Generator().manual_seed(0), pad=0)  # only flips remain
    same = (b == x).flatten(1).all(1)
    flipped = (b == x.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()


def test_batches_cover_and_split():
    x = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1)
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in Batches(x, y, 4, shuffle=True, seed=1)])
    assert sorted(seen.tolist()) == list(range(10))
    whole = [yb for _, yb in Batches(x, y, 4, shuffle=True, seed=1, drop_last=True)]
    parts = [[yb for _, yb in Batches(x, y, 4, shuffle=True, seed=1, drop_last=True, rank=r, world=2)]
             for r in range(2)]
    for i, yb in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][i], parts[1][i]]), yb)
    xb, _ = next(iter(Batches(x, y, 10)))
    assert xb.dtype == torch.float32 and float(xb.max()) == pytest.approx(9 / 255)


def test_holdout_split_is_fixed_stratified_and_disjoint():
    import numpy as np
    from sia.data import load_digits_split
    from sia.data.holdout import holdout_indices, split_training
    x, y = load_digits_split("train")
    kept, held = holdout_indices(y.numpy(), 300)
    assert len(held) == 300 and len(kept) == len(y) - 300
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(y)))
    again = holdout_indices(y.numpy(), 300)              # fixed: no seed of the caller's
    assert np.array_equal(again[1], held)
    per_class = np.bincount(y.numpy()[held], minlength=10) / 300
    whole = np.bincount(y.numpy(), minlength=10) / len(y)
    assert np.abs(per_class - whole).max() < 0.01        # stratified by class
    (xk, yk), (xv, yv) = split_training(x, y, 300)
    assert torch.equal(xv, x[torch.from_numpy(held)]) and torch.equal(yk, y[torch.from_numpy(kept)])
    (xk, yk), (xv, yv) = split_training(x, y, 0)          # 0: everything kept, in order
    assert torch.equal(xk, x) and len(yv) == 0
    for bad in (5, len(y) - 5, -1):
        with pytest.raises(SiaError, match=f"holdout {bad}: must be 0, or between 10"):
            holdout_indices(y.numpy(), bad)

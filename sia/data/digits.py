"""scikit-learn's bundled 8x8 digits (no download) as uint8 images [N,1,8,8].

Pixel values 0..16 are scaled to 0..255 (x*255//16) so every dataset shares the
uint8-image input convention. The train/test split is fixed: 1437/360, stratified,
seed 0.
"""

import numpy as np
import torch

from sia import SiaError

TEST_SIZE = 360


def load_digits_split(split: str):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise SiaError(f"unknown digits split {split!r} (train or test)")
    d = load_digits()
    x = (d.images.astype(np.int64) * 255 // 16).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=0)
    idx = np.sort(tr if split == "train" else te)
    return torch.from_numpy(x[idx].copy()), torch.from_numpy(y[idx].copy())

"""A validation split held out of the training images, for choices the test set must not make.

`holdout = N` (a training config key) keeps N training images out of everything a row
trains on - the FP32 twin, the reduced-precision ANN, bias calibration and spike-aware
fine-tuning - and measures accuracy on them beside the test set, so that picking an
epoch count, a fine-tuning stage or a step size can look at the held-out images instead
of the test set. The split is stratified by class and fixed (scikit-learn's
`train_test_split`, seed HOLDOUT_SEED): it depends only on the labels and N, never on a
run's training seed, so every run of a row with the same N holds out the same images.
"""

import json
from pathlib import Path

import numpy as np
import torch

from sia import SiaError

HOLDOUT_SEED = 2410   # fixed for good: changing it changes which images every row held out


def holdout_indices(labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): sorted indices into the training set; n = 0 holds out nothing."""
    labels = np.asarray(labels)
    total = len(labels)
    if n == 0:
        return np.arange(total), np.arange(0)
    classes = len(np.unique(labels))
    if not classes <= n <= total - classes:
        raise SiaError(f"holdout {n}: must be 0, or between {classes} (one image per class) and "
                       f"{total - classes} (the training set has {total} images in {classes} "
                       "classes)")
    from sklearn.model_selection import train_test_split
    kept, held = train_test_split(np.arange(total), test_size=n, stratify=labels,
                                  random_state=HOLDOUT_SEED)
    return np.sort(kept), np.sort(held)


def split_training(images: torch.Tensor, labels: torch.Tensor, n: int):
    """((kept images, labels), (held-out images, labels)) of a training set."""
    kept, held = holdout_indices(labels.numpy(), n)
    kept, held = torch.from_numpy(kept), torch.from_numpy(held)
    return (images[kept], labels[kept]), (images[held], labels[held])


def run_holdout(run_dir) -> int:
    """The holdout a finished training run was trained with (0 for runs from before the key)."""
    d = Path(run_dir)
    f = (d if d.is_dir() else d.parent) / "config.json"
    if not f.is_file():
        raise SiaError(f"{run_dir}: no config.json (not a finished training run)")
    return int(json.loads(f.read_text()).get("holdout", 0))


def check_same_holdout(n: int, theirs: int, role: str, ref):
    """A run this one learns from or is compared with (warm start, teacher, a row's FP32
    twin: `ref`, holding out `theirs`) must hold out the same images: otherwise what it
    learnt from them leaks into the held-out accuracy."""
    if theirs != n:
        raise SiaError(f"{role} {ref} holds out {theirs} training images, this run {n}: "
                       "they must hold out the same images (give both the same 'holdout')")

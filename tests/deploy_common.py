"""Shared by tests/test_deploy_*.py: the digits network (the trained digits entry of
sia.zoo, e.g. digits_cnn_l8, when it is there; else the digits CNN converted from a seeded
init with thresholds scaled so that every layer spikes at 10-50 %) and a few digits test
images."""

import copy
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def digits_program():
    try:
        from sia.zoo import index, load_zoo_program
        names = sorted(n for n, e in index().items() if e.get("dataset") == "digits")
        if names:
            return load_zoo_program(names[0])
    except Exception:  # noqa: BLE001 - fall back to the converted init
        pass
    import torch
    from sia.convert.convert import convert
    from sia.models import build_model
    from sia.program.bounds import required_bits
    from sia.program.validate import validate
    torch.manual_seed(0)
    p = convert(build_model("digits_cnn"), (1, 8, 8), name="digits", timesteps=4,
                meta={"dataset": "digits"})
    for L in p.layers:
        if L.kind == "if":
            L.threshold = np.maximum(1, L.threshold // 16)
            L.v_init = L.threshold // 2
    for L in p.layers:
        need = required_bits(p, L)
        L.acc_bits, L.v_bits = need["acc_bits"], need["v_bits"]
    return validate(p)


def program():
    return copy.deepcopy(digits_program())


@lru_cache(maxsize=1)
def _digits():
    from sia.data import load_digits_split
    x, y = load_digits_split("test")
    return np.asarray(x), np.asarray(y)


def images(n=8):
    x, y = _digits()
    return x[:n].copy(), y[:n].copy()

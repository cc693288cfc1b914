import subprocess
import sys

import numpy as np
import pytest
import torch

from sia.program import Layer, Program, Synapse
from sia.program.bounds import declare_bits


def finish(p: Program) -> Program:
    """Declare exactly the bit-widths the worst case needs (as the converter does)."""
    for layer in p.layers:
        declare_bits(p, layer)
    return p


@pytest.fixture
def one_neuron():
    """Image 1x1x1 -> one IF neuron (dense weight w) -> integrator (weight 1)."""
    def make(w=1, threshold=10, bias=0, v_init=5, t_max=16):
        l0 = Layer("if", "if", (1, 1, 1), bias=np.array([bias]), v_init=np.array([v_init]),
                   threshold=np.array([threshold]), v_bits=64, acc_bits=64,
                   inputs=[Synapse(-1, "dense", np.array([[w]]), 8)])
        l1 = Layer("out", "integrator", (1, 1, 1), bias=np.array([0]), v_init=np.array([0]),
                   v_bits=64, acc_bits=64, inputs=[Synapse(0, "dense", np.array([[1]]), 2)])
        return finish(Program("one", (1, 1, 1), levels=4, timesteps=8, t_max=t_max,
                              layers=[l0, l1], num_classes=1))
    return make


@pytest.fixture
def small_program():
    """A 3-layer conv/pool/residual/dense program with random integers."""
    def make(seed=0):
        rng = np.random.default_rng(seed)
        ri = lambda lo, hi, *s: rng.integers(lo, hi + 1, size=s)  # noqa: E731
        l0 = Layer("c0", "if", (4, 8, 8), bias=ri(-50, 50, 4), v_init=ri(0, 100, 4),
                   threshold=ri(100, 300, 4), v_bits=64, acc_bits=64,
                   inputs=[Synapse(-1, "conv", ri(-7, 7, 4, 2, 3, 3), 4, 1, 1)])
        l1 = Layer("c1", "if", (4, 4, 4), bias=ri(-2, 2, 4), v_init=ri(0, 3, 4),
                   threshold=ri(3, 8, 4), v_bits=64, acc_bits=64,
                   inputs=[Synapse(0, "conv", ri(-7, 7, 4, 4, 3, 3), 4, 1, 1, pool=2),
                           Synapse(0, "identity", ri(-3, 3, 4), 3, pool=2)])
        l2 = Layer("fc", "integrator", (3, 1, 1), bias=ri(-5, 5, 3), v_init=np.zeros(3, int),
                   v_bits=64, acc_bits=64,
                   inputs=[Synapse(1, "dense", ri(-100, 100, 3, 16), 8, pool=2)])
        return finish(Program("small", (2, 8, 8), levels=4, timesteps=8, t_max=16,
                              layers=[l0, l1, l2], num_classes=3))
    return make


@pytest.fixture
def keep_threads():
    """train() / finetune set torch's thread count (num_threads = 1 keeps tiny runs fast);
    restore it after the test."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def run_sia(*args, cwd=None):
    """`python -m sia.cli ARGS` in a child process (a fresh interpreter, as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "sia.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def assert_one_line_error(r, msg):
    """A user mistake: exit 2, one stderr line holding `msg`, no traceback."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert msg in r.stderr, r.stderr

"""The PYNQ driver's register and DMA sequence on the RTL: the digits network through the
simulated AXI DMA twin into the Verilator co-simulation of sia/hw/rtl, bit-exact with the
golden simulator.

Building the Verilator model takes 1-2 minutes, so this runs when the model for the
current RTL sources is already built (build/rtl/<hash>/, e.g. by an earlier run) or when
SIA_TEST_RTL=1 asks for the build."""

import os

import pytest

from deploy_common import images, program
from sia.deploy.backends import run, same_result
from sia.hw.params import SIAConfig

# a small build: 16 PEs (so conv2's 32 channels take two tiles), 8x8 maps
CFG = SIAConfig(pes=16, max_width=8, max_height=8, max_channels_in=128, max_timesteps=8)


def _built() -> bool:
    try:
        from sia.hw.rtl.cosim import harness
    except ImportError:
        return False
    return (harness.build_dir() / harness._src_hash(CFG) / "obj" / "Vsia").exists()


pytestmark = pytest.mark.skipif(not (_built() or os.environ.get("SIA_TEST_RTL") == "1"),
                                reason="Verilator model not built; SIA_TEST_RTL=1 builds it (~1-2 min)")


@pytest.mark.parametrize("length_width", [26, 14])   # 14: the classifier packet is split
def test_digits_on_rtl_twin_bit_exact_with_golden(length_width):
    p = program()
    x, y = images(2)
    r = run(p, x, "rtl", labels=y, cfg=CFG, length_width=length_width)
    g = run(p, x, "golden", labels=y)
    assert same_result(r, g) == []
    # CYCLES_LO/HI read by the driver after each launch == the cycle-level model's count
    assert r.cycles == run(p, x, "model", cfg=CFG).cycles > 0


def test_resident_weight_batches_on_rtl():
    """The driver's launch-major batches (keep launches) through the RTL: bit-exact, and
    the RTL's cycle counters add up to the model's count for the same schedule (5
    images in chunks of 3: two weight loads per tile)."""
    p = program()
    x, y = images(5)
    r = run(p, x, "rtl", labels=y, cfg=CFG, batch=3)
    assert same_result(r, run(p, x, "golden", labels=y)) == []
    assert r.cycles == run(p, x, "model", cfg=CFG, batch=3).cycles
    assert r.cycles < run(p, x, "model", cfg=CFG).cycles

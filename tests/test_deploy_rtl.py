"""The PYNQ driver's register and DMA sequence on the RTL: the digits network through the
simulated AXI DMA twin into the Verilator co-simulation of sia/hw/rtl, bit-exact with the
golden simulator. The build is the co-simulation tests' (tests/rtl_common.py): built once
per RTL change, shared, so CI runs these from a clean clone too."""

import pytest

from deploy_common import images, program
from rtl_common import SMALL_BUILD as CFG
from sia.deploy.backends import run, same_result


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

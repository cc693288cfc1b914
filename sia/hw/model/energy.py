"""Energy ESTIMATE per inference from counted events (not a measurement).

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, 45 nm CMOS at 0.9 V: 32-bit integer add 0.1 pJ; 64-bit read of an 8 KB
SRAM 10 pJ; DRAM 1.3-2.6 nJ per 64-bit access. We use these numbers unscaled (no
28 nm / FPGA correction): SRAM energy is scaled linearly with the word width from
the 8 KB figure (our buffers are small BRAM-sized memories), the accumulate uses the
32-bit add (our psums are <= 32 bits), a stream beat uses the DRAM low end scaled by
stream_bits / 64. An FPGA implementation spends several times more per operation
(programmable routing); treat the result as a relative, architecture-level estimate.
"""

from sia.hw.params import SIAConfig

SOURCE = ("estimate: Horowitz ISSCC 2014 45 nm numbers, unscaled (32b add 0.1 pJ, "
          "8KB SRAM 10 pJ / 64b, DRAM 1.3 nJ / 64b)")
ADD_PJ = 0.1
SRAM_PJ_PER_64B = 10.0
DRAM_PJ_PER_64B = 1300.0


def table(cfg: SIAConfig) -> dict[str, float]:
    """pJ per counted event, by event name."""
    sram = SRAM_PJ_PER_64B / 64
    return {
        "accumulate": ADD_PJ,                                        # one SOP / image op
        "psum_rmw": 2 * sram * cfg.acc_bits,                         # read + write, per SOP
        "weight_read": sram * cfg.taps * cfg.weight_bits,            # one 9-tap word, per PE
        "weight_write": sram * cfg.taps * cfg.weight_bits,
        "spike_in": sram * cfg.stream_bits,                          # one bitmap word
        "psum_drain": sram * cfg.pes * cfg.acc_bits,                 # one position, all lanes
        "shortcut": sram * cfg.pes,                                  # identity in the drain
        "membrane": sram * cfg.pes * cfg.v_bits,                     # one bank word
        "spike_out": sram * cfg.pes,
        "stream_beat": DRAM_PJ_PER_64B * cfg.stream_bits / 64,       # DDR via AXI DMA
    }


def estimate(cfg: SIAConfig, counts: dict[str, float]) -> dict[str, float]:
    """counts: per-image event counts (keys as in `table`) -> pJ per event class + total."""
    t = table(cfg)
    out = {k: counts.get(k, 0.0) * e for k, e in t.items()}
    out["total"] = sum(out.values())
    return out

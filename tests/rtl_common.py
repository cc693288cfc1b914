"""The small Verilator build the RTL tests share (one build from an empty cache, ~25 s on
2 cores): 8 PEs, 8x8 maps, 128 weight rows - enough for the trained digits network, whose
32-channel conv2 then takes four tiles - with pool hold, as the builds of the E /
phase-pair co-simulations issue pooled positions."""

import dataclasses

from sia.hw.params import SIAConfig

SMALL_BUILD = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128,
                        max_timesteps=8, pool_hold=True)

# signed spikes (interface 1.9): the small build with 3-bit net counts (T <= 7 per image;
# one more Verilator build). Its buffers hold 8 maps of 8x8, so a layer reading two signed
# groups (four 0/1 planes) runs 2 steps per launch: signed programs at T = 6 run split
# launches (interface 1.10) too
SIGNED_BUILD = dataclasses.replace(SMALL_BUILD, signed_count_bits=3)

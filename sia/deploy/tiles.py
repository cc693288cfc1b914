"""How a program runs on SIA: one launch per (layer, tile of P output channels).

The host keeps every layer's output spike maps [T, C, H, W] (uint8 0/1) that a later layer
reads; a launch receives the full input maps of its layer's synapse groups and returns the
tile's output: spikes [T, P_tile, H, W] for an IF layer, the final membranes [P_tile, H, W]
(int64) for the integrator.
"""

from dataclasses import dataclass

from sia.hw.params import SIAConfig
from sia.program.format import Program


@dataclass(frozen=True)
class Launch:
    layer: int          # layer index in the program
    tile: int           # tile index within the layer
    c0: int             # first output channel
    c1: int             # one past the last output channel

    @property
    def channels(self) -> int:
        return self.c1 - self.c0


def plan(program: Program, cfg: SIAConfig) -> list[Launch]:
    out = []
    for i, layer in enumerate(program.layers):
        C = layer.channels
        for k, c0 in enumerate(range(0, C, cfg.pes)):
            out.append(Launch(i, k, c0, min(C, c0 + cfg.pes)))
    return out

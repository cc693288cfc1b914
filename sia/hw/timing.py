"""Pipeline constants of the RTL that the cycle formula (docs/architecture.md) uses.

Owned by the RTL: when the pipeline changes, these change, and the co-simulation
tests check that the cycle-level model (which reads them) still matches the RTL.
"""

C_LAUNCH = 4   # descriptor decode / start-up cycles per launch
C_STEP = 1     # per-timestep bank swap
C_ROW = 2      # accumulate pipeline flush before a row is drained

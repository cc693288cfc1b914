"""Pipeline constants of the RTL that the cycle formula (docs/architecture.md) uses.

Owned by the RTL (sia/hw/rtl): when the pipeline changes, these change, and the
co-simulation tests check the RTL's CYCLES register against the formula
(sia.hw.rtl.cycles.launch_cycles) cycle-exactly.
"""

C_LAUNCH = 3   # START -> header state (1) + descriptor decode (1, registered range checks)
               # + descriptor check (1)
C_STEP = 1     # per timestep: reset the row schedule, swap membrane banks
C_ROW = 1      # per output row: ROW_PRE, the read of its first spike word (the accumulate
               # flush overlaps the next row: the handover to the drain is delayed
               # instead); hidden (row prefetch) when the row's conditions already hold
               # in the last dispatch cycle of the row before it, same step, both rows
               # scanning something
C_HAND = 1     # a row is handed to the aggregation core this many cycles after its last
               # dispatch cycle (its last accumulates land first)
C_OUT_TAIL = 2  # if-layers stream their output while computing: cycles between the last
                # drain and the last output beat beyond the one C_LAUNCH already holds
PLANE_ISSUE_E = 4  # from this E on, one cycle's image events share a bit plane (the PE
                   # shifts its pre-added tap sums once instead of every event's weights)


def plane_issue(E: int) -> bool:
    """Does a build with E events per cycle issue image events one bit plane per cycle?
    The one rule the model, the RTL formula and the RTL all ask."""
    return E >= PLANE_ISSUE_E

"""Projection for not-built dispatcher options that recover cycles below the design's
ceiling (docs/architecture.md, "How far each target is from the design's ceiling"),
alone or together.

- `--pool-carry`: the runs of one pooled position (the pool rows i of a p x p sum-pool
  source; their events reach the same outputs with the same weights) issue as one event
  stream: a unit's leftover event slots take the next run's first events in the same
  cycle. A pooled position then costs max(its units, ceil(its events / E)) cycles
  instead of the sum over its units of max(1, ceil(n / E)) (each unit is still read in
  a cycle of its own). The RTL would need the next unit's words in the extraction chain
  beside the current unit's leftover.
- (`--pool-hold`, the one-register form of `--pool-carry`, was projected here in
  session 15 and then built: the build option `pool_hold`, `schedule.held_costs`.)
- `--skip-empty`: units without events cost no cycle (the dispatcher would look ahead
  at the popcounts the loader already stores beside each word); pooled positions under
  `--pool-carry` keep their unit floor.

The projection runs the model as built and with the option(s) (same spikes: predictions
asserted equal) and reports both runs' cycles and GOPS/PE; the build flags
(--phase-pairs, --identity-drain) hold for both. A projection, labelled so.

    python benchmarks/dispatch_options_estimate.py PROGRAM [--pool-carry] [--skip-empty]
        [--images 64] [--batch 64] [--pes 16] [--events 2] [--phase-pairs] [--identity-drain]
        [--psum-slots 4|8]
        [--config CFG.json] [--data-dir D] [--out FILE.json]
"""

from contextlib import ExitStack, contextmanager
from unittest import mock

import numpy as np
import torch

from sia import SiaError, run_main
from sia.hw.model import projection, report
from sia.hw.model import run as model_run
from sia.hw.model import schedule as S
from sia.hw.params import SIAConfig
from sia.program.format import IMAGE


_BUILT = S.row_dispatch
_BUILT_UNITS = S.unit_costs
_BUILT_STATS = S.scan_stats


def counted_like_rows(skip_empty: bool):
    """`schedule.scan_stats` whose accumulate + empty-unit cycles equal the (projected)
    `row_dispatch` total, so that the phases and the conv utilisation follow the option
    (as built the two agree; tested)."""
    def stats(syn, words, h_out, E, planes=None, phase=False, hold=False, quad=False,
              period=None, resume=False):
        d = _BUILT_STATS(syn, words, h_out, E, planes, phase, hold, quad, period, resume)
        total = S.row_dispatch(syn, words, h_out, E, planes, phase, hold, quad, period,
                               resume).sum(-1)
        empty = (torch.zeros_like(d["dispatch_empty"]) if skip_empty
                 else torch.minimum(d["dispatch_empty"], total))
        return {**d, "accumulate": total - empty, "dispatch_empty": empty}
    return stats


def skipping_unit_costs(region, E, planes=None, phase=False):
    """`schedule.unit_costs` with empty units costing nothing."""
    n = region.sum(-1) if phase else region
    return _BUILT_UNITS(region, E, planes, phase) * (n > 0)


def carried_row_dispatch(syn, words, h_out, E, planes=None, phase=False, hold=False,
                         quad=False, period=None, resume=False):
    """`schedule.row_dispatch` with the runs of each pooled position issued as one stream
    (spike groups with a pool only, in place of pool hold where the build has it;
    everything else as built)."""
    p = syn.pool
    if phase or quad or p == 1 or syn.source == IMAGE:
        return _BUILT(syn, words, h_out, E, planes, phase, hold, quad, period, resume)
    region = S.issue_units(syn, S.scanned(syn, words, h_out))   # [T', B, U, rows*p, cols]
    t, b, u, rows, cols = region.shape
    per_pos = region.reshape(t, b, u, rows // p, p, cols)
    n = per_pos.sum((2, 4))                                     # events per pooled position
    cost = torch.maximum(S.ceil_div(n, E), torch.full_like(n, u * p)).sum(-1)   # per pooled row
    cum = torch.nn.functional.pad(cost.cumsum(-1), (1, 0))
    ends = torch.tensor([S.r_end(syn, words.shape[-2] // p, oy) for oy in range(-1, h_out)])
    return S.first_step_skip(syn, cum[..., ends[1:]] - cum[..., ends[:-1]], period, resume)


OPTIONS = ("pool_carry", "skip_empty")   # (row prefetch, pool hold: built in sessions 14, 15)


@contextmanager
def options(pool_carry=False, skip_empty=False):
    with ExitStack() as stack:
        if pool_carry:
            stack.enter_context(mock.patch.object(S, "row_dispatch", carried_row_dispatch))
        if skip_empty:
            stack.enter_context(mock.patch.object(S, "unit_costs", skipping_unit_costs))
        if pool_carry or skip_empty:
            stack.enter_context(mock.patch.object(S, "scan_stats", counted_like_rows(skip_empty)))
        yield


def estimate(program, images, cfg: SIAConfig, weight_batch: int, **chosen) -> dict:
    """chosen: OPTIONS set to True (at least one)."""
    if not any(chosen.get(k) for k in OPTIONS) or set(chosen) - set(OPTIONS):
        raise SiaError("name an option: " + ", ".join("--" + k.replace("_", "-") for k in OPTIONS))
    kw = dict(config=cfg, weight_batch=weight_batch, launch_images=0)
    now = model_run(program, images, **kw)
    with options(**chosen):
        proj = model_run(program, images, **kw)
    assert np.array_equal(now.predictions, proj.predictions)   # only the counting changed
    f = cfg.clock_mhz * 1e6
    total, total_proj = (float(np.mean(r.image_cycles)) for r in (now, proj))
    sops = float(np.mean(now.image_sops))
    summ, summ_proj = report.summarize(now), report.summarize(proj)
    return {"program": program.name, "images": int(images.shape[0]), "T": program.timesteps,
            "pes": cfg.pes, "events_per_cycle": cfg.events_per_cycle,
            "phase_pairs": cfg.phase_pairs, "identity_drain": cfg.identity_drain,
            "pool_hold": cfg.pool_hold,
            "row_prefetch": cfg.row_prefetch, "psum_slots": cfg.psum_slots,
            "weight_batch": weight_batch,
            **{k: bool(chosen.get(k)) for k in OPTIONS},
            "cycles_per_image_model": total, "cycles_per_image_projected": total_proj,
            "gops_per_pe_model": sops * f / total / 1e9 / cfg.pes,
            "gops_per_pe_projected": sops * f / total_proj / 1e9 / cfg.pes,
            "gops_per_pe_ceiling": summ["gops_per_pe_ceiling"],
            "conv_utilisation_model": summ["pe_utilisation_conv"],
            "conv_utilisation_projected": summ_proj["pe_utilisation_conv"],
            "note": "projection: the RTL has none of these options"}


def main(argv=None):
    ap = projection.parser(__doc__.split("\n\n")[0], images=64, build_flags=True)
    for k in OPTIONS:
        ap.add_argument("--" + k.replace("_", "-"), action="store_true")
    a = ap.parse_args(argv)
    p, images, cfg = projection.inputs(a, pes=a.pes, events_per_cycle=a.events)
    res = estimate(p, images, cfg, a.batch, **{k: getattr(a, k) for k in OPTIONS})
    print(projection.line(res))
    if a.out:
        projection.write_json(res, a.out)


if __name__ == "__main__":
    run_main(main, "dispatch_options_estimate.py")

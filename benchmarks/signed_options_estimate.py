"""Projection: where a signed program's extra cycles go on the built SIA, and what the
not-built options for them would save (docs/architecture.md, "Signed neurons").

A signed program on a build with `signed_count_bits` runs its signed sources as two 0/1
planes or as sign pairs (`sia.hw.planes`). Against session 26's one-map floor (every
event dispatched from |s| with a sign bit: `signed_spikes_estimate.py`), the built design
pays for the -1 planes in several ways; each not-built option below removes one part:

- `mixed-pairs`: a sign pair's unit issues E events per cycle whatever their signs (the
  PE would negate per event): max(1, ceil((n+ + n-) / E)) instead of
  max(1, ceil(n+ / E) + ceil(n- / E)) - the rounding of the two ceils;
- `stream-skip`: the host does not stream a -1 plane's map at an image's first step (it
  is empty there, and the dispatcher already skips its scan: interface 1.11), so every
  later row's input wait (`schedule.stream_need`) shrinks by those words.

(A third option projected here at first, the identity shortcut of a signed source added
by the aggregation core while it drains, was then built: interface 1.13, the signed
configs' `identity_drain`; `docs/results/3-sia-model.md`, session 30.)

Each option runs alone and both together, on the same spikes (accuracy asserted equal),
beside the built design and the floor; per phase, where the built cycles exceed the
floor. A projection, labelled so.

    python benchmarks/signed_options_estimate.py SIGNED_PROGRAM [--T 4] [--images 64]
        [--batch 64] [--config CFG.json] [--data-dir D] [--out FILE.json]
"""

from contextlib import ExitStack, contextmanager
from unittest import mock

import numpy as np
import torch

from sia import SiaError, run_main
from sia.hw import planes, regmap
from sia.hw.model import fast, projection
from sia.hw.model import run as model_run
from sia.hw.model import schedule as S
from sia.hw.model.report import summarize
from sia.hw.params import SIAConfig

OPTIONS = ("mixed-pairs", "stream-skip")

_BUILT_UNITS = S.unit_costs
_BUILT_NEED = S.stream_need
_BUILT_OVERLAP = fast.packed_overlap


def mixed_unit_costs(region, E, planes=None, phase=False, signs=False):
    """`schedule.unit_costs` with a sign pair's events issued E per cycle, both signs."""
    if signs:
        return torch.clamp(S.ceil_div(region.sum(-1), E), min=1)
    return _BUILT_UNITS(region, E, planes, phase, signs)


def skipped_need(program, i, config, steps, tile=0, period=None, resume=False):
    """`schedule.stream_need` when the -1 planes' maps are not streamed at an image's
    first step (`planes.unscanned_steps`): those steps carry the other groups only,
    rebased, and every later step's beats start that much earlier."""
    need = np.asarray(_BUILT_NEED(program, i, config, steps, tile))
    firsts = set(planes.unscanned_steps(True, steps, period or steps, resume))
    groups = regmap._groups(program, i, tile, config, steps)[0]
    if not firsts or not any(g.get("neg") for g in groups) or S.is_image_layer(program.layers[i]):
        return need.tolist()
    kept, base = [], 0
    for g, words in zip(groups, regmap._segment_words(groups)):
        if not g.get("neg"):
            kept.append({**g, "base": base})
            base += words
    kept = [{**g, "tstride": base} for g in kept]
    h_out = program.layers[i].shape[1]
    within = {False: need[0],
              True: regmap.need_beats(kept, regmap.row_need(kept, 1, h_out, base)[0])}
    beats = {False: regmap.need_beats(groups, groups[0]["tstride"]),
             True: regmap.need_beats(kept, base)}
    out, start = np.zeros_like(need), 0
    for t in range(steps):
        out[t] = start + within[t in firsts]
        start += beats[t in firsts]
    return out.tolist()


@contextmanager
def stream_skip():
    """While active, the model's launches use `skipped_need`: a packed launch of m images
    has period T, a split image's later chunks are resumed (no first step)."""
    state = {"period": None, "resume": False, "chunks": []}

    def overlap(program, i, config, T, tile, d, weight_batch, per_launch, chunks):
        if len(chunks) > 1 and d.shape[0] > 1:   # the built function recurses per chunk
            state["chunks"] = [c > 0 for c in range(len(chunks))]
            return _BUILT_OVERLAP(program, i, config, T, tile, d, weight_batch, per_launch, chunks)
        state["period"] = T
        state["resume"] = state["chunks"].pop(0) if state["chunks"] else False
        return _BUILT_OVERLAP(program, i, config, T, tile, d, weight_batch, per_launch, chunks)

    def need(program, i, config, steps, tile=0):
        return skipped_need(program, i, config, steps, tile, state["period"], state["resume"])

    with mock.patch.object(fast, "packed_overlap", overlap), \
            mock.patch.object(S, "stream_need", need):
        yield


@contextmanager
def options(names, cfg: SIAConfig):
    """The model with the named options; yields the build to run it on."""
    with ExitStack() as stack:
        if "mixed-pairs" in names:
            stack.enter_context(mock.patch.object(S, "unit_costs", mixed_unit_costs))
        if "stream-skip" in names:
            stack.enter_context(stream_skip())
        yield cfg


def run_options(program, images, cfg, weight_batch, labels=None, T=None, names=()) -> dict:
    """The model's summary of `program` with the named options (none: as built)."""
    with options(names, cfg) as c:
        return summarize(model_run(program, images, labels=labels, T=T, config=c,
                                   weight_batch=weight_batch, launch_images=0))


def main(argv=None):
    import signed_spikes_estimate
    ap = projection.parser(__doc__.split("\n\n")[0], images=64)
    ap.add_argument("--T", type=int, default=None, help="timesteps (default: the program's)")
    a = ap.parse_args(argv)
    prog, images, cfg, labels = projection.inputs(a, with_labels=True, pes=a.pes,
                                                  events_per_cycle=a.events)
    if not prog.signed:
        raise SiaError(f"{prog.name} has no signed IF layer: give it signed neurons first "
                       "(sia signed P --out P2)")
    runs = {"built": run_options(prog, images, cfg, a.batch, labels, a.T)}
    for name in (*[(o,) for o in OPTIONS], OPTIONS):
        runs[" + ".join(name)] = run_options(prog, images, cfg, a.batch, labels, a.T, name)
    runs["one-map floor"] = signed_spikes_estimate.project(prog, images, cfg, a.batch, labels, a.T)
    built = runs["built"]
    for k, s in runs.items():
        if s["accuracy"] != built["accuracy"]:
            raise SiaError(f"{k}: accuracy {s['accuracy']} != built {built['accuracy']}")
    cyc = {k: s["latency_cycles"]["mean"] for k, s in runs.items()}
    res = {"note": "projection: not-built options for signed programs, against the built "
                   "design and the one-map floor (benchmarks/signed_spikes_estimate.py)",
           "program": prog.name, "images": len(images), "timesteps": built["timesteps"],
           "accuracy": built["accuracy"], "config": cfg.to_json(), "weight_batch": a.batch,
           "cycles_per_image": cyc,
           "saving_vs_built": {k: 1 - v / cyc["built"] for k, v in cyc.items()},
           "gops_per_pe": {k: s["gops_per_pe"] for k, s in runs.items()},
           "built_over_floor_by_phase": {
               ph: built["phases"][ph] - runs["one-map floor"]["phases"][ph]
               for ph in built["phases"]}}
    print(f"{prog.name} at T={res['timesteps']} on {len(images)} images "
          f"(accuracy {100 * res['accuracy']:.2f} %):")
    for k, v in cyc.items():
        print(f"  {k:44s} {v:12,.0f} cycles/image  {100 * res['saving_vs_built'][k]:6.1f} %  "
              f"GOPS/PE {res['gops_per_pe'][k]:.3f}")
    over = {ph: round(v) for ph, v in res["built_over_floor_by_phase"].items() if round(v)}
    print(f"  built over the floor, by phase: {over}")
    if a.out:
        print(f"wrote {projection.write_json(res, a.out)}")
    return res


if __name__ == "__main__":
    run_main(main, "signed_options_estimate.py")

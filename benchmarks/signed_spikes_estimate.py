"""Projection for a not-built option: signed spikes dispatched from one map (a sign per
event) instead of the two 0/1 planes the SIA builds with `signed_count_bits` scan
(docs/architecture.md, "Signed neurons"; session 28 measured the built design with
`sia simulate`, `docs/results/3-sia-model.md`).

Such an SIA would dispatch every nonzero spike, +1 or -1, as one event with a sign bit
riding along (a 2-bit code per channel in the spike words; the PE negates the weight per
event; the aggregation core keeps each neuron's net count, as built). The cycle formula depends only on where the events
are, not on their signs, so the projection runs the cycle model on the event maps |s|
while the golden simulator computes the signed values: the model gets a shadow of the
program - the same layers and declared widths (the signed ones, wider), the neurons
marked unsigned - and `sia.hw.model.fast`'s golden run is pointed at the signed program.
Outputs and accuracy are then the signed program's, cycles and SOPs those of its events
(a -1 event's accumulates count as operations: they are). With --baseline, an unsigned
program runs on the same build through the model as it is, for comparison.

The RTL has no per-event sign, and the block RAM of a 2-bit code is not in the fit check.
A projection, labelled so: the lower bound of what a one-map dispatch would save over
the built planes.

    python benchmarks/signed_spikes_estimate.py SIGNED_PROGRAM [--T 4] [--baseline PROGRAM
        --baseline-T 8] [--images 256] [--batch 64] [--config CFG.json] [--pes 16] [--events 2]
        [--data-dir D] [--out FILE.json]
"""

import copy
from contextlib import contextmanager

from sia import SiaError, run_main
from sia.hw.model import fast, projection
from sia.hw.model import run as model_run
from sia.hw.model.report import summarize
from sia.program.resolve import resolve_program


def shadow(program):
    """The program as the cycle model sees it: its layers and declared widths, the
    neurons marked unsigned (the model's checks then test the signed widths)."""
    out = copy.deepcopy(program)
    for layer in out.layers:
        layer.signed = False
    return out


@contextmanager
def signed_values(program):
    """While active, the model's golden run computes `program` (signed) whatever program
    the model was given, and hands the cycle model the event maps |s|."""
    golden = fast.run_batch

    def run_batch(_shadow, images, T, record=False, on_layer=None):
        hook = None if on_layer is None else (lambda i, s: on_layer(i, s.abs()))
        return golden(program, images, T, record=record, on_layer=hook)

    fast.run_batch = run_batch
    try:
        yield
    finally:
        fast.run_batch = golden


def project(program, images, cfg, weight_batch: int, labels=None, T=None) -> dict:
    """The model's summary (`sia.hw.model.report.summarize`) of `program` with signed
    spikes projected."""
    if not program.signed:
        raise SiaError(f"{program.name} has no signed IF layer: give it signed neurons "
                       "first (sia signed P --out P2), or run it through `sia simulate`")
    with signed_values(program):
        r = model_run(shadow(program), images, labels=labels, T=T, config=cfg,
                      weight_batch=weight_batch, launch_images=0)
    return summarize(r)


def _brief(s: dict) -> dict:
    keys = ("program", "images", "timesteps", "accuracy", "latency_cycles", "latency_us", "images_per_s",
            "sops_per_image", "gops_acc", "gops_per_pe", "gops_dense_equiv",
            "pe_utilisation_conv")
    return {k: s[k] for k in keys} | {
        "events_per_image": sum(L["events"] for L in s["layers"]),
        "layer_events_per_image": {L["name"]: L["events"] for L in s["layers"]}}


def _line(tag: str, s: dict) -> str:
    """One line of a `_brief` record."""
    return (f"{tag} {s['program']}: {100 * s['accuracy']:.2f} % at T={s['timesteps']}, "
            f"{s['latency_cycles']['mean']:,.0f} cycles/image, "
            f"{s['events_per_image']:,.0f} events/image, "
            f"{s['sops_per_image']:,.0f} SOPs/image, GOPS/PE {s['gops_per_pe']:.3f}, "
            f"dense-equivalent {s['gops_dense_equiv']:.1f} GOPS, conv utilisation "
            f"{100 * s['pe_utilisation_conv']:.1f} %")


def main(argv=None):
    ap = projection.parser(__doc__.split("\n\n")[0], images=256)
    ap.add_argument("--baseline", default=None,
                    help="an unsigned program (file or zoo name) run on the same build")
    ap.add_argument("--T", type=int, default=None, help="timesteps (default: the program's)")
    ap.add_argument("--baseline-T", type=int, default=None,
                    help="the baseline's timesteps (default: --T)")
    a = ap.parse_args(argv)
    prog, images, cfg, labels = projection.inputs(a, with_labels=True, pes=a.pes,
                                                  events_per_cycle=a.events)
    res = {"note": "projection: signed spikes dispatched from one map (not built; the SIA "
                   "scans two 0/1 planes); a 2-bit code's block RAM is not in the fit check",
           "config": cfg.to_json(), "weight_batch": a.batch}
    signed = project(prog, images, cfg, a.batch, labels, a.T)
    res["signed_projected"] = _brief(signed)
    print(_line("signed (projection)", res["signed_projected"]))
    if a.baseline:
        base = resolve_program(a.baseline)
        if base.input_shape != prog.input_shape:
            raise SiaError(f"--baseline {a.baseline}: input {list(base.input_shape)}, not "
                           f"{list(prog.input_shape)}")
        s = summarize(model_run(base, images, labels=labels, T=a.baseline_T or a.T, config=cfg,
                                weight_batch=a.batch, launch_images=0))
        res["baseline_model"] = _brief(s)
        print(_line("baseline (model)", res["baseline_model"]))
        res["cycles_ratio"] = (signed["latency_cycles"]["mean"] / s["latency_cycles"]["mean"])
        print(f"signed / baseline cycles per image: {res['cycles_ratio']:.3f}")
    if a.out:
        print(f"wrote {projection.write_json(res, a.out)}")
    return res


if __name__ == "__main__":
    run_main(main, "signed_spikes_estimate.py")

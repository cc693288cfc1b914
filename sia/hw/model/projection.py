"""What the projections of not-built options (benchmarks/*_estimate.py) share: their
options, their inputs (program, test images, build), their summary line and JSON, and
the model variants more than one of them runs."""

import argparse
import json
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from sia.hw.params import SIAConfig


@contextmanager
def identity_in_drain():
    """The model with identity groups costing the dispatcher nothing (not built: identity
    shortcuts added in the aggregation core while it drains; their words still stream
    in and their accumulates still count)."""
    from sia.hw.model import fast
    built = fast._count_group

    def count(program, config, L, s, *args):
        if s.op != "identity":
            return built(program, config, L, s, *args)
        kept = L.accumulate.copy(), L.dispatch_empty.copy()   # the dispatcher's counters
        dispatch, sops = built(program, config, L, s, *args)
        L.accumulate[:], L.dispatch_empty[:] = kept
        return torch.zeros_like(dispatch), sops

    with mock.patch.object(fast, "_count_group", count):
        yield


def parser(description: str, images: int, phase_pairs: bool = False) -> argparse.ArgumentParser:
    """Program, images, weight batch, one build (P, E, config file; with phase_pairs also
    the --phase-pairs build flag), data and output."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("program")
    ap.add_argument("--images", type=int, default=images)
    ap.add_argument("--batch", type=int, default=64, help="weight batch (images per weight load)")
    ap.add_argument("--pes", type=int, default=16)
    ap.add_argument("--events", type=int, default=2)
    ap.add_argument("--config", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    if phase_pairs:
        ap.add_argument("--phase-pairs", action="store_true", help="the build option (both runs)")
    return ap


def inputs(a: argparse.Namespace, **build) -> tuple:
    """(program, its first a.images test images as uint8 numpy, SIAConfig): the config
    file a.config with `build` overriding it (and --phase-pairs, when the parser has it
    and it is given; absent, the file's value stands)."""
    if getattr(a, "phase_pairs", False):
        build = {"phase_pairs": True, **build}
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program(a.program)
    images, _ = load_split(p.meta.get("dataset", "digits"), "test", a.data_dir)
    return p, np.asarray(images[:a.images]), SIAConfig.load(a.config, **build)


def line(res: dict, pes: int | None = None, events: int | None = None) -> str:
    """One-line summary of a projection."""
    out = (f"P={pes or res['pes']} E={events or res['events_per_cycle']}: "
           f"{res['cycles_per_image_model']:,.0f} -> {res['cycles_per_image_projected']:,.0f} "
           f"cycles/image (projection), GOPS/PE {res['gops_per_pe_model']:.3f} -> "
           f"{res['gops_per_pe_projected']:.3f}")
    if "gops_per_pe_ceiling" in res:
        out += f" (design ceiling {res['gops_per_pe_ceiling']:.3f})"
    if "conv_utilisation_projected" in res:
        out += (f", conv utilisation {100 * res['conv_utilisation_model']:.1f} -> "
                f"{100 * res['conv_utilisation_projected']:.1f} %")
    return out


def write_json(res: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    return path

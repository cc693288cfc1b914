"""What the projections of not-built options (benchmarks/*_estimate.py) share: their
options, their inputs (program, test images, build), their summary line and JSON, and
the build flags they share."""

import argparse
import json
from pathlib import Path

import numpy as np

from sia.hw.params import SIAConfig

BUILD_FLAGS = ("phase_pairs", "identity_drain", "pool_hold")   # boolean SIAConfig options as flags


def parser(description: str, images: int, build_flags: bool = False) -> argparse.ArgumentParser:
    """Program, images, weight batch, one build (P, E, config file; with build_flags also
    --phase-pairs, --identity-drain, --pool-hold and --psum-slots), data and output."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("program")
    ap.add_argument("--images", type=int, default=images)
    ap.add_argument("--batch", type=int, default=64, help="weight batch (images per weight load)")
    ap.add_argument("--pes", type=int, default=16)
    ap.add_argument("--events", type=int, default=2)
    ap.add_argument("--config", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    if build_flags:
        for k in BUILD_FLAGS:
            ap.add_argument("--" + k.replace("_", "-"), action="store_true",
                            help="the build option (every run)")
        ap.add_argument("--psum-slots", type=int, choices=range(4, 9), default=None,
                        help="psum row slots of the build (default: the config's)")
    return ap


def inputs(a: argparse.Namespace, with_labels: bool = False, **build) -> tuple:
    """(program, its first a.images test images as uint8 numpy, SIAConfig): the config
    file a.config with `build` overriding it (and the build flags, when the parser has
    them and they are given; absent, the file's value stands); with_labels: also the
    images' labels, last."""
    build = {**{k: True for k in BUILD_FLAGS if getattr(a, k, False)}, **build}
    if getattr(a, "psum_slots", None):
        build["psum_slots"] = a.psum_slots
    from sia.data.registry import load_split
    from sia.program.resolve import resolve_program
    p = resolve_program(a.program)
    images, labels = load_split(p.meta.get("dataset", "digits"), "test", a.data_dir)
    out = (p, np.asarray(images[:a.images]), SIAConfig.load(a.config, **build))
    return (*out, np.asarray(labels[:a.images])) if with_labels else out


def parse(doc: str, argv, images: int, build_flags: bool = False):
    """A script's arguments (its docstring's first paragraph as the description) and
    its inputs: (args, program, images, SIAConfig of --config/--pes/--events/flags)."""
    a = parser(doc.split("\n\n")[0], images, build_flags).parse_args(argv)
    return (a, *inputs(a, pes=a.pes, events_per_cycle=a.events))


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

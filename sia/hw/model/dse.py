"""Design-space exploration: PE count x events per cycle x T x weight bits x weight batch
(x the build options phase pairs, identity drain and psum row slots).

The spike statistics depend on T only, so the model runs once per T (per T and P when
the program has identity groups, whose scanned words are the tile's channel slice) on
a small image subset and keeps, per layer, the scanned words' set-bit counts and the
SOP totals. Every other point is then evaluated from them without re-simulating:
per-row dispatch cycles = sum of max(1, ceil(n / E)) over the row's words, then the
dispatcher / aggregation-core overlap (schedule.overlap); the rest is data-independent.
Each point also carries the design's GOPS/PE ceiling (`report.cycles_floor`).
"""

import dataclasses
import json
from pathlib import Path


from sia import SiaError
from sia.hw.model import schedule as S
from sia.hw.model.fast import (ModelResult, amortised_static, images_per_launch, launch_chunks,
                                packed_overlap, run)
from sia.hw.model.fit import check_fits
from sia.hw.params import SIAConfig
from sia.hw.planes import hardware_view
from sia.hw.rtl.bram import XC7Z020_RAMB36, design_ram36
from sia.hw.rtl.bram import exact as bram_exact
from sia.program.format import Program


def _overlap(program: Program, L, cfg: SIAConfig, T: int, tile: int, weight_batch: int,
             per_launch: int, chunks) -> dict[str, float]:
    """Mean span and input wait per image of one tile's launches (dispatcher and
    aggregation core side by side) from the scanned words of a run(..., keep_scans=True)."""
    layer = program.layers[L.index]
    d = 0
    for k, syn, words, planes, orig in L.scans:
        if k is None or k == tile:
            # identity in the drain (`regmap.drain_group`): never issued
            d = d + (S.no_dispatch(words, layer.shape[1]) if S.in_drain(orig, layer, cfg) else
                     S.row_dispatch(syn, words, layer.shape[1], cfg.events_per_cycle, planes,
                                    S.phase(orig, program, cfg), S.holds(syn, cfg),
                                    S.quad(orig, program, cfg)))
    o = packed_overlap(program, L.index, cfg, T, tile, d, weight_batch, per_launch, chunks)
    return {"span": float(o["span"].mean()), "wait": float(o["wait"].mean())}


def _cycles_floor(program: Program, L, cfg: SIAConfig, T: int, tiles: int, n: int) -> float:
    """`report.cycles_floor` of layer L on `cfg` from its scanned words: E events per cycle
    (2E in phase-pair groups, 4E in phase quads) per tile, one drained position per cycle."""
    issue = 0.0
    layer = program.layers[L.index]
    out_hw = layer.shape[1:]
    for k, syn, words, planes, orig in L.scans:
        if S.in_drain(orig, layer, cfg):       # added while draining, never issued
            continue
        times = tiles if k is None else 1      # words every tile scans / one tile's slice
        events = float(S.scanned(syn, words, out_hw[0]).sum())   # the rows the launch scans
        issue += events * times / S.sets_per_cycle(orig, program, cfg)
    return S.floor_cycles(issue / n, cfg.events_per_cycle, T, out_hw, tiles)


def point(program: Program, r: ModelResult, cfg: SIAConfig, weight_batch: int = 1,
          launch_images: int = 1) -> dict:
    """Latency / throughput of `cfg` from a run's statistics (same program and T), with
    the host keeping weights resident over `weight_batch` images (and packing up to
    `launch_images` of them per launch, 0 = as many as fit)."""
    T, n = r.timesteps, r.images
    row = {"pes": cfg.pes, "events_per_cycle": cfg.events_per_cycle, "timesteps": T,
           "weight_bits": cfg.weight_bits, "phase_pairs": cfg.phase_pairs,
           "phase_quads": cfg.phase_quads, "narrow_stream": cfg.narrow_stream,
           "identity_drain": cfg.identity_drain, "psum_slots": cfg.psum_slots,
           "weight_batch": weight_batch, "launch_images": launch_images,
           # block RAM of the build (RAMB36 equivalents, exact against Yosys; the
           # XC7Z020 has 140): sia/hw/rtl/bram.py
           "ramb36": design_ram36(cfg)["total"], "ramb36_exact": bram_exact(cfg)}
    try:
        check_fits(program, cfg, T)
    except SiaError as e:
        return {**row, "fits": False, "reason": str(e)}
    if r is None:
        raise SiaError("dse.point needs a model run of this build's program view")
    if any(not L.scans for L in r.layers):
        raise SiaError("dse.point needs a model run with keep_scans=True")
    program = hardware_view(program, cfg)   # as the run scanned it (sign pairs, planes)
    if r.images and len(r.layers[0].scans) and r.layers[0].scans[0][2].shape[1] != r.images:
        raise SiaError("dse.point needs a model run in one batch (keep_scans)")
    cycles = compute = acc_ops = sops = floor = 0.0
    for L in r.layers:
        layer = program.layers[L.index]
        nt = S.tiles(layer, cfg)
        floor += _cycles_floor(program, L, cfg, T, nt, n)
        loops = S.loop_constant(program, L.index, T)
        per_launch = images_per_launch(program, L.index, cfg, T, launch_images, weight_batch)
        chunks = launch_chunks(program, L.index, cfg, T)   # this build's, not the run's
        for tile in range(nt):
            ph = amortised_static(program, L.index, cfg, T, tile, weight_batch, per_launch, chunks)
            o = _overlap(program, L, cfg, T, tile, weight_batch, per_launch, chunks)
            # static phases hold the dispatcher's loop constants; the span holds them too
            cycles += sum(ph.values()) - loops + o["span"]
            compute += o["span"] - o["wait"]
        sops += float(L.sops.sum()) / n
        acc_ops += float(L.sops.sum() + L.image_ops.sum()) / n
    sec = cycles / (cfg.clock_mhz * 1e6)
    per_pe = sops * cfg.clock_mhz * 1e6 / 1e9 / cfg.pes
    return {**row, "fits": True, "latency_cycles": cycles, "images_per_s": 1 / sec,
            "gops_acc": sops / sec / 1e9, "gops_per_pe": per_pe / cycles,
            "pe_utilisation": acc_ops / (cfg.pes * cfg.events_per_cycle * cfg.taps * compute),
            # the design's ceiling (report.cycles_floor, summed over the layers)
            "gops_per_pe_ceiling": per_pe / floor,
            # projection for an option the RTL does not have (labelled so in reports):
            # every stream phase hidden behind compute (double-buffered spike buffers)
            "gops_per_pe_compute_only": per_pe / compute}


def t_limit(program: Program, base: SIAConfig) -> int:
    """The largest T a sweep may ask for: the program's t_max and the build's max_timesteps."""
    return min(program.t_max, base.max_timesteps)


def check_phase_options(phases, quads) -> None:
    """A sweep with phase quads on needs phase pairs on in some build (quads extend them)."""
    if True in quads and True not in phases:
        raise SiaError("phase quads need phase pairs: sweep --phase-pairs on (or off,on) "
                       "with --phase-quads on")


def sweep(program: Program, images, pes=(16, 32, 64, 128), events=(1, 2), timesteps=(4, 8, 16),
          weight_bits=(8, 16), base: SIAConfig | None = None, progress: bool = False,
          batches=(1,), launch_images: int = 1, phase_pairs=None,
          identity_drain=None, psum_slots=None, phase_quads=None,
          narrow_stream=None) -> list[dict]:
    """phase_pairs, identity_drain, psum_slots, phase_quads, narrow_stream: the values of
    those SIAConfig build options to sweep (default: the base's; quads only with pairs)."""
    base = base or SIAConfig()
    phases = (base.phase_pairs,) if phase_pairs is None else tuple(phase_pairs)
    quads = (base.phase_quads,) if phase_quads is None else tuple(phase_quads)
    narrows = (base.narrow_stream,) if narrow_stream is None else tuple(narrow_stream)
    # (phase pairs, phase quads) builds: quads need pairs
    phase_opts = [(ph, q) for ph in phases for q in quads if ph or not q]
    check_phase_options(phases, quads)
    drains = (base.identity_drain,) if identity_drain is None else tuple(identity_drain)
    slots = (base.psum_slots,) if psum_slots is None else tuple(psum_slots)
    Ts = [T for T in timesteps if 1 <= T <= t_limit(program, base)]
    if not Ts:
        raise SiaError(f"no T in {list(timesteps)} within 1..{t_limit(program, base)} "
                       f"(program t_max={program.t_max}, max_timesteps={base.max_timesteps})")
    # every build of the sweep, made (so validated) before any model run
    # (pool hold holds one event: builds with E <= 2 only)
    builds = {(P, E, wb, ph, q, idr, ns, nar): dataclasses.replace(
                  base, pes=P, events_per_cycle=E, weight_bits=wb, phase_pairs=ph,
                  phase_quads=q, narrow_stream=nar, identity_drain=idr, psum_slots=ns,
                  pool_hold=base.pool_hold and E <= 2)
              for P in pes for E in events for wb in weight_bits for ph, q in phase_opts
              for idr in drains for ns in slots for nar in narrows}
    # identity groups scan the tile's own channel slice, so their words depend on P
    per_p = any(g.op == "identity" for layer in program.layers for g in layer.inputs)
    rows = []
    for T in Ts:
        runs = {}
        for P in pes:
            for E in events:
                for wb in weight_bits:
                    for ph, q in phase_opts:
                        for idr, ns, nar in ((i, s, n) for i in drains for s in slots
                                             for n in narrows):
                            cfg = builds[P, E, wb, ph, q, idr, ns, nar]
                            key = _scans_key(program, cfg, per_p)
                            if key not in runs:
                                # one batch: the points are evaluated from every image's
                                # scanned words
                                try:
                                    runs[key] = run(program, images, T=T, config=cfg,
                                                    progress=progress, keep_scans=True,
                                                    batch_size=max(1, len(images)))
                                except SiaError:   # the build cannot run it: `point` says why
                                    runs[key] = None
                            for b in batches:
                                rows.append(point(program, runs[key], cfg, b, launch_images))
    return rows


def _scans_key(program: Program, cfg: SIAConfig, per_p: bool) -> tuple:
    """What a run's scanned words depend on: the PE count (identity groups scan the tile's
    slice) and the groups of the build's view (sign pairs need signed neurons and no
    phase pair: `sia.hw.planes.sign_pair`)."""
    view = hardware_view(program, cfg)
    return (cfg.pes if per_p else None,
            tuple(s.plane for layer in view.layers for s in layer.inputs))


def write(rows: list[dict], out_dir, stem: str = "sia_dse") -> tuple[Path, Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sia.outputs import write_outputs
    ok = [r for r in rows if r["fits"]]
    wb = min((r["weight_bits"] for r in ok), default=None)   # the narrowest that fits
    bmax = max((r["weight_batch"] for r in ok), default=1)    # the largest batch
    # x axis: the PE count, or the psum row slots when they are what the sweep varies
    by_slots = len({r["pes"] for r in ok}) == 1 and len({r["psum_slots"] for r in ok}) > 1
    x_key, line_key = ("psum_slots", "pes") if by_slots else ("pes", "psum_slots")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for T in sorted({r["timesteps"] for r in ok}):
        for E in sorted({r["events_per_cycle"] for r in ok}):
            def opts(r):   # the build options a line holds fixed
                return (r["phase_pairs"], r["phase_quads"], r["narrow_stream"],
                        r["identity_drain"], r[line_key])
            for ph, q, nar, idr, v in sorted({opts(r) for r in ok}):
                pts = sorted((r[x_key], r["images_per_s"], r["gops_per_pe"]) for r in ok
                             if r["timesteps"] == T and r["events_per_cycle"] == E
                             and r["weight_bits"] == wb and r["weight_batch"] == bmax
                             and opts(r) == (ph, q, nar, idr, v))
                if pts:
                    p, ips, gpp = zip(*pts)
                    lab = (f"T={T}, E={E}" + (", phase quads" if q else ", phase pairs" if ph else "")
                           + (", narrow streams" if nar else "")
                           + (", identity drain" if idr else "")
                           + (f", P={v}" if by_slots else f", {v} slots" if v != 4 else ""))
                    style = {"linestyle": "--" if ph else "-", "marker": "s" if idr else "o"}
                    a1.plot(p, ips, label=lab, **style)
                    a2.plot(p, gpp, label=lab, **style)
    for ax, lab in ((a1, "images/s"), (a2, "GOPS/PE (1 op = 1 accumulate)")):
        if by_slots:
            ax.set_xticks(sorted({r["psum_slots"] for r in ok}))
            ax.set_xlabel("psum row slots per PE")
        else:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("PEs")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.suptitle(f"SIA design space (weight_bits={wb}, weight batch {bmax})")
    fig.tight_layout()
    try:
        js, png = write_outputs(out_dir, {
            f"{stem}.json": lambda p: p.write_text(json.dumps(rows, indent=1)),
            f"{stem}.png": lambda p: fig.savefig(p, dpi=120)})
    finally:
        plt.close(fig)
    return js, png


TABLE_HEADER = ["P", "E", "T", "wbits", "phase", "narrow", "id drain", "slots", "batch", "cycles/img", "images/s", "GOPS(acc)", "GOPS/PE",
                "GOPS/PE ceiling", "util %", "GOPS/PE compute only*", "RAMB36"]


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        head = [str(r["pes"]), str(r["events_per_cycle"]), str(r["timesteps"]), str(r["weight_bits"]),
                "quads" if r["phase_quads"] else "pairs" if r["phase_pairs"] else "off",
                "on" if r["narrow_stream"] else "off", "on" if r["identity_drain"] else "off",
                str(r["psum_slots"]), str(r["weight_batch"])]
        bram = (("" if r["ramb36_exact"] else "<= ") + f"{r['ramb36']:g}"
                + (" (> XC7Z020)" if r["ramb36"] > XC7Z020_RAMB36 and r["ramb36_exact"] else ""))
        if not r["fits"]:
            out.append(head + ["does not fit", "", "", "", "", "", "", bram])
        else:
            out.append(head + [f"{r['latency_cycles']:,.0f}", f"{r['images_per_s']:,.1f}",
                               f"{r['gops_acc']:.2f}", f"{r['gops_per_pe']:.3f}",
                               f"{r['gops_per_pe_ceiling']:.3f}",
                               f"{100 * r['pe_utilisation']:.1f}",
                               f"{r['gops_per_pe_compute_only']:.3f}", bram])
    return out

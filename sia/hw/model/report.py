"""Performance report of a model run: latency, throughput, GOPS (both conventions),
PE utilisation, per-layer breakdown, energy estimate; JSON + a per-layer PNG."""

import json
from pathlib import Path

import numpy as np

from sia.hw.model import energy
from sia.hw.model.fast import ModelResult, launch_groups
from sia.hw.model.schedule import PHASES, compute_cycles, floor_cycles
from sia.hw import timing
from sia.outputs import write_outputs

# Until RTL synthesis reports DSP48E1s, the architecture's own count: the spiking core
# accumulates only, and the 8-bit image layer is bit-serial (shift, no multiplier).
DSP_ESTIMATE = 0
DSP_ESTIMATE_SOURCE = "architecture estimate (no multipliers: bit-serial image layer)"


def synth_dsp(path) -> tuple[int, str]:
    """DSP48E1 count from a `sia synth` report (synth_report.json), with its source;
    anything else is a one-line SiaError naming the file."""
    from sia import SiaError
    p = Path(path)
    if not p.is_file():
        raise SiaError(f"no such synthesis report: {p}" + (" (a directory; give its "
                       "synth_report.json)" if p.is_dir() else ""))
    try:
        rep = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SiaError(f"{p}: not a `sia synth` report (not valid JSON: {e})") from None
    res = rep.get("resources") if isinstance(rep, dict) else None
    dsp = res.get("DSP48E1") if isinstance(res, dict) else None
    if (isinstance(dsp, bool) or not isinstance(dsp, (int, float))
            or not float(dsp).is_integer() or dsp < 0):
        raise SiaError(f"{p}: not a `sia synth` report (needs a JSON object with "
                       f"resources.DSP48E1, a count)")
    return int(dsp), f"RTL synthesis report {path} (Yosys estimate)"


def _layer(L, r: ModelResult) -> dict:
    cfg, n, T = r.config, r.images, r.timesteps
    total = L.phases(n)
    # the launch constants (C_LAUNCH per launch; a packed launch's is shared by its
    # images) are not compute
    wb = r.weight_batch
    launches = len(launch_groups(wb, wb, L.per_launch)) / wb
    compute = compute_cycles(total) + timing.C_LAUNCH * (1 - L.tiles * launches)
    sops, iops = float(L.sops.sum()) / n, float(L.image_ops.sum()) / n
    lanes = cfg.pes * cfg.events_per_cycle * cfg.taps
    cycles = sum(total.values())
    sec = cycles / (cfg.clock_mhz * 1e6)
    floor = cycles_floor(L, r)
    return {"name": L.name, "kind": L.kind, "image_layer": L.image, "tiles": L.tiles,
            "cycles": cycles, "compute_cycles": compute, "phases": total,
            "compute_per_timestep": (L.per_t / n).tolist(),
            "sops": sops, "image_ops": iops, "events": float(L.events.sum()) / n,
            "spike_rate": L.spikes / max(1, L.neurons * T * n) if L.kind == "if" else None,
            "dense_macs": L.dense_macs,
            "pe_utilisation": (sops + iops) / (lanes * compute) if compute else 0.0,
            "gops_acc": (sops + iops) / sec / 1e9 if sec else 0.0,
            "cycles_floor": floor,
            "utilisation_ceiling": (sops + iops) / (lanes * floor) if floor else 0.0}


def cycles_floor(L, r: ModelResult) -> float:
    """The fewest cycles per image any schedule of this design could give layer L
    (docs/architecture.md, "How far each target is from the design's ceiling"): a
    tile's dispatcher issues at most E events per cycle (2E in a phase-pair group) and
    the aggregation core drains one output position per cycle, T times per position;
    no rounding, empty units, constants, loads or stalls."""
    return floor_cycles(float(L.issue_floor.sum()) / r.images, r.config.events_per_cycle,
                        r.timesteps, L.out_hw, L.tiles)


def _memory(r: ModelResult) -> dict:
    """Accesses per image, per memory (own word width, see docs/architecture.md)."""
    n = r.images
    out: dict[str, float] = {}
    for L in r.layers:
        for mem in L.memory:
            for k, v in mem.items():
                out[k] = out.get(k, 0.0) + v
        out["weight_reads"] = out.get("weight_reads", 0.0) + float(L.weight_reads.sum()) / n
    return out


def _per_timestep(r: ModelResult) -> list[float]:
    """Compute cycles of the non-image layers' timestep loops, per t (image layers run
    once); the final drain of a launch counts to its last timestep."""
    out = np.zeros(r.timesteps)
    for L in r.layers:
        if not L.image:
            out += L.per_t / r.images
    return out.tolist()


def rtl_refusals(program, cfg, T) -> list[str]:
    """Layers the RTL build refuses although the architecture runs them (its spike /
    output buffers hold `buffer_timesteps` maps of one 64-channel word per position,
    <= 4 groups; a layer whose T steps do not fit runs as launches of fewer steps,
    `regmap.launch_chunks`, and is refused only if those do not fit either)."""
    from sia import SiaError
    from sia.hw import regmap
    out = []
    for i in range(len(program.layers)):
        try:
            regmap.check_launches(program, i, cfg, T)
        except SiaError as e:
            out.append(str(e))
    return out


def summarize(r: ModelResult, dsp: int | None = None, dsp_source: str | None = None,
              program=None) -> dict:
    """Per network and configuration. dsp: DSP48E1 count from synthesis, when known;
    program: the run's program, to list what the RTL build would refuse."""
    cfg, n, T = r.config, r.images, r.timesteps
    layers = [_layer(L, r) for L in r.layers]
    cycles = float(r.image_cycles.mean())
    sec = cycles / (cfg.clock_mhz * 1e6)
    sops = sum(x["sops"] for x in layers)
    iops = sum(x["image_ops"] for x in layers)
    macs = sum(x["dense_macs"] for x in layers)
    gops = sops / sec / 1e9
    gops_img = (sops + iops) / sec / 1e9
    if dsp is None:
        dsp, dsp_source = DSP_ESTIMATE, DSP_ESTIMATE_SOURCE
    lanes = cfg.pes * cfg.events_per_cycle * cfg.taps
    compute = sum(x["compute_cycles"] for x in layers)
    conv = [x for x in layers if not x["image_layer"] and x["kind"] == "if"]
    conv_compute = sum(x["compute_cycles"] for x in conv)
    floor = sum(x["cycles_floor"] for x in layers)
    conv_floor = sum(x["cycles_floor"] for x in conv)
    phases = {k: sum(x["phases"][k] for x in layers) for k in PHASES}
    mem = _memory(r)
    counts = {"accumulate": sops + iops, "psum_rmw": sops + iops,
              "weight_read": mem["weight_reads"], "weight_write": mem["weight_writes"],
              "spike_in": mem["spike_in_reads"] + mem["spike_in_writes"],
              "psum_drain": mem["psum_drain_reads"], "shortcut": mem["shortcut_reads"],
              "membrane": sum(v for k, v in mem.items() if k.startswith("membrane")),
              "spike_out": mem["spike_out_reads"] + mem["spike_out_writes"],
              "stream_beat": sum(phases[k] for k in ("weight_load", "param_load", "stream_in"))
              + mem["stream_out_beats"]}
    e = energy.estimate(cfg, counts)
    return {
        "program": r.program, "config": cfg.to_json(), "timesteps": T, "images": n,
        "timing_constants": {"C_LAUNCH": timing.C_LAUNCH, "C_STEP": timing.C_STEP,
                             "C_ROW": timing.C_ROW, "C_HAND": timing.C_HAND,
                             "C_OUT_TAIL": timing.C_OUT_TAIL},
        "accuracy": r.accuracy[-1] if r.accuracy else None,
        "latency_cycles": {"mean": cycles, "min": int(r.image_cycles.min()),
                           "max": int(r.image_cycles.max())},
        "latency_us": cycles / cfg.clock_mhz, "images_per_s": 1.0 / sec,
        # launch-major batches: an image's result is ready when its batch is done
        "weight_batch": r.weight_batch,
        "batch_latency_us": r.weight_batch * cycles / cfg.clock_mhz,
        # packed launches: images per launch of each layer (1 = one image per launch)
        "images_per_launch": {L.name: L.per_launch for L in r.layers},
        "sops_per_image": sops, "image_ops_per_image": iops,
        "gsop_per_s": gops,
        "gops_acc": gops, "gops_acc_incl_image": gops_img,
        "gops_dense_equiv": 2 * macs * T / sec / 1e9,
        "gops_per_pe": gops / cfg.pes, "gops_per_pe_incl_image": gops_img / cfg.pes,
        "dsp": {"count": dsp, "source": dsp_source},
        "gops_per_dsp": gops / dsp if dsp else None,
        "gops_per_dsp_note": None if dsp else f"n/a: 0 DSPs ({dsp_source})",
        "pe_utilisation": (sops + iops) / (lanes * compute) if compute else 0.0,
        "pe_utilisation_conv": (sum(x["sops"] for x in conv) / (lanes * conv_compute)
                                if conv_compute else None),
        # what no schedule of this design beats (`cycles_floor` per layer, summed)
        "cycles_floor_per_image": floor,
        "gops_per_pe_ceiling": sops / (floor / (cfg.clock_mhz * 1e6)) / 1e9 / cfg.pes,
        "pe_utilisation_conv_ceiling": (sum(x["sops"] for x in conv) / (lanes * conv_floor)
                                        if conv_floor else None),
        "phases": phases, "cycles_per_timestep": _per_timestep(r),
        "memory_accesses": mem,
        "energy": {"label": energy.SOURCE, "pj_per_event": energy.table(cfg),
                   "uj_per_image": {k: v / 1e6 for k, v in e.items()},
                   "power_w": e["total"] * 1e-12 / sec},
        "rtl_refuses": None if program is None else rtl_refusals(program, cfg, T),
        "layers": layers,
    }


def _batch_note(summ: dict) -> str:
    b = summ.get("weight_batch", 1)
    k = max(summ.get("images_per_launch", {}).values(), default=1)
    packed = f", up to {k} images per launch" if k > 1 else ""
    return "" if b == 1 else f" (weights resident over {b} images{packed}, batch latency " \
        f"{summ['batch_latency_us']:,.0f} us)"


def build_name(cfg: dict) -> str:
    """The build in a few words: P, E and the options that differ from the defaults."""
    opts = [name for key, name in (("phase_pairs", "phase pairs"),
                                   ("identity_drain", "identity drain"),
                                   ("pool_hold", "pool hold"),
                                   ("phase_quads", "phase quads"),
                                   ("narrow_stream", "narrow streams"))
            if cfg.get(key)]
    if not cfg.get("row_prefetch", True):
        opts.append("no row prefetch")
    if cfg.get("psum_slots", 4) != 4:
        opts.append(f"{cfg['psum_slots']} psum slots")
    if cfg.get("signed_count_bits"):
        opts.append(f"signed neurons (K={cfg['signed_count_bits']})")
    return f"P={cfg['pes']} E={cfg['events_per_cycle']}" + "".join(", " + o for o in opts)


def headline(summ: dict) -> str:
    """One line for people: build, accuracy, latency, throughput (both GOPS conventions)."""
    cfg = summ["config"]
    acc = "n/a" if summ["accuracy"] is None else f"{summ['accuracy']:.4f}"
    return (f"{summ['program']} on {summ.get('data', '?')} ({summ['images']} images, "
            f"T={summ['timesteps']}; {build_name(cfg)}): accuracy {acc}; {summ['latency_cycles']['mean']:,.0f} "
            f"cycles = {summ['latency_us']:,.1f} us/image @ {cfg['clock_mhz']:g} MHz"
            f"{_batch_note(summ)}, "
            f"{summ['images_per_s']:,.1f} images/s; GOPS(acc) {summ['gops_acc']:.3f} "
            f"({summ['gops_per_pe']:.4f}/PE; design ceiling {summ['gops_per_pe_ceiling']:.3f}), dense-equivalent {summ['gops_dense_equiv']:.2f}; "
            f"PE utilisation {100 * summ['pe_utilisation']:.1f}%; energy (estimate) "
            f"{summ['energy']['uj_per_image']['total']:.1f} uJ/image")


def plot_layers(summary: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = summary["layers"]
    names = [x["name"] for x in layers]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(max(6, 0.6 * len(names) + 2), 7), sharex=True)
    bottom = np.zeros(len(names))
    for k in PHASES:
        vals = np.array([x["phases"][k] for x in layers])
        ax.bar(names, vals, bottom=bottom, label=k)
        bottom += vals
    ax.set_ylabel("cycles / image" + ("" if summary.get("weight_batch", 1) == 1 else
                                      f" (weight batch {summary['weight_batch']})"))
    ax.set_title(f"{summary['program']}: T={summary['timesteps']}, P={summary['config']['pes']}, "
                 f"E={summary['config']['events_per_cycle']}, "
                 f"{summary['latency_us']:.0f} us/image @ {summary['config']['clock_mhz']:g} MHz",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    ax2.bar(names, [100 * x["pe_utilisation"] for x in layers], color="tab:green")
    ax2.set_ylabel("PE utilisation %")
    ax2.set_ylim(0, 100)
    ax2.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(summary: dict, out_dir, stem: str = "sia_model") -> tuple[Path, Path]:
    js, png = write_outputs(out_dir, {
        f"{stem}.json": lambda p: p.write_text(json.dumps(summary, indent=1)),
        f"{stem}_layers.png": lambda p: plot_layers(summary, p)})
    return js, png


def table_rows(summary: dict) -> list[list[str]]:
    """Per-layer table for printing: name, tiles, images per launch, cycles, util and its
    design ceiling, SOPs, spike rate."""
    rows = []
    per_launch = summary.get("images_per_launch", {})
    for x in summary["layers"]:
        rate = "-" if x["spike_rate"] is None else f"{x['spike_rate']:.3f}"
        rows.append([x["name"], str(x["tiles"]), str(per_launch.get(x["name"], 1)),
                     f"{x['cycles']:,.0f}",
                     f"{100 * x['pe_utilisation']:.1f}", f"{100 * x['utilisation_ceiling']:.1f}",
                     f"{x['sops'] + x['image_ops']:,.0f}",
                     f"{x['gops_acc']:.2f}", rate])
    return rows


TABLE_HEADER = ["layer", "tiles", "imgs/launch", "cycles/img", "util %", "ceiling %", "acc ops/img",
                "GOPS(acc)", "spike rate"]

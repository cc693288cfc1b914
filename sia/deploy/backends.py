"""One call, four backends: the same program and images through golden, model, rtl or pynq.

    from sia.deploy.backends import run
    r = run(program, images_u8, backend="rtl", T=4)      # RunResult, same shape for all

RunResult.logits are the integrator's final membranes V_T [N, classes] (int64),
predictions their argmax (ties to the lowest class), spikes the total spikes per layer:
the integers every backend must reproduce bit for bit (compare with same_result).

  golden  sia.snn.golden: the reference
  model   sia.hw.model: the cycle-level model (adds cycle counts)
  rtl     the driver (register + DMA sequence) over the simulated AXI DMA twin, forwarding
          the streams to the Verilator co-simulation of sia/hw/rtl
  twin    the same driver and twin with the pure-Python device (regmap + golden per tile)
  pynq    the driver on the board (needs pynq, the overlay and an image)
"""

import time
from dataclasses import dataclass, field

import numpy as np

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.program.format import Program

BACKENDS = ("golden", "model", "rtl", "twin", "pynq")


@dataclass
class RunResult:
    backend: str
    T: int
    predictions: np.ndarray            # [N] int64
    logits: np.ndarray                 # [N, classes] int64: final integrator membranes
    spikes: dict[str, int]             # total spikes per layer over all images and t
    accuracy: float | None = None
    cycles: int | None = None          # accelerator cycles (model, rtl, twin, pynq)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"backend": self.backend, "T": self.T, "images": int(len(self.predictions)),
                "accuracy": self.accuracy, "cycles": self.cycles, "seconds": round(self.seconds, 4),
                "spikes": self.spikes, "predictions": self.predictions.tolist()}


def same_result(a: RunResult, b: RunResult) -> list[str]:
    """Differences between two results' integers (empty = bit-exact)."""
    diffs = []
    if a.logits.shape != b.logits.shape or not np.array_equal(a.logits, b.logits):
        bad = np.argwhere(a.logits != b.logits) if a.logits.shape == b.logits.shape else [[-1]]
        diffs.append(f"logits differ ({len(bad)} values, first at image {bad[0][0]})")
    if not np.array_equal(a.predictions, b.predictions):
        diffs.append("predictions differ")
    for k in a.spikes:
        if a.spikes[k] != b.spikes.get(k):
            diffs.append(f"spikes of {k}: {a.spikes[k]} vs {b.spikes.get(k)}")
    return diffs


def _check_images(program: Program, images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != tuple(program.input_shape):
        raise SiaError(f"images must be uint8 [N, {', '.join(map(str, program.input_shape))}], "
                       f"got {images.dtype} {list(images.shape)}")
    return images


def run_golden(program: Program, images, labels=None, T=None) -> RunResult:
    import torch
    from sia.snn.golden import check_run, run_batch
    T, images = check_run(program, images, T)
    t0 = time.perf_counter()
    logits, spikes = [], {L.name: 0 for L in program.layers}
    with torch.no_grad():
        for s in range(0, len(images), 256):
            st = run_batch(program, images[s:s + 256], T)
            logits.append(st["output_v"][-1].numpy().astype(np.int64))
            for k, v in st["spikes"].items():
                spikes[k] += int(v)
    logits = np.concatenate(logits) if logits else np.zeros((0, program.num_classes), np.int64)
    return _result("golden", T, logits, spikes, labels, None, time.perf_counter() - t0)


def _result(backend, T, logits, spikes, labels, cycles, seconds, extra=None) -> RunResult:
    preds = logits.argmax(1) if len(logits) else np.zeros(0, np.int64)
    acc = None if labels is None else float((preds == np.asarray(labels)).mean())
    return RunResult(backend, T, preds.astype(np.int64), logits, spikes, acc, cycles, seconds,
                     extra or {})


def run_model(program: Program, images, labels=None, T=None, cfg: SIAConfig | None = None,
              batch: int = 1, launch_images: int = 1) -> RunResult:
    try:
        from sia.hw.model import run as model_run
    except ImportError as e:
        raise SiaError(f"backend model not available: sia.hw.model cannot be imported ({e})") from None
    T = program.timesteps if T is None else int(T)
    t0 = time.perf_counter()
    # the driver's schedule: chunks of `batch` images, one weight load per tile and
    # chunk (and packed launches within a chunk): the whole chunks are one model run
    # with that weight batch, a last partial chunk one more with its own
    n = len(images)
    full = n // batch * batch
    logits, spikes, cycles = [], {L.name: 0 for L in program.layers}, 0.0
    for part in (images[:full], images[full:]):
        if not len(part):
            continue
        r = model_run(program, part, labels=None, T=T, config=cfg or SIAConfig(),
                      keep_logits=True, weight_batch=min(batch, len(part)),
                      launch_images=launch_images)
        if getattr(r, "output_v", None) is None:
            raise SiaError("backend model: sia.hw.model.run returned no logits (keep_logits)")
        logits.append(np.asarray(r.output_v)[-1].astype(np.int64))
        for L in r.layers:
            spikes[L.name] += int(L.spikes)
        cycles += float(np.asarray(r.image_cycles).sum())
    logits = np.concatenate(logits) if logits else np.zeros((0, program.num_classes), np.int64)
    cycles = round(cycles)   # packed launches share their cycles among their images
    return _result("model", T, logits, spikes, labels, cycles, time.perf_counter() - t0)


def twin_driver(program: Program, T=None, cfg: SIAConfig | None = None, device: str = "python",
                length_width: int = 26, timeout_s: float = 10.0, **twin_kw):
    """A SiaDriver over the simulated AXI DMA twin, with the image of `program` loaded.
    device: 'python' (regmap + golden per tile) or 'rtl' (Verilator co-simulation)."""
    from sia.deploy.image import build_image
    from sia.deploy.pynq_driver import SiaDriver
    from sia.deploy.transport import TwinTransport
    from sia.deploy.twin_device import make_device
    cfg = cfg or SIAConfig()
    dev = make_device(device, cfg)
    tr = TwinTransport(dev, length_width=length_width, stream_bits=cfg.stream_bits, **twin_kw)
    drv = SiaDriver(tr, timeout_s=timeout_s)
    drv.load(build_image(program, cfg, T))
    return drv


def run(program: Program, images, backend: str = "golden", T=None, labels=None,
        cfg: SIAConfig | None = None, bitfile=None, image=None, batch: int = 1,
        launch_images: int = 1, **kw) -> RunResult:
    """Runs `images` (uint8 [N, C, H, W]) through `program` on one backend. batch:
    images per weight load on the accelerator backends (model: weight_batch);
    launch_images: images of a batch per packed launch (0 = as many as fit)."""
    if backend not in BACKENDS:
        raise SiaError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    images = _check_images(program, images)
    if backend == "golden":
        return run_golden(program, images, labels, T)
    if backend == "model":
        return run_model(program, images, labels, T, cfg, batch, launch_images)
    if backend in ("rtl", "twin"):
        drv = twin_driver(program, T, cfg, device="rtl" if backend == "rtl" else "python", **kw)
        try:
            r = drv.run(images, labels, batch, launch_images)
        finally:
            drv.close()
        r.backend = backend
        return r
    # pynq: on the board
    from sia.deploy.image import build_image
    from sia.deploy.pynq_driver import board_driver
    drv = board_driver(bitfile or "sia.bit", **kw)
    drv.load(image if image is not None else build_image(program, cfg or drv.identify(), T))
    try:
        return drv.run(images, labels, batch, launch_images)
    finally:
        drv.close()

"""The PYNQ driver: loads a program image and runs inference on SIA through AXI4-Lite
registers and the AXI DMA, in the PYNQ style.

On the board:

    from sia.deploy.pynq_driver import SiaOverlay
    ol = SiaOverlay("sia.bit")                 # pynq.Overlay + sia.hwh; binds the SIA IP
    ol.sia.load("digits.siaimg")                # checks the image against the hardware
    result = ol.sia.run(images_u8)              # uint8 [N, C, H, W] -> predictions, logits

`pynq` is imported only there (SiaOverlay, PynqTransport). Everything else — the register
and DMA sequence, buffer management, the layer/tile walk — is SiaDriver, which talks to a
transport: the board's, or the simulated twin (sia.deploy.transport.TwinTransport) that the
tests run against the pure-Python device and the RTL co-simulation.

Per launch (one layer, one tile of P output channels), in this order:
  1. packet = image's static tile part + the input spike maps of this image, padded to
     whole stream beats; refuse (at load) an output larger than the DMA's largest transfer
     (the length register width read from the .hwh), naming the fix;
  2. copy the packet into the send buffer, flush it from the CPU cache;
  3. arm S2MM first (DA, then LENGTH = the expected output size): the accelerator may
     start sending before MM2S finishes, and an unarmed S2MM stalls it;
  4. start SIA (CTRL.start), then MM2S (SA, then LENGTH: the LENGTH write starts it); a
     packet larger than one transfer goes out as several (SIA frames packets by their
     header, so the TLAST that ends each transfer is harmless); the output must fit one;
  5. wait for MM2S idle, S2MM idle and SIA done, each against one deadline; a DMA error
     bit or the deadline raises SiaError naming the channel, DMASR and the usual cause;
  6. check S2MM's LENGTH read-back == expected bytes (a short packet means a lost or early
     TLAST), invalidate the receive buffer, unpack the output.
"""

import time

import numpy as np

from sia import SiaError
from sia.deploy import regmap_bridge as rb
from sia.deploy import transport as tp
from sia.deploy.image import ProgramImage, load_image, parse_image


class SiaTimeout(SiaError):
    pass


class SiaDriver:
    def __init__(self, transport, timeout_s: float = 5.0, poll_s: float = 0.0,
                 split_mm2s: bool = True):
        self.t = transport
        # SIA frames a tile packet by its header, not by TLAST, so a packet larger than one
        # DMA transfer may go out as several MM2S transfers (each ends with TLAST). The
        # output cannot be split: S2MM needs the packet's one TLAST within one transfer.
        self.split_mm2s = split_mm2s
        self.timeout_s = float(timeout_s)
        self.poll_s = float(poll_s)
        self.image: ProgramImage | None = None
        self.length_width = int(getattr(transport, "length_width", tp.DEFAULT_LENGTH_WIDTH))
        self.hw_config = None
        self._send = self._recv = None
        self.cycles = 0
        self.launches_run = 0

    # ------------------------------------------------------------------ setup
    def identify(self):
        """Reads the ID and parameter registers; returns the accelerator's SIAConfig."""
        self.hw_config = rb.read_hw_config(self.t.sia_read)
        return self.hw_config

    def load(self, image) -> ProgramImage:
        """Loads an image (path, bytes or ProgramImage), refusing one built for another
        parameter set or packet-format version than the accelerator reports."""
        hw = self.hw_config or self.identify()
        if isinstance(image, ProgramImage):
            image = parse_image(image.to_bytes(), hw, "image", rb.regmap_version())
        elif isinstance(image, (bytes, bytearray)):
            image = parse_image(bytes(image), hw, "image", rb.regmap_version())
        else:
            image = load_image(image, hw, rb.regmap_version())
        split = next((k for k in range(len(image.launches)) if len(rb.launch_chunks(image, k)) > 1),
                     None)
        minor = self.t.sia_read(rb.REG["VERSION"]) & 0xFFFF
        if split is not None and minor < 10:
            raise SiaError(f"launch {split} splits its steps over launches (interface 1.10), which "
                           "this bitstream cannot resume; use a build with larger spike buffers "
                           "(buffer_timesteps) or a newer bitstream")
        pairs = next((k for k in range(len(image.launches)) if rb.sign_pairs(image, k)), None)
        if pairs is not None and minor < 12:
            raise SiaError(f"launch {pairs} carries sign pairs (interface 1.12), which this "
                           "bitstream would read as other channels; use a newer bitstream")
        drained = next((k for k in range(len(image.launches)) if rb.drained_sign_pair(image, k)),
                       None)
        if drained is not None and minor < 13:
            raise SiaError(f"launch {drained} drains a signed identity shortcut (interface "
                           "1.13), which this bitstream would add as +1 spikes only; use a "
                           "newer bitstream")
        self._free()
        self._buffers(image, [1] * len(image.launches))
        self.image = image
        self.reset()
        return image

    def _buffers(self, image: ProgramImage, per_launch: list[int]):
        """DMA buffers for the largest packet and output of launches k carrying
        per_launch[k] images each (packed launches carry several images' maps), refused
        in one line where the DMA's length register cannot move them."""
        sizes = [self._sizes(image, k, m) for k, m in enumerate(per_launch)]
        max_in = max(s[0] for s in sizes)
        max_out = max(s[1] for s in sizes)
        if (self._send is not None and len(self._send) >= max_in
                and len(self._recv) >= max_out):
            return
        limit = tp.dma_max_bytes(self.length_width)
        checks = [("tile output", max_out)] + ([] if self.split_mm2s else [("tile packet", max_in)])
        for what, n in checks:
            if n > limit:
                need = max(n.bit_length(), 8)
                raise SiaError(
                    f"largest {what} is {n} bytes but the AXI DMA's buffer length register is "
                    f"{self.length_width} bits ({limit} bytes max per transfer); rebuild the "
                    f"bitstream with `sia deploy vivado --dma-length-width {max(need, 23)}` "
                    f"('Width of Buffer Length Register', up to 26)")
        self._free()
        self._send = self.t.allocate(max_in)
        self._recv = self.t.allocate(max_out)

    def _sizes(self, image: ProgramImage, k: int, images: int = 1) -> tuple[int, int]:
        beat = image.config.stream_bits // 8
        ln = image.launches[k]
        n_in = ln["size"] + rb.input_nbytes(image, k) * images
        n_in += -n_in % beat
        return n_in, rb.output_nbytes(image, k) * images

    def _free(self):
        for b in (self._send, self._recv):
            if b is not None and hasattr(b, "freebuffer"):
                b.freebuffer()
        self._send = self._recv = None

    def _collect(self, outs: dict, logits: np.ndarray, spikes: dict, L: dict, li: int, ln: dict,
                 out: np.ndarray, t0: int, t1: int):
        """One image's output of a launch over steps [t0, t1): spikes into the maps later
        layers read (a signed layer's int8), the integrator's membranes into the logits
        (the last chunk's are the final ones)."""
        if L["kind"] == "if":
            if li not in outs:
                outs[li] = np.zeros((self.image.timesteps, *L["shape"]), dtype=out.dtype)
            outs[li][t0:t1, ln["c0"]:ln["c1"]] = out
            spikes[L["name"]] += int(np.abs(out).sum())   # +1 and -1
        else:
            logits[ln["c0"]:ln["c1"]] = out.reshape(-1)

    def close(self):
        self._free()

    # ------------------------------------------------------------------ DMA
    def reset(self):
        """Soft-resets the AXI DMA (both channels), then sets RS on both; resets SIA."""
        self.t.dma_write(tp.MM2S_DMACR, tp.DMACR_RESET)
        self._until(lambda: not (self.t.dma_read(tp.MM2S_DMACR) & tp.DMACR_RESET), "AXI DMA soft reset")
        for cr, sr, name in ((tp.S2MM_DMACR, tp.S2MM_DMASR, "S2MM"), (tp.MM2S_DMACR, tp.MM2S_DMASR, "MM2S")):
            self.t.dma_write(cr, tp.DMACR_RS)
            self._until(lambda sr=sr: not (self.t.dma_read(sr) & tp.DMASR_HALTED), f"{name} start (RS=1)")
        rb.reset_accelerator(self.t.sia_write)

    def _until(self, cond, what: str, deadline: float | None = None):
        deadline = deadline or time.monotonic() + self.timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise SiaTimeout(f"timed out after {self.timeout_s:g} s waiting for {what}")
            self.t.sleep(self.poll_s)

    def _wait_channel(self, sr_off: int, name: str, deadline: float, hint: str):
        while True:
            err = rb.status_error(self.t.sia_read)
            if err:
                raise SiaError(f"while waiting for AXI DMA {name}: {err}")
            sr = self.t.dma_read(sr_off)
            if sr & tp.DMASR_ERRORS:
                raise SiaError(f"AXI DMA {name} error: DMASR=0x{sr:08X} ({tp.dmasr_text(sr)}); {hint}")
            if sr & tp.DMASR_IDLE:
                return
            if time.monotonic() > deadline:
                raise SiaTimeout(f"AXI DMA {name} did not complete within {self.timeout_s:g} s "
                                 f"(DMASR=0x{sr:08X}: {tp.dmasr_text(sr)}); {hint}")
            self.t.sleep(self.poll_s)

    def launch(self, k: int, inputs: bytes, keep: bool = False, images: int = 1,
               steps: tuple[int, int] | None = None) -> bytes:
        """Runs launch k of the loaded image with the given input part; returns the output.
        keep: resident-weight launch (the previous launch must have been launch k).
        images: a packed launch (interface 1.3): `inputs` holds that many images' input
        maps one after the other, the output their outputs.
        steps: [t0, t1) of one image of a layer split over launches (interface 1.10,
        `rb.launch_chunks`); a chunk after the first resumes the one run just before."""
        img = self.image
        hdr = rb.packed_header(img, k, images, keep, steps)
        static = hdr if keep else hdr + img.tile_static(k)[len(hdr):]
        beat = img.config.stream_bits // 8
        packet = static + inputs
        packet += bytes(-len(packet) % beat)
        n_out = rb.output_nbytes(img, k, steps) * images
        limit = tp.dma_max_bytes(self.length_width)
        if n_out > limit or (len(packet) > limit and not self.split_mm2s):
            raise SiaError(f"launch {k}: {len(packet)}/{n_out} bytes exceed the DMA's {limit}-byte transfer")
        send, recv = self._send, self._recv
        np.asarray(send)[:len(packet)] = np.frombuffer(packet, dtype=np.uint8)
        send.flush()
        for sr in (tp.MM2S_DMASR, tp.S2MM_DMASR):
            self.t.dma_write(sr, tp.DMASR_IOC_IRQ | tp.DMASR_ERR_IRQ)   # clear stale W1C bits
        # arm the receive first
        self.t.dma_write(tp.S2MM_DA, recv.physical_address & 0xFFFFFFFF)
        if recv.physical_address >> 32:   # MSB registers exist only with > 32-bit addressing
            self.t.dma_write(tp.S2MM_DA_MSB, recv.physical_address >> 32)
        self.t.dma_write(tp.S2MM_LENGTH, n_out)
        rb.start_accelerator(self.t.sia_write)
        deadline = time.monotonic() + self.timeout_s
        chunk = limit - limit % beat            # whole beats per MM2S transfer
        for off in range(0, len(packet), chunk):
            n = min(chunk, len(packet) - off)
            addr = send.physical_address + off
            self.t.dma_write(tp.MM2S_SA, addr & 0xFFFFFFFF)
            if addr >> 32:
                self.t.dma_write(tp.MM2S_SA_MSB, addr >> 32)
            self.t.dma_write(tp.MM2S_LENGTH, n)
            self._wait_channel(tp.MM2S_DMASR, "MM2S (send)", deadline,
                               "the accelerator stopped taking the packet: check that S2MM was "
                               "armed first and that the packet matches the accelerator's format")
        self._wait_channel(tp.S2MM_DMASR, "S2MM (receive)", deadline,
                           "no TLAST from the accelerator or output longer than the armed length; "
                           "check the image/bitstream pairing and the DMA length register width")
        got = self.t.dma_read(tp.S2MM_LENGTH)
        if got != n_out:
            raise SiaError(f"launch {k}: received {got} bytes, expected {n_out} "
                           f"(TLAST early or late: packet format mismatch)")
        st = rb.wait_done(self.t.sia_read, lambda: time.monotonic() > deadline, self.t.sleep, self.poll_s)
        if st is not None:
            raise SiaError(f"launch {k}: {st}")
        recv.invalidate()
        self.cycles += rb.read_cycles(self.t.sia_read)
        self.launches_run += 1
        return bytes(np.asarray(recv)[:n_out])

    # ------------------------------------------------------------------ inference
    def run(self, images, labels=None, batch: int = 1, launch_images: int = 1):
        """images: uint8 [N, C, H, W]. Returns sia.deploy.backends.RunResult.
        batch: images per weight load: launch-major over each chunk of `batch` images,
        the first launch of a tile sends its weights, the others set `keep`.
        launch_images: up to this many images of a chunk per launch where the layer and
        the accelerator's buffers allow (packed launches; 0 = as many as fit)."""
        from sia.deploy.backends import RunResult
        img = self._need_image()
        images = np.asarray(images)
        shape = tuple(img.manifest["input_shape"])
        if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise SiaError(f"images must be uint8 [N, {', '.join(map(str, shape))}], "
                           f"got {images.dtype} {list(images.shape)}")
        layers = img.manifest["layers"]
        spikes = {L["name"]: 0 for L in layers}
        logits = np.zeros((len(images), img.manifest["num_classes"]), dtype=np.int64)
        if int(batch) != batch or batch < 1:
            raise SiaError(f"batch must be a positive integer, got {batch}")
        if int(launch_images) != launch_images or launch_images < 0:
            raise SiaError(f"launch_images must be 0 (as many as fit) or a positive integer, "
                           f"got {launch_images}")
        per_launch = [1 if launch_images == 1 else rb.launch_images(img, k, launch_images or None)
                      for k in range(len(img.launches))]
        self._buffers(img, [min(m, batch) for m in per_launch])
        t0, c0 = time.perf_counter(), self.cycles
        for first in range(0, len(images), batch):
            chunk = range(first, min(first + batch, len(images)))
            outs = {n: {} for n in chunk}
            for k, ln in enumerate(img.launches):
                li = ln["layer"]
                L = layers[li]
                steps = rb.launch_chunks(img, k)
                if len(steps) > 1:   # split over launches: one image's chunks in a row
                    for n in chunk:
                        for c, (a, b) in enumerate(steps):
                            data = self.launch(k, rb.pack_inputs(img, k, outs[n], images[n], (a, b)),
                                               keep=n != first or c > 0, steps=(a, b))
                            out = rb.unpack_output(img, k, data, (a, b))
                            self._collect(outs[n], logits[n], spikes, L, li, ln, out, a, b)
                    continue
                for g in range(chunk.start, chunk.stop, per_launch[k]):
                    group = range(g, min(g + per_launch[k], chunk.stop))
                    data = self.launch(k, b"".join(rb.pack_inputs(img, k, outs[n], images[n])
                                                   for n in group),
                                       keep=g != first, images=len(group))
                    size = len(data) // len(group)
                    for j, n in enumerate(group):
                        out = rb.unpack_output(img, k, data[j * size:(j + 1) * size])
                        self._collect(outs[n], logits[n], spikes, L, li, ln, out, 0,
                                      img.timesteps)
        preds = logits.argmax(1)
        acc = None if labels is None else float((preds == np.asarray(labels)).mean())
        return RunResult(backend="pynq", T=img.timesteps, predictions=preds, logits=logits,
                         spikes=spikes, accuracy=acc, cycles=self.cycles - c0,
                         seconds=time.perf_counter() - t0)

    def _need_image(self) -> ProgramImage:
        if self.image is None:
            raise SiaError("no program image loaded; call load(image) first")
        return self.image


def _pynq_overlay_class():
    try:
        from pynq import DefaultIP, Overlay
    except ImportError:
        raise SiaError("pynq is not installed: SiaOverlay runs on the PYNQ board; "
                       "use backend 'rtl' or the simulated twin here") from None
    from sia.deploy.transport import PynqTransport

    class SiaIP(DefaultIP):
        """The SIA register window as a PYNQ DefaultIP (bound by the VLNV in the .hwh)."""
        bindto = [rb.IP_VLNV]

        def __init__(self, description):
            super().__init__(description=description)
            self.driver = None

        def load(self, image, timeout_s: float = 5.0):
            self.driver = SiaDriver(PynqTransport(self._overlay), timeout_s=timeout_s)
            return self.driver.load(image)

        def run(self, images, labels=None):
            if self.driver is None:
                raise SiaError("no program image loaded; call load(image) first")
            return self.driver.run(images, labels)

    class SiaOverlay(Overlay):
        """pynq.Overlay of a `sia deploy vivado` bitstream: ol.sia is the accelerator."""

        def __init__(self, bitfile="sia.bit", **kw):
            super().__init__(bitfile, **kw)
            name = tp._find_ip(self.ip_dict, "sia")
            ip = getattr(self, name)
            if isinstance(ip, SiaIP):
                ip._overlay = self
            self.sia = ip if isinstance(ip, SiaIP) else _Bound(self)

    class _Bound:
        """Fallback when the .hwh VLNV differs (module reference): same interface."""
        def __init__(self, overlay):
            self._overlay, self.driver = overlay, None
        load, run = SiaIP.load, SiaIP.run

    return SiaOverlay


def SiaOverlay(bitfile="sia.bit", **kw):
    """On the board: pynq.Overlay(bitfile) with ol.sia.load(image) / ol.sia.run(images)."""
    return _pynq_overlay_class()(bitfile, **kw)


def board_driver(bitfile="sia.bit", timeout_s: float = 5.0) -> SiaDriver:
    """On the board: a SiaDriver over pynq.Overlay(bitfile) (what `--backend pynq` uses)."""
    from sia.deploy.transport import PynqTransport
    try:
        from pynq import Overlay
    except ImportError:
        raise SiaError("backend pynq needs the pynq package: run it on the PYNQ board") from None
    return SiaDriver(PynqTransport(Overlay(bitfile)), timeout_s=timeout_s)

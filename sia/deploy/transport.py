"""What the driver talks to: MMIO register windows, DMA buffers and the AXI DMA.

Two implementations of the same small interface:

    PynqTransport    on the board: pynq.MMIO windows (from the overlay's ip_dict) and
                     pynq.allocate buffers (physical_address, flush/invalidate)
    TwinTransport    here: an in-Python register file + AXI DMA engine + DDR model that
                     forwards the streams to a 'device' (a pure-Python SIA, or the RTL
                     co-simulation) and enforces the AXI DMA rules that hang real boards

The driver (sia.deploy.pynq_driver) programs the AXI DMA through its registers (PG021,
direct register mode), so the sequence it runs here is the one it runs on the board.

AXI DMA rules the twin enforces (each one is a way real boards hang):
  * LENGTH registers hold `length_width` bits (IP option 'Width of Buffer Length
    Register', 8..26, default 14): a larger value is silently truncated by the hardware,
    the stream ends early and the accelerator waits forever for the rest of the packet.
  * MM2S ends every transfer with TLAST; S2MM completes a transfer only on TLAST, and a
    packet longer than the armed S2MM LENGTH is an internal error (DMASR.DMAIntErr, halt).
  * A transfer starts on the LENGTH write, only with DMACR.RS = 1; writing LENGTH while
    the channel is busy is ignored by the hardware.
  * Arming order: when the accelerator starts producing output with no S2MM transfer
    armed, its output backs up and the launch stalls (the twin then completes nothing).
  * Caches: the DMA sees DDR, not the CPU cache; buffers must be flushed before MM2S and
    invalidated after S2MM (the twin keeps a CPU view and a DDR view per buffer).
"""

import numpy as np

from sia import SiaError

# AXI DMA register offsets (PG021, direct register mode)
MM2S_DMACR, MM2S_DMASR, MM2S_SA, MM2S_SA_MSB, MM2S_LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
S2MM_DMACR, S2MM_DMASR, S2MM_DA, S2MM_DA_MSB, S2MM_LENGTH = 0x30, 0x34, 0x48, 0x4C, 0x58
DMACR_RS, DMACR_RESET, DMACR_IOC_IRQEN, DMACR_ERR_IRQEN = 1 << 0, 1 << 2, 1 << 12, 1 << 14
DMASR_HALTED, DMASR_IDLE = 1 << 0, 1 << 1
DMASR_INTERR, DMASR_SLVERR, DMASR_DECERR = 1 << 4, 1 << 5, 1 << 6
DMASR_IOC_IRQ, DMASR_ERR_IRQ = 1 << 12, 1 << 14
DMASR_ERRORS = DMASR_INTERR | DMASR_SLVERR | DMASR_DECERR
DEFAULT_LENGTH_WIDTH = 14   # the AXI DMA IP's default


def dma_max_bytes(length_width: int) -> int:
    return (1 << int(length_width)) - 1


def dmasr_text(sr: int) -> str:
    names = [(DMASR_HALTED, "halted"), (DMASR_IDLE, "idle"), (DMASR_INTERR, "DMAIntErr"),
             (DMASR_SLVERR, "DMASlvErr"), (DMASR_DECERR, "DMADecErr"), (DMASR_IOC_IRQ, "IOC"),
             (DMASR_ERR_IRQ, "ErrIrq")]
    return "|".join(n for bit, n in names if sr & bit) or "running, busy"


# --------------------------------------------------------------------------- board

class PynqTransport:
    """The board: pynq.MMIO on the SIA and AXI DMA windows, pynq.allocate buffers."""

    def __init__(self, overlay, sia_name: str | None = None, dma_name: str | None = None):
        import pynq  # only on the board
        self._pynq = pynq
        ips = overlay.ip_dict
        sia_name = sia_name or _find_ip(ips, "sia")
        dma_name = dma_name or _find_ip(ips, "axi_dma")
        self.sia = pynq.MMIO(ips[sia_name]["phys_addr"], ips[sia_name]["addr_range"])
        self.dma = pynq.MMIO(ips[dma_name]["phys_addr"], ips[dma_name]["addr_range"])
        params = ips[dma_name].get("parameters", {})
        # the .hwh carries the IP options: the length width decides the largest transfer
        self.length_width = int(params.get("c_sg_length_width", DEFAULT_LENGTH_WIDTH))
        self.sg = str(params.get("c_include_sg", "0")) == "1"
        if self.sg:
            raise SiaError(f"{dma_name} was built with scatter-gather; sia uses direct register "
                           f"mode (rebuild with `sia deploy vivado`, c_include_sg = 0)")

    def allocate(self, nbytes: int):
        return self._pynq.allocate(shape=(int(nbytes),), dtype=np.uint8)

    def sia_read(self, off: int) -> int:
        return int(self.sia.read(off))

    def sia_write(self, off: int, value: int):
        self.sia.write(off, int(value) & 0xFFFFFFFF)

    def dma_read(self, off: int) -> int:
        return int(self.dma.read(off))

    def dma_write(self, off: int, value: int):
        self.dma.write(off, int(value) & 0xFFFFFFFF)

    def sleep(self, seconds: float):
        import time
        time.sleep(seconds)


def _find_ip(ips: dict, prefix: str) -> str:
    names = [n for n in ips if n.startswith(prefix)]
    if len(names) != 1:
        raise SiaError(f"overlay has {len(names)} IPs named {prefix}*: {sorted(ips)}; "
                       f"name the one to use")
    return names[0]


# --------------------------------------------------------------------------- twin

class TwinBuffer(np.ndarray):
    """A contiguous uint8 DMA buffer: the array is the CPU's (cached) view; `ddr` is what
    the DMA sees. flush() writes the CPU view back, invalidate() re-reads DDR."""

    def __new__(cls, nbytes: int, physical_address: int):
        obj = np.zeros(int(nbytes), dtype=np.uint8).view(cls)
        obj.physical_address = int(physical_address)
        obj.ddr = np.zeros(int(nbytes), dtype=np.uint8)
        obj.freed = False
        return obj

    def __array_finalize__(self, obj):
        pass

    def flush(self):
        self.ddr[:] = np.asarray(self)

    def invalidate(self):
        np.asarray(self)[:] = self.ddr

    def freebuffer(self):
        self.freed = True


class _Channel:
    def __init__(self, name):
        self.name = name
        self.reset()

    def reset(self):
        self.cr = 0
        self.sr = DMASR_HALTED
        self.addr = 0
        self.length = 0
        self.busy = False
        self.done_bytes = 0
        self.got = bytearray()

    @property
    def running(self):
        return bool(self.cr & DMACR_RS) and not (self.sr & DMASR_HALTED)


class TwinTransport:
    """Register file + AXI DMA engine + DDR model, forwarding the streams to `device`.

    device interface (see sia.deploy.twin_device):
        reg_read(off) -> int, reg_write(off, value)
        ready_in() -> bool                        TREADY of the input stream
        stream_in(data: bytes, last: bool)        MM2S beats of one transfer
        expects_output() -> bool                  a launch is running (S2MM must be armed)
        output_pending() -> bool                  the launch has output to send
        stream_out(max_bytes) -> (bytes, last)    take output bytes (last = TLAST)
        step()                                    advance (one poll = some progress)
    """

    def __init__(self, device, length_width: int = 26, stream_bits: int = 64,
                 base: int = 0x1000_0000, drop_tlast: bool = False):
        if not 8 <= length_width <= 26:
            raise SiaError(f"AXI DMA length width {length_width} outside 8..26")
        self.device = device
        self.length_width = length_width
        self.stream_bytes = stream_bits // 8
        self.mm2s, self.s2mm = _Channel("MM2S"), _Channel("S2MM")
        self._next = base
        self._buffers: list[TwinBuffer] = []
        self.violations: list[str] = []
        self.log: list[tuple] = []         # register accesses, for sequence tests
        self.drop_tlast = drop_tlast       # fault injection: the device 'forgets' TLAST
        self.stalled = False
        self.sg = False

    # -- memory
    def allocate(self, nbytes: int) -> TwinBuffer:
        nbytes = int(nbytes)
        if nbytes <= 0:
            raise SiaError("cannot allocate an empty DMA buffer")
        buf = TwinBuffer(nbytes, self._next)
        self._next += (nbytes + 0xFFF) & ~0xFFF
        self._buffers.append(buf)
        return buf

    def _find(self, addr: int, n: int) -> tuple[TwinBuffer, int]:
        for b in self._buffers:
            if not b.freed and b.physical_address <= addr and addr + n <= b.physical_address + b.size:
                return b, addr - b.physical_address
        self.violations.append(f"DMA access to unmapped DDR 0x{addr:08X}+{n}")
        return None, 0

    # -- SIA registers
    def sia_read(self, off: int) -> int:
        self._progress()
        v = int(self.device.reg_read(off)) & 0xFFFFFFFF
        self.log.append(("sia_rd", off, v))
        return v

    def sia_write(self, off: int, value: int):
        self.log.append(("sia_wr", off, int(value) & 0xFFFFFFFF))
        self.device.reg_write(off, int(value) & 0xFFFFFFFF)
        self._progress()

    # -- AXI DMA registers
    def dma_read(self, off: int) -> int:
        self._progress()
        ch, reg = self._chan(off)
        if reg == 0x00:
            v = ch.cr
        elif reg == 0x04:
            v = ch.sr
        elif reg in (0x18, 0x48 - 0x30):
            v = ch.addr & 0xFFFFFFFF
        elif reg in (0x1C, 0x4C - 0x30):
            v = 0
        elif reg == 0x28:
            # S2MM LENGTH reads back the bytes actually received once the transfer is done
            v = ch.done_bytes if (ch is self.s2mm and not ch.busy) else ch.length
        else:
            v = 0
        self.log.append(("dma_rd", off, v))
        return v

    def dma_write(self, off: int, value: int):
        value = int(value) & 0xFFFFFFFF
        self.log.append(("dma_wr", off, value))
        ch, reg = self._chan(off)
        if reg == 0x00:
            if value & DMACR_RESET:   # soft reset resets the whole engine, both channels
                if self.mm2s.busy or self.s2mm.busy:
                    self.violations.append("soft reset while a transfer was in flight")
                self.mm2s.reset()
                self.s2mm.reset()
                return
            ch.cr = value
            if value & DMACR_RS:
                ch.sr &= ~DMASR_HALTED
            else:
                ch.sr |= DMASR_HALTED
        elif reg == 0x04:
            ch.sr &= ~(value & (DMASR_IOC_IRQ | DMASR_ERR_IRQ))   # write 1 to clear
        elif reg in (0x18, 0x48 - 0x30):
            ch.addr = value
        elif reg == 0x28:
            self._start(ch, value)
        self._progress()

    def _chan(self, off: int):
        return (self.mm2s, off) if off < 0x30 else (self.s2mm, off - 0x30)

    def _start(self, ch: _Channel, value: int):
        mask = dma_max_bytes(self.length_width)
        if value > mask:
            # the hardware keeps the low bits only: the transfer is silently shorter
            self.violations.append(
                f"{ch.name} LENGTH {value} exceeds the {self.length_width}-bit buffer length "
                f"register; the hardware transfers {value & mask} bytes")
        length = value & mask
        if not ch.running:
            self.violations.append(f"{ch.name} LENGTH written while the channel is halted (RS=0); ignored")
            return
        if ch.busy:
            self.violations.append(f"{ch.name} LENGTH written while a transfer is in flight; ignored")
            return
        if length == 0:
            return
        ch.length, ch.busy, ch.done_bytes, ch.got = length, True, 0, bytearray()
        ch.sr &= ~DMASR_IDLE
        if ch is self.mm2s:
            if not self.s2mm.busy and self.device.expects_output():
                self.violations.append("MM2S started before an S2MM receive was armed: the "
                                       "accelerator's output backs up and the launch stalls")
                self.stalled = True
            buf, o = self._find(ch.addr, length)
            if buf is None:
                self._error(ch, DMASR_DECERR)
                return
            ch.got = bytearray(buf.ddr[o:o + length].tobytes())   # what the DMA read from DDR

    def _error(self, ch: _Channel, bit: int):
        ch.busy = False
        ch.sr |= bit | DMASR_HALTED | DMASR_ERR_IRQ
        ch.sr &= ~DMASR_IDLE

    def _progress(self):
        """One bus access = some progress: the device runs, S2MM drains its output."""
        if self.stalled:
            return
        mm = self.mm2s
        if mm.busy and mm.running and self.device.ready_in():
            # the device takes the whole transfer; TLAST on its last beat
            self.device.stream_in(bytes(mm.got), True)
            mm.busy, mm.done_bytes = False, mm.length
            mm.sr |= DMASR_IDLE | DMASR_IOC_IRQ
        self.device.step()
        ch = self.s2mm
        if not (ch.busy and ch.running):
            return
        while self.device.output_pending():
            room = ch.length - len(ch.got)
            data, last = self.device.stream_out(max(room, 0) + self.stream_bytes)
            if self.drop_tlast:
                last = False
            ch.got += data
            if len(ch.got) > ch.length:
                # packet longer than the armed buffer: DMAIntErr, channel halts
                self.violations.append(f"S2MM packet longer than the armed {ch.length} bytes")
                self._error(ch, DMASR_INTERR)
                return
            if last:
                buf, o = self._find(ch.addr, len(ch.got))
                if buf is None:
                    self._error(ch, DMASR_DECERR)
                    return
                buf.ddr[o:o + len(ch.got)] = np.frombuffer(bytes(ch.got), dtype=np.uint8)
                ch.busy = False
                ch.done_bytes = len(ch.got)
                ch.sr |= DMASR_IDLE | DMASR_IOC_IRQ
                return
            if not data:
                return

    def sleep(self, seconds: float):
        self._progress()

"""Model zoo: trained SNN programs shipped with sia (integer weights + manifest).

`sia/zoo/index.json` lists each entry: file, sha256, accuracy per T (golden
simulator), the FP32 twin's accuracy, data copy, epochs, command, commit and its
neurons (signed ones run on SIA builds with signed_count_bits > 0 only).
Loading an entry verifies its checksum first.
"""

import hashlib
import json
from pathlib import Path

from sia import SiaError
from sia.program.io import load_program

ZOO_DIR = Path(__file__).parent
INDEX = ZOO_DIR / "index.json"


def index() -> dict:
    return json.loads(INDEX.read_text()) if INDEX.is_file() else {}


def gap_points(snn_acc: float, fp32_acc: float) -> float:
    """SNN - FP32 twin in percentage points, to the 2 decimals every report prints (accuracies
    on 10,000 images are exact there; the rounding also drops float noise such as -0.5000000004)."""
    return round(100 * (snn_acc - fp32_acc), 2)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def neurons(program) -> str:
    """The manifest's `neurons`: "signed" when any layer has signed IF neurons (they run
    on SIA builds with signed_count_bits > 0 only), else "unsigned"."""
    return "signed" if program.signed else "unsigned"


def entry_path(name: str) -> Path:
    entries = index()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise SiaError(f"{name!r} is neither a program file nor a zoo entry (zoo: {known})")
    path = ZOO_DIR / entries[name]["file"]
    if not path.is_file():
        raise SiaError(f"zoo entry {name}: file {path.name} is missing")
    if sha256(path) != entries[name]["sha256"]:
        raise SiaError(f"zoo entry {name}: checksum mismatch, {path.name} is corrupt or modified")
    return path


def load_zoo_program(name: str):
    return load_program(entry_path(name))


def add_entry(name: str, program_file: Path, info: dict, xz: bool = False) -> Path:
    """Copy a program into the zoo and record it (used by benchmarks/make_zoo.py); with
    `xz` it is stored compressed (sia.program.io: same program, ~3x smaller file)."""
    import shutil

    from sia.program.io import save_program
    dest = ZOO_DIR / f"{name}.safetensors{'.xz' if xz else ''}"
    if xz:
        save_program(load_program(program_file), dest)
    else:
        shutil.copyfile(program_file, dest)
    entries = index()
    entries[name] = {"file": dest.name, "sha256": sha256(dest), **info}
    tmp = INDEX.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    tmp.replace(INDEX)
    return dest

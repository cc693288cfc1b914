"""Outputs written all or nothing: a command that writes several files into --out
either leaves all of them or none (and no directory it created)."""

from pathlib import Path

from sia import SiaError


def check_out_dir(out_dir, names) -> Path:
    """Refuse (one line, before any work) an --out that cannot take files `names`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SiaError(f"--out {out} exists and is not a directory")
    for name in names:
        if (out / name).is_dir():
            raise SiaError(f"--out {out}: {out / name} is a directory")
    return out


def write_outputs(out_dir, writers: dict) -> list[Path]:
    """Writes OUT/name for each name -> writer(path) of `writers`: all into a temporary
    directory inside OUT first, then moved into place; on any failure nothing this call
    wrote is left (nor OUT, when this call created it) and an OSError is a SiaError."""
    import os
    import shutil
    import tempfile
    out = check_out_dir(out_dir, writers)
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    placed, tmpd = [], None
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmpd = Path(tempfile.mkdtemp(prefix=".sia-write.", dir=out))
        for name, writer in writers.items():
            writer(tmpd / name)
        for name in writers:
            existed = (out / name).exists()
            os.replace(tmpd / name, out / name)
            if not existed:
                placed.append(out / name)
    except BaseException as e:
        for p in placed:
            p.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(e, OSError):
            what = f"{out / next(iter(writers))}" if len(writers) == 1 else f"into {out}"
            raise SiaError(f"cannot write {what}: {e.strerror or e}") from None
        raise
    finally:
        if tmpd is not None:
            shutil.rmtree(tmpd, ignore_errors=True)
    return [out / name for name in writers]

"""Get the working tree ready for one `device` call of gpu_reproduce.py, and back.

A lease gives one try, and its tool sends the working tree (tracked files plus
untracked ones git does not ignore, plus the paths named in `carry`) only when all of
it fits 64 MiB. The CIFAR-10 copy goes as its 55 MB pack, so the zoo's program files
and docs/ stay behind for the call:

  python benchmarks/gpu_lease.py prepare [--data-dir D] [--program vgg11=FILE ...]
      copies the pack, unpack.py and SHA256SUMS (and the programs a --programs call
      fine-tunes) into .gpudata/, takes sia/zoo/*.safetensors* and docs/ out of the
      index, ignores them and .gpudata/ in .git/info/exclude, counts what would travel
      and undoes it all if that is over the limit; prints the call's `carry` and command.
  python benchmarks/gpu_lease.py command [-- gpu_reproduce arguments]
      the command alone (unpack, check every batch file's SHA256, run gpu_reproduce.py
      with SIA_COMMIT set: the copy there has no .git).
  python benchmarks/gpu_lease.py restore
      puts the index and .git/info/exclude back; .gpudata/ stays, ignored by nothing,
      so `git status` shows it until you delete it.

Commit nothing between prepare and restore: the index then lacks the zoo and docs/.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 64 << 20            # bytes the device tool sends (.library/device/README.md)
CARRY = ".gpudata"
LEFT_BEHIND = ("sia/zoo/*.safetensors*", "docs")
MARK = "# gpu_lease.py (restore removes these lines)"
DATA_FILES = ("cifar10-jpeg75.pack", "unpack.py", "SHA256SUMS")
# the planned call (docs/results/6-full-width-gpu.md): session 19's, plus --signed
PLANNED = ["--budget", "520", "--grace", "20", "--finetune-s", "250", "--signed"]


def _git(repo: Path, *args) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"git {' '.join(args)}: {r.stderr.strip().splitlines()[-1]}")
    return r.stdout


def travelling_bytes(repo: Path, carry=(CARRY,)) -> int:
    """What the device tool would send: tracked files, untracked ones git does not
    ignore, and the carried paths (each file once)."""
    names = set(filter(None, _git(repo, "ls-files", "-z", "--cached", "--others",
                                  "--exclude-standard").split("\0")))
    files = {repo / n for n in names}
    for c in carry:
        p = repo / c
        files |= set(p.rglob("*")) if p.is_dir() else {p} if p.exists() else set()
    return sum(f.stat().st_size for f in files if f.is_file() and not f.is_symlink())


def _exclude(repo: Path) -> Path:
    p = Path(_git(repo, "rev-parse", "--git-path", "info/exclude").strip())
    return p if p.is_absolute() else repo / p


def restore(repo: Path) -> None:
    ex = _exclude(repo)
    if ex.is_file():
        lines = ex.read_text().splitlines()
        if MARK in lines:
            ex.write_text("\n".join(lines[:lines.index(MARK)]) + "\n")
    _git(repo, "reset", "-q", "--", *LEFT_BEHIND)   # a pathspec that matches nothing is fine


def prepare(repo: Path, data_dir: Path, programs: dict, limit: int = LIMIT) -> int:
    """Returns the bytes that will travel; raises SystemExit (and leaves the tree as it
    was, bar .gpudata/) when they do not fit or the data are missing."""
    missing = [f for f in DATA_FILES if not (data_dir / f).is_file()]
    if missing:
        raise SystemExit(f"--data-dir {data_dir}: no {missing[0]} (the CIFAR-10 pack's folder)")
    for arch, f in programs.items():
        if not Path(f).is_file():
            raise SystemExit(f"--program {arch}={f}: no such file")
    ex = _exclude(repo)
    if ex.is_file() and MARK in ex.read_text().splitlines():
        raise SystemExit("already prepared: run `gpu_lease.py restore` first")
    if _git(repo, "status", "--porcelain", "--untracked-files=no").strip():
        raise SystemExit("the tree has uncommitted changes: commit them first (the call "
                         "sends the working tree; its results name HEAD's commit)")
    dst = repo / CARRY
    dst.mkdir(exist_ok=True)
    for f in DATA_FILES:
        shutil.copyfile(data_dir / f, dst / f)
    for f in programs.values():
        shutil.copyfile(f, dst / Path(f).name)
    ex.parent.mkdir(parents=True, exist_ok=True)
    old = ex.read_text() if ex.is_file() else ""
    ex.write_text(old + ("" if old.endswith("\n") or not old else "\n")
                  + "\n".join([MARK, f"/{CARRY}/", *(f"/{p}" for p in LEFT_BEHIND)]) + "\n")
    _git(repo, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *LEFT_BEHIND)
    size = travelling_bytes(repo)
    if size > limit:
        restore(repo)
        raise SystemExit(f"{size / 2**20:.1f} MiB would travel, over the {limit / 2**20:.0f} MiB "
                         "limit: leave more behind (LEFT_BEHIND) or carry less")
    return size


def command(repo: Path, args: list[str], programs: dict) -> str:
    """The device command: unpack, check the batch files, run the pipeline."""
    commit = _git(repo, "rev-parse", "--short", "HEAD").strip()
    if programs:
        args = [*args, "--programs",
                ",".join(f"{a}={CARRY}/{Path(f).name}" for a, f in programs.items())]
    return (f"python3 {CARRY}/unpack.py {CARRY}/cifar10-jpeg75.pack /tmp/c10 && "
            f"(cd /tmp/c10 && grep batches-bin \"$OLDPWD/{CARRY}/SHA256SUMS\" | sha256sum -c --quiet) && "
            f"SIA_COMMIT={commit} PYTHONUNBUFFERED=1 python3 benchmarks/gpu_reproduce.py "
            f"--data-dir /tmp/c10 --out $OUT {shlex.join(args)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("prepare", "command", "restore"))
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--data-dir", default=os.environ.get(
        "SIA_CIFAR10_DIR", str(Path(__file__).resolve().parent.parent.parent
                               / "shared" / "datasets" / "cifar10-jpeg75")))
    ap.add_argument("--program", action="append", default=[], metavar="ARCH=FILE",
                    help="a program to fine-tune again (gpu_reproduce --programs)")
    ap.add_argument("--limit-mib", type=float, default=LIMIT / 2**20)
    ap.epilog = (f"gpu_reproduce.py arguments go after `--` (default: the planned call, "
                 f"{' '.join(PLANNED)})")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a, rest = ap.parse_args(argv[:cut]), argv[cut + 1:]
    repo = Path(a.repo)
    bad = [p for p in a.program if "=" not in p]
    if bad:
        raise SystemExit(f"--program {bad[0]!r}: expected ARCH=FILE")
    programs = dict(p.split("=", 1) for p in a.program)
    rest = rest or PLANNED
    if a.action == "restore":
        restore(repo)
        print("index and .git/info/exclude restored")
        return
    if a.action == "prepare":
        size = prepare(repo, Path(a.data_dir), programs, int(a.limit_mib * 2**20))
        print(f"{size / 2**20:.1f} MiB will travel (limit {a.limit_mib:.0f} MiB); "
              f"run with carry [\"{CARRY}\"], then `gpu_lease.py restore`")
    print(command(repo, rest, programs))


if __name__ == "__main__":
    sys.exit(main())

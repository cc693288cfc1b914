"""benchmarks/gpu_lease.py on a small git repository: what travels is counted as the
device tool counts it, prepare refuses what would not fit and leaves the index as it
was, restore undoes prepare."""

import subprocess

import pytest

from benchmark_common import load_benchmark


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t",
                           *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "repo"
    files = {"sia/zoo/index.json": 30, "sia/zoo/big.safetensors.xz": 5000, "docs/r.md": 2000,
             "benchmarks/b.py": 100, "sia/x.py": 70}
    for name, n in files.items():
        (r / name).parent.mkdir(parents=True, exist_ok=True)
        (r / name).write_bytes(b"x" * n)
    _git(tmp_path, "init", "-q", str(r))
    _git(r, "add", "-A")
    _git(r, "commit", "-qm", "init")
    (r / "notes.txt").write_bytes(b"y" * 9)         # untracked, not ignored: travels
    data = tmp_path / "data"
    data.mkdir()
    for f, n in (("cifar10-jpeg75.pack", 400), ("unpack.py", 40), ("SHA256SUMS", 20)):
        (data / f).write_bytes(b"z" * n)
    return r, data


def _clean(r):
    return not _git(r, "status", "--porcelain", "--untracked-files=no").strip()


def test_prepare_counts_what_travels_and_restore_undoes_it(repo, tmp_path):
    gl = load_benchmark("gpu_lease")
    r, data = repo
    assert gl.travelling_bytes(r) == 30 + 5000 + 2000 + 100 + 70 + 9
    prog = tmp_path / "vgg11_p.safetensors.xz"
    prog.write_bytes(b"p" * 55)
    size = gl.prepare(r, data, {"vgg11": str(prog)})
    # the zoo's program files and docs/ stay behind; the data and the program travel
    assert size == 30 + 100 + 70 + 9 + 400 + 40 + 20 + 55
    assert "sia/zoo/big.safetensors.xz" not in _git(r, "ls-files")
    with pytest.raises(SystemExit, match="already prepared"):
        gl.prepare(r, data, {})
    cmd = gl.command(r, ["--budget", "10"], {"vgg11": str(prog)})
    head = _git(r, "rev-parse", "--short", "HEAD").strip()
    assert f"SIA_COMMIT={head} " in cmd and "--out $OUT --budget 10" in cmd
    assert cmd.endswith("--programs vgg11=.gpudata/vgg11_p.safetensors.xz")
    assert "sha256sum -c" in cmd
    gl.restore(r)
    assert _clean(r) and gl.MARK not in gl._exclude(r).read_text()
    assert gl.travelling_bytes(r, carry=()) == 30 + 5000 + 2000 + 100 + 70 + 9 + 460 + 55


def test_prepare_refuses_and_changes_nothing(repo):
    gl = load_benchmark("gpu_lease")
    r, data = repo
    with pytest.raises(SystemExit, match="over the"):
        gl.prepare(r, data, {}, limit=500)
    assert _clean(r) and gl.MARK not in gl._exclude(r).read_text()
    with pytest.raises(SystemExit, match="no cifar10-jpeg75.pack"):
        gl.prepare(r, r / "nowhere", {})
    with pytest.raises(SystemExit, match="no such file"):
        gl.prepare(r, data, {"vgg11": str(r / "none.safetensors")})
    (r / "sia/x.py").write_text("changed")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        gl.prepare(r, data, {})
    assert "sia/zoo/big.safetensors.xz" in _git(r, "ls-files")


def test_command_line(repo):
    """Options before `--`, gpu_reproduce's arguments after it; a bad --program is one line."""
    import sys
    from pathlib import Path

    r, data = repo
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_lease.py"
    run = [sys.executable, str(script), "command", "--repo", str(r)]
    out = subprocess.run([*run, "--data-dir", str(data), "--", "--budget", "10", "--signed"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("--out $OUT --budget 10 --signed")
    planned = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert planned.strip().endswith("--finetune-s 250 --signed")
    bad = subprocess.run([*run, "--program", "vgg11"], capture_output=True, text=True)
    assert bad.returncode and "expected ARCH=FILE" in bad.stderr and "Traceback" not in bad.stderr

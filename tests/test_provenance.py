"""The provenance every benchmark JSON records."""

import re
import subprocess

from sia import provenance


def test_commit_is_this_checkouts_head():
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=provenance.ROOT).stdout.strip() or None
    assert provenance.git_commit() == head
    assert head is None or re.fullmatch(r"[0-9a-f]{7,40}", head)


def test_cpu_model_is_named():
    assert provenance.cpu_model().strip()

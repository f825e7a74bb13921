"""The data vendored under tests/data are the files their READMEs describe, byte for byte."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
FOLDERS = sorted(p for p in DATA.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_vendored_file_has_the_digest_its_readme_states(folder: Path) -> None:
    readme = (folder / "README.md").read_text(encoding="utf-8")
    stated = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", readme, flags=re.M))
    files = {p.name for p in folder.iterdir() if p.is_file() and p.name != "README.md"}
    assert files == set(stated), f"{folder.name}: files {sorted(files)} but README lists {sorted(stated)}"
    for name, digest in stated.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{folder.name}/{name}"

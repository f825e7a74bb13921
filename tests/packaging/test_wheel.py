"""The package as a library user gets it: ``python -m build`` makes a wheel that installs into a
fresh virtual environment and runs ``oncorwe run`` there, all offline.

The build runs without isolation (its backend, setuptools, comes with the test extras, so nothing is
downloaded); the venv sees the dependencies already installed where the tests run and pip installs
only the wheel (``--no-deps --no-index``). ``--system-site-packages`` alone would not do: when the
tests themselves run in a virtual environment (as a new user's do), it shows the base interpreter's
packages, not that environment's, so the new venv adds the running interpreter's site directories
after its own. The wheel is built from a copy of the source tree, so the checkout gains no build
folders.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
#: What the source copy leaves out: caches, earlier builds, run outputs, and what no wheel holds.
NOT_BUILT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
                                   ".hypothesis", ".benchmarks", "oncorwe-report", "oncorwe-work",
                                   "tests", "benchmarks")


def _env() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout's sources."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(args: list[str | Path], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_BUILT)
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", work / "dist"], cwd=source)
    (built,) = (work / "dist").glob("*.whl")
    return built


def test_the_wheel_holds_the_package_its_data_and_its_type_marker(wheel: Path) -> None:
    assert wheel.name == f"oncorwe-{VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("oncorwe/py.typed", "oncorwe/protocol/studies/goldinger2022.toml",
                     "oncorwe/harmonise/vocab/omop_concepts.csv", f"oncorwe-{VERSION}.dist-info/licenses/LICENSE"):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_the_wheel_installs_offline_and_runs_the_flagship_study(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    (own_site,) = (venv / "lib").glob("python3*/site-packages")
    # after the venv's own site-packages, so the wheel's oncorwe comes before any other install of it
    outer = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    (own_site / "_tests_dependencies.pth").write_text(
        "".join(f"import site; site.addsitedir({d!r})\n" for d in outer if Path(d).is_dir()), encoding="utf-8"
    )
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--disable-pip-version-check",
          wheel], cwd=tmp_path)
    where = _run([python, "-c", "import oncorwe; print(oncorwe.__file__); print(oncorwe.__version__)"],
                 cwd=tmp_path).stdout.split()
    assert Path(where[0]).is_relative_to(venv), f"oncorwe imported from {where[0]}, not the wheel"
    assert where[1] == VERSION
    assert _run([venv / "bin" / "oncorwe", "--version"], cwd=tmp_path).stdout.strip() == f"oncorwe {VERSION}"

    study = tmp_path / "user"
    study.mkdir()
    _run([venv / "bin" / "oncorwe", "run", "--quiet"], cwd=study, timeout=1200)
    report = study / "oncorwe-report"
    assert (report / "report.html").is_file()
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["versions"]["oncorwe"] == VERSION
    assert f"oncorwe {VERSION}" in (report / "report.html").read_text(encoding="utf-8")

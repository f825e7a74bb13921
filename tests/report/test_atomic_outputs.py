"""Report outputs written atomically: the new folder is swapped in with no moment without a report,
a killed run's temporary folders are removed by the next run, and an unusable ``--out`` (an existing
file, an unwritable or impossible parent) ends as exit 2 with one clear line, before data are read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import oncorwe.report as report
from cli_runner import oncorwe
from oncorwe.errors import InputError


def _write_new(folder: Path) -> None:
    (folder / "report.html").write_text("new", encoding="utf-8")


def test_an_existing_report_is_never_renamed_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report"
    target.mkdir()
    (target / "report.html").write_text("old", encoding="utf-8")
    real_rename = Path.rename

    def rename(self: Path, destination: str | Path) -> Path:
        assert self != target, "the old report was moved away: a moment without a report"
        return real_rename(self, destination)

    monkeypatch.setattr(Path, "rename", rename)
    report.write_atomically(target, _write_new)
    assert (target / "report.html").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_killed_run_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "report"
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import oncorwe.report as report

        def slow(folder):
            (folder / "half.csv").write_text("a,b\\n", encoding="utf-8")
            Path({str(ready)!r}).write_text("", encoding="utf-8")
            time.sleep(60)

        report.write_atomically(Path({str(target)!r}), slow)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.tmp-")]
    assert len(left) == 1  # what a kill -9 leaves
    report.write_atomically(target, _write_new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready", "report"]


def test_a_live_run_keeps_its_temporary_folder(tmp_path: Path) -> None:
    target = tmp_path / "report"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".report.tmp-{other.pid}-abc"
        live.mkdir()
        legacy = tmp_path / ".report.tmp-x1y2z3"  # no process id: written by an older oncorwe
        legacy.mkdir()
        report.write_atomically(target, _write_new)
        assert live.is_dir() and not legacy.exists()
    finally:
        other.kill()
        other.wait()


def test_an_existing_file_is_not_a_report_folder(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(InputError, match="existing file"):
        report.write_atomically(target, _write_new)
    assert target.read_text(encoding="utf-8") == "keep me"


def _run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, out: Path) -> int:
    # --data points nowhere: an unusable --out must be found before any data are read
    return oncorwe(monkeypatch, "run", "--protocol", "goldinger2022", "--data", str(tmp_path / "no-study"),
                   "--out", str(out), "--quiet")


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_cli_existing_file_as_out_exits_2_and_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.csv"
    out.write_text("precious", encoding="utf-8")
    assert _run_cli(monkeypatch, tmp_path, out) == 2
    line = _one_line(capsys)
    assert str(out) in line and "existing file" in line
    assert out.read_text(encoding="utf-8") == "precious"


def test_cli_out_below_a_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    assert _run_cli(monkeypatch, tmp_path, tmp_path / "a-file" / "report") == 2
    assert "cannot create its parent folder" in _one_line(capsys)


def test_cli_read_only_parent_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    real_access = os.access

    def access(path: str | os.PathLike[str], mode: int, **kwargs: object) -> bool:
        # root writes anywhere: answer as the file system does for an ordinary user
        if Path(path) == parent and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    try:
        assert _run_cli(monkeypatch, tmp_path, parent / "report") == 2
        line = _one_line(capsys)
        assert str(parent) in line and "cannot write into" in line
    finally:
        parent.chmod(0o755)
    assert list(parent.iterdir()) == []


def test_an_unwritable_parent_found_late_is_exit_2_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report.tempfile, "mkdtemp", denied)
    with pytest.raises(InputError, match="cannot write into"):
        report.write_atomically(tmp_path / "report", _write_new)

"""The hostile ``centres.toml`` files issue 13 found (tracebacks and unclear outcomes), kept as
regression cases: each is refused by name with oncorwe's InputError, exit 2 and one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import oncorwe
from oncorwe.errors import InputError
from oncorwe.sources import load_study_config

FILES = 'files = ["p.csv"]\n'
HOSTILE = {
    "5,000-deep array": ("x = " + "[" * 5000 + "]" * 5000 + "\n[centres.xx-one]\n" + FILES,
                         "tables or arrays nested deeper than 16 levels"),
    "3,000-deep inline table": ("x = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n[centres.xx-one]\n" + FILES,
                                "tables or arrays nested deeper than 16 levels"),
    "a list where a string is expected": ('[centres.xx-one]\ncountry = ["CH"]\n' + FILES,
                                          "centre xx-one: key country: Input should be a valid string"),
    "a list as centre id": ('[[centre]]\nid = ["a"]\n' + FILES, "key id: Input should be a valid string"),
    "a 10 MB centre id": ('[[centre]]\nid = "' + "a" * 10_000_000 + '"\n' + FILES,
                          "a centre id is 1 to 64 characters"),
    "a NUL in the centre id": ('[[centre]]\nid = "a\\u0000b"\n' + FILES, "centre a\\x00b: key id"),
    "a newline in the centre id": ('[[centre]]\nid = "a\\nb"\n' + FILES, "centre a\\nb: key id"),
    "a centre id that climbs out": ('[[centre]]\nid = ".."\n' + FILES, "not '.' or '..'"),
    "a NUL in a file path": ('[centres.xx-one]\nfiles = ["p\\u0000.csv"]\n',
                             "key files.0.path: Value error, a file path cannot hold a NUL character"),
    "a number as a file": ("[centres.xx-one]\nfiles = {patients = 3}\n", "key files.0.path"),
    "a centre that is a number": ("[centres]\nxx-one = 3\n", "centre entry 1: expected a table"),
    "centres that are numbers": ("centre = [1, 2]\n", "centre entry 2: expected a table"),
    "not UTF-8": (b"[centres.xx-one]\ncountry = \"Z\xfcrich\"\n" + FILES.encode(), "not valid TOML"),
    "a data cut that is no date": ('data_cut = 2019\n[centres.xx-one]\n' + FILES, "key data_cut"),
}


def _study(root: Path, text: str | bytes) -> Path:
    (root / "xx-one").mkdir(parents=True)
    (root / "xx-one" / "p.csv").write_text("patient_id,sex\n1,m\n", encoding="utf-8")
    data = text.encode("utf-8") if isinstance(text, str) else text
    (root / "centres.toml").write_bytes(data)
    return root


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_centres_toml_is_refused_naming_what_is_wrong(tmp_path: Path, case: str) -> None:
    text, expected = HOSTILE[case]
    with pytest.raises(InputError) as caught:
        load_study_config(_study(tmp_path / "s", text))
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 2000  # never the 10 MB value echoed back


@pytest.mark.parametrize("case", ["5,000-deep array", "a 10 MB centre id", "a NUL in the centre id"])
def test_validate_exits_2_with_one_line_per_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    study = _study(tmp_path / "s", HOSTILE[case][0])
    assert oncorwe(monkeypatch, "validate", str(study), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and HOSTILE[case][1] in err

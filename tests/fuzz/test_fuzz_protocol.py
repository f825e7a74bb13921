"""Fuzzing the protocol loader with mutations of the flagship protocol (issue 13): a protocol file
is either a valid protocol or a ProtocolError naming what is wrong, never another exception."""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

from fuzz_inputs import CASES, fuzz_settings, mutated
from hypothesis import given

from oncorwe import protocol
from oncorwe.errors import OncorweError

STUDIES = resources.files("oncorwe.protocol").joinpath("studies")
FLAGSHIP = STUDIES.joinpath("goldinger2022.toml").read_bytes()


@fuzz_settings(100)
@given(data=mutated(FLAGSHIP))
def test_a_mutated_protocol_loads_or_is_refused_with_a_protocol_error(data: bytes) -> None:
    CASES["protocol"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with resources.as_file(STUDIES.joinpath("goldinger2022_published.toml")) as published:
            shutil.copy(published, folder / "goldinger2022_published.toml")
        path = folder / "goldinger2022.toml"
        path.write_bytes(data)
        try:
            protocol.load(path)
        except OncorweError:
            return

"""The fuzz suite's shared pieces: a small valid centre, byte mutations, the case count.

How many cases each property tries is ``ONCORWE_FUZZ_EXAMPLES`` (default: a bounded number, so that
the suite runs in CI in well under a minute). The full run the issue asks for (>= 10^4 cases):

    ONCORWE_FUZZ_EXAMPLES=2000 ONCORWE_FUZZ_OUTPUT_SETS=500 PYTHONPATH=src python -m pytest tests/fuzz -p no:xdist -q

(the outputs property, a whole analysis per case, has its own count; see SECURITY.md). It prints the number of cases tried per property. The cases are derandomised (the same cases on
every run for a given count), so a failure in CI is a failure on every machine.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: cases per property; the CI default keeps the suite < 60 s on a shared 2-core machine
EXAMPLES = int(os.environ.get("ONCORWE_FUZZ_EXAMPLES", "0")) or None
#: analysis sets of the outputs property (each a whole analysis and four audits, a few seconds):
#: ``ONCORWE_FUZZ_OUTPUT_SETS``, else ``ONCORWE_FUZZ_EXAMPLES``
OUTPUT_SETS = int(os.environ.get("ONCORWE_FUZZ_OUTPUT_SETS", "0")) or None
CASES: Counter[str] = Counter()


def fuzz_settings(ci_examples: int, examples: int | None = None) -> Any:
    """Hypothesis settings for one property: ``examples`` cases, else ``ONCORWE_FUZZ_EXAMPLES``, else
    ``ci_examples``."""
    return settings(
        max_examples=examples or EXAMPLES or ci_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


PATIENTS = (
    b"patient_id,sex,birth_year,diagnosis_date,stage,ecog,ldh,ldh_uln\r\n"
    b"P1,m,1950,2012-05-06,IV,1,200,250\r\n"
    b'P2,f,1962,2013-01-02,"IV M1c",0,,\r\n'
    b"P3,w,1971,2014-07-08,III,2,310,250\r\n"
)
TREATMENTS = (
    b"patient_id;drug;start_date;end_date;reason_stopped\n"
    b"P1;ipilimumab+nivolumab;2014-01-02;2014-03-04;toxicity\n"
    b"P2;pembrolizumab;2014-02-01;;\n"
    b'P3;"dabrafenib, trametinib";2015-03-01;2015-09-01;progression\n'
)
CENTRES_TOML = (
    b'[centres.xx-fuzz]\ncountry = "CH"\nfiles = ["patients.csv", "treatments.csv"]\n\n'
    b'[centres.xx-fuzz.overrides]\ndate_order = "YMD"\nmissing = ["n.a."]\n'
)

#: bytes that break readers: quotes, line ends, delimiters, NUL, BOMs, invalid UTF-8, formulas,
#: implausible dates, long runs
TOKENS = [b'"', b'""', b"\r", b"\n", b"\r\n", b",", b";", b"\t", b"|", b"\x00", b"\xff", b"\xfe",
          b"\xef\xbb\xbf", b"\xff\xfe", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"=HYPERLINK(\"x\")",
          b"+1", b"@SUM(A1)", b"0001-01-01", b"2090-01-01", b"31.02.2014", b"#", b"[", b"]", b"{", b"}",
          b"=", b"'", b'"""', b"x" * 300, b"," * 200, b"\\u0000", b"files", b"centres", b"overrides"]


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` after 1-6 random edits: insert a token or random bytes, delete, replace, duplicate
    a slice, truncate."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "insert", "delete", "replace", "duplicate", "truncate"]))
        payload = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=8)))
        if kind == "insert":
            data[position:position] = payload
        elif kind == "delete":
            del data[position:position + draw(st.integers(1, 20))]
        elif kind == "replace":
            data[position:position + len(payload)] = payload
        elif kind == "duplicate":
            end = min(len(data), position + draw(st.integers(1, 60)))
            data[position:position] = data[position:end]
        else:
            del data[position:]
    return bytes(data)

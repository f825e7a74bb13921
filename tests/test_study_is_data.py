"""Acceptance (issue 12): the study is data. No Python file under src/ names a disease, a drug or a
concept id of a bundled study: they are in the protocols and vocabulary files only.

The terms are read from the bundled protocols themselves (condition words and concept ids, every
ingredient of every drug class, every concept id a covariate or an OMOP rule names), so a new
bundled study extends the check without editing it.
"""

from __future__ import annotations

import re
from pathlib import Path

from oncorwe import protocol

SRC = Path(__file__).resolve().parents[1] / "src" / "oncorwe"
STUDIES = ("goldinger2022", "liu2019", "nsclc_docetaxel")


def _terms() -> set[str]:
    terms: set[str] = set()
    for name in STUDIES:
        p = protocol.load(name)
        terms.update(p.condition.words)
        terms.update(str(c) for c in p.condition.concept_ids)
        for spec in p.drug_classes.values():
            terms.update(i for i in spec.ingredients if len(i) > 5)
        for covariate in p.covariates.values():
            terms.update(str(c) for c in getattr(covariate, "concept_ids", ()))
        for rule in p.omop_observations:
            terms.update(str(c) for c in rule.concept_ids)
    return terms


def _naming(terms: set[str]) -> dict[str, list[str]]:
    pattern = re.compile("|".join(rf"(?<![\w]){re.escape(t)}" if t.isdigit() else re.escape(t)
                                  for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        hits = sorted({m.group(0).lower() for m in pattern.finditer(path.read_text(encoding="utf-8"))})
        if hits:
            found[path.relative_to(SRC).as_posix()] = hits
    return found


def test_the_terms_are_read_from_the_protocols() -> None:
    terms = _terms()
    assert {"melanom", "141232", "dacarbazine", "docetaxel", "pembrolizumab"} <= terms


def test_no_python_file_names_a_study_term() -> None:
    found = _naming(_terms())
    assert not found, found

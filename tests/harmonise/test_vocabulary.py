"""Vocabularies: drug words in five languages, responses, regimen and ICI classes (docs/definitions.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oncorwe import harmonise

VOCAB = Path(harmonise.__file__).parent / "vocab"


@pytest.fixture(scope="module")
def vocab() -> harmonise.Vocabulary:
    return harmonise.load_vocabulary()


@pytest.mark.parametrize(
    ("word", "ingredients"),
    [
        ("DTIC", ["dacarbazine"]), ("Deticene", ["dacarbazine"]), ("Dacarbazin", ["dacarbazine"]),
        ("dacarbazina", ["dacarbazine"]), ("Temodal", ["temozolomide"]), ("Taxol", ["paclitaxel"]),
        ("Abraxane", ["nab-paclitaxel"]), ("nab-Paclitaxel", ["nab-paclitaxel"]), ("Muphoran", ["fotemustine"]),
        ("Carbo/Pacli", ["carboplatin", "paclitaxel"]), ("Carbo-Taxol", ["carboplatin", "paclitaxel"]),
        ("carboplatine + paclitaxel", ["carboplatin", "paclitaxel"]), ("Ipi/Nivo", ["ipilimumab", "nivolumab"]),
        ("Tafinlar + Mekinist", ["dabrafenib", "trametinib"]), ("MK 3475", ["pembrolizumab"]),
        ("fotémustine", ["fotemustine"]), ("CVD", ["cisplatin", "dacarbazine", "vinblastine"]),
    ],
)
def test_drug_words_map_to_ingredients(vocab: harmonise.Vocabulary, word: str, ingredients: list[str]) -> None:
    found = vocab.drug(word)
    assert found is not None and [i.name for i in found] == ingredients


def test_unknown_drugs_stay_unknown(vocab: harmonise.Vocabulary) -> None:
    for word in ("Studienmedikation XR-17", "study drug MEL-0815", "médicament d'étude", "Carbo/XYZ"):
        assert vocab.drug(word) is None


def test_no_standard_concept_id_is_invented() -> None:
    with (VOCAB / "omop_concepts.csv").open(encoding="utf-8") as handle:
        standard = {int(r["concept_id"]) for r in csv.DictReader(handle)}
    with (VOCAB / "ingredients.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            concept = int(row["concept_id"])
            assert concept in standard or concept > 2_000_000_000, row


@pytest.mark.parametrize(
    ("word", "response"),
    [("partielle Remission", "PR"), ("réponse partielle", "PR"), ("RP", "PR"), ("risposta completa", "CR"),
     ("stabiele ziekte", "SD"), ("MS", "SD"), ("Progress", "PD"), ("progressieve ziekte", "PD"),
     ("non évaluable", "NE")],
)
def test_response_words(vocab: harmonise.Vocabulary, word: str, response: str) -> None:
    assert vocab.responses[harmonise.normalise_word(word)] == response


def test_mixed_response_is_no_recist_category(vocab: harmonise.Vocabulary) -> None:
    for word in ("mixed response", "MR", "gemischtes Ansprechen", "réponse dissociée"):
        assert harmonise.normalise_word(word) not in vocab.responses


def test_ldh_units_and_missing_tokens(vocab: harmonise.Vocabulary) -> None:
    assert vocab.ldh_units[harmonise.normalise_word("µkat/L")] == 60
    assert vocab.ldh_units[harmonise.normalise_word("U/L")] == 1
    assert vocab.is_missing("nicht bekannt", coded=False) and vocab.is_missing("  ", coded=False)
    assert vocab.is_missing("99", coded=True) and not vocab.is_missing("99", coded=False)


@pytest.mark.parametrize(
    ("file", "extra"),
    [
        ("columns.csv", {"column": "Patient ID", "field": "centre_id"}),  # normalises to patient_id
        ("responses.csv", {"word": "partial response", "response": "SD"}),
    ],
)
def test_a_word_with_two_meanings_is_refused(monkeypatch: pytest.MonkeyPatch, file: str, extra: dict[str, str]) -> None:
    """A second row giving a known word another meaning must fail loudly, not win by row order."""
    from oncorwe.harmonise import _vocab

    shipped = _vocab._rows

    def with_clash(name: str) -> list[dict[str, str]]:
        rows = shipped(name)
        return [*rows, extra] if name == file else rows

    monkeypatch.setattr(_vocab, "_rows", with_clash)
    _vocab.load_vocabulary.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=rf"vocab/{file}: a word .* more than one meaning"):
            _vocab.load_vocabulary()
    finally:
        monkeypatch.undo()
        _vocab.load_vocabulary.cache_clear()


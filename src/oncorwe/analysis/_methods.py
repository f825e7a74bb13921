"""The report's Methods paragraphs, written from the protocol, so they are true for every study."""

from __future__ import annotations

from oncorwe.protocol import IndexDateWithin, Protocol

__all__ = ["methods_text"]


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def methods_text(protocol: Protocol) -> list[str]:
    """Paragraphs of plain text: population and index, lines of therapy, response, time to event,
    statistics. Every number and rule is the protocol's."""
    p = protocol
    index_class = p.drug_classes[p.index.drug_class].label
    window = next((c for c in p.criteria if isinstance(c, IndexDateWithin)), None)
    population = (f"Patients with {p.condition.label}. Time zero (the index date) is {p.index.label}")
    if p.index.prior_failure is not None:
        prior = p.index.prior_failure
        population += (f": the first {index_class} line started after progression on "
                       f"{prior.label} (a PD assessment or a progression event from the start of that line "
                       f"up to {prior.progression_window_days} days after its end)")
    if window is not None:
        population += f", between {window.start.isoformat()} and {window.end.isoformat()}"
    population += ". Exclusions, in order: " + "; ".join(c.label for c in p.criteria) + "."
    lines = (f"Lines of therapy are built from the drug records of {_join([c.label for c in p.drug_classes.values()])}: "
             f"a line's regimen holds the drugs started within {p.lines.regimen_window_days} days of its first drug; "
             f"a new drug after that, or a gap of more than {p.lines.max_gap_days} days, starts a new line"
             + (" (substituting " + "; ".join(" for ".join(g) for g in p.lines.substitutions)
                + " does not)" if p.lines.substitutions else "")
             + ". Regimen classes of the index line: "
             + "; ".join(c.label for c in p.regimen_classes) + "; otherwise " + p.other_regimen_class.replace("_", " ")
             + ".")
    r = p.response
    response = ("Best overall response follows RECIST 1.1 "
                + (f"with confirmation of CR/PR at least {r.confirmation_min_days} days later"
                   if r.confirmation else "without confirmation of CR/PR")
                + (f"; stable disease counts from {r.sd_min_days} days after the index date" if r.sd_min_days else "")
                + ". ORR and DCR are over all patients, with exact (Clopper-Pearson) confidence intervals.")
    e = p.endpoints
    censor = ("the last evaluable assessment" if e.pfs_censoring == "last_evaluable_assessment" else "the last contact")
    time_to_event = (f"PFS: to progression{' or death' if e.pfs_death_is_event else ''}, censored at {censor}. "
                     "OS: to death, censored at the last contact. Kaplan-Meier estimates with Greenwood variances; "
                     "log-rank tests; median follow-up by reverse Kaplan-Meier (Schemper & Smith 1996). "
                     "Months are days / 30.4375.")
    a = p.analysis
    statistics = []
    if a.cox_covariates:
        statistics.append("Cox proportional-hazards models (Efron ties), complete cases, covariates: "
                          + ", ".join(p.column_label(c) for c in a.cox_covariates)
                          + "; proportional hazards checked with the Grambsch-Therneau test.")
    statistics.append(f"Landmark analysis of OS by response at {a.landmark_weeks:g} weeks "
                      "(Anderson, Cain & Gelber 1983).")
    paragraphs = [population, lines, response, time_to_event, " ".join(statistics)]
    if p.adverse_events is not None:
        ae = p.adverse_events
        paragraphs.append(
            f"Adverse events are graded by CTCAE v5.0. An event counts as a toxicity of the index line when its "
            f"grade is {ae.grade_threshold} or higher and its onset lies between the start of the line and "
            f"{ae.attribution_window_days} days after its last recorded end, before the next line started. "
            "Percentages are of the patients of centres that sent adverse event records; patients of the "
            f"other centres are counted as not reported. The {ae.top_terms} most frequent terms are shown.")
    return paragraphs

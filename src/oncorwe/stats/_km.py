"""Placeholder until the estimator lands (being written now)."""

class KaplanMeier:
    pass


def kaplan_meier(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def reverse_km_followup(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError



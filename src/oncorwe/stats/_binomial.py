"""Placeholder until the estimator lands (being written now)."""

class RateComparison:
    pass


def binomial_ci(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def compare_rates(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError



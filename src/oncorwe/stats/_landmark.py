"""Placeholder until the estimator lands (being written now)."""

class LandmarkData:
    pass


def landmark(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise NotImplementedError



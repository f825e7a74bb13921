"""oncorwe: retrospective multicentre oncology outcome studies, end to end.

Stages (one sub-package each, data flowing one way):
sources -> harmonise -> model -> cohort -> endpoints -> analysis -> report.
``stats`` is a library of its own; ``protocol`` is the study as data; ``synth`` writes synthetic
centre exports for tests and demonstrations.
"""

from importlib import metadata

from oncorwe.errors import OncorweError

try:
    #: The installed distribution's version: pyproject.toml is its one source, so the package, the
    #: wheel, ``oncorwe --version`` and every report's manifest say the same.
    __version__ = metadata.version("oncorwe")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["OncorweError", "__version__"]

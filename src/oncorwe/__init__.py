"""oncorwe: retrospective multicentre oncology outcome studies, end to end.

Stages (one sub-package each, data flowing one way):
sources -> harmonise -> model -> cohort -> endpoints -> analysis -> report.
``stats`` is a library of its own; ``protocol`` is the study as data; ``synth`` writes synthetic
centre exports for tests and demonstrations.
"""

from oncorwe.errors import OncorweError

__version__ = "0.1.0"
__all__ = ["OncorweError", "__version__"]

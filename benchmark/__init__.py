"""mosrm-bench: pairwise, ΔMOS-stratified evaluation of speech-quality reward models.

Import stays cheap on purpose: nothing heavy (torch, pyarrow) is imported here, so `mosrm --help`
and `mosrm tasks` start instantly.
"""

__version__ = "0.1.0"
HARNESS_VERSION = __version__

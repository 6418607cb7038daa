"""mosrm-bench: pairwise, ΔMOS-stratified evaluation of speech-quality reward models.

Import stays cheap on purpose: nothing heavy (torch, pyarrow) is imported here, so `mosrm --help`
and `mosrm tasks` start instantly.
"""

__version__ = "0.1.0"
HARNESS_VERSION = __version__

_API = {
    "evaluate": "benchmark.api",
    "get_tasks": "benchmark.api",
    "load_results": "benchmark.api",
    "probe": "benchmark.api",
    "TaskResult": "benchmark.results.schema",
}
__all__ = [
    "HARNESS_VERSION",
    "TaskResult",
    "__version__",
    "evaluate",
    "get_tasks",
    "load_results",
    "probe",
]


def __getattr__(name: str) -> object:
    """The Python API (`benchmark.api`), imported on first use so `import benchmark` stays cheap."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'benchmark' has no attribute '{name}'")


def _install_old_paths() -> None:
    from benchmark import _moved

    _moved.install()


_install_old_paths()

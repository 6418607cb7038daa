"""Load a submission: its spec and fingerprint, then its model, in-process or sandboxed.

Submissions are folders under `submissions/` with a `submission.yaml` (validated, unknown keys
rejected) naming an entry point: either `file.py:callable` inside the folder, or a callable of the
reference adapters in `benchmark.baselines` (a module entry). Only the repository's own baseline
folders run in the harness process (`benchmark.scoring.trust`: a module entry whose files are
byte-identical to an official folder listed in `baselines/official.json`, or a folder the harness
trained under `$MOSRM_HOME/trained/`); every other folder, whatever its entry, runs in the
bubblewrap sandbox (`benchmark.scoring.sandbox`). For a stranger's module entry the harness imports
nothing of it: the child imports the adapter from the read-only package, params naming files of
the folder become absolute paths as in-process, and hub weights an adapter names
(`benchmark.scoring.hub_weights`) are fetched by the harness beforehand and bound read-only. Its
fingerprint is the harness's: spec, folder files, harness version and the fetched hub files, never
what the child reports. With `--unsafe-no-sandbox` (`unsandboxed`) such an entry, like folder
code, runs in a separate process without bubblewrap (this user's files and network, the rlimits
still applied): never in the harness process. Weights are safetensors files inside the folder;
pickle is never loaded.

The model interfaces live in `scoring.interfaces`, the spec in `scoring.spec`, the folder's files
and fingerprint in `scoring.folder` (compiled code refused there); `benchmark.models` keeps all
their names, since submitted code imports from it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.data.batch import Batch  # noqa: F401 - submitted code imports it from here
from benchmark.errors import SubmissionError
from benchmark.scoring.folder import (  # noqa: F401 - benchmark.models keeps these names
    COMPILED_SUFFIXES,
    NATIVE_MAGIC,
    _digest,
    _fingerprint,
    check_not_compiled,
    folder_files,
)
from benchmark.scoring.interfaces import (  # noqa: F401 - submitted code imports these from here
    MODEL_API_VERSION,
    ImplicitAsScalar,
    ImplicitRewardModel,
    PairwiseRewardModel,
    ScalarRewardModel,
)
from benchmark.scoring.spec import (  # noqa: F401 - benchmark.models keeps these names
    RESERVED_PARAMS,
    TRUSTED_PACKAGE,
    SubmissionSpec,
    _check_params,
    _inside,
    check_requirements,
    discover_submissions,
    is_module_entry,
    read_spec,
)
from benchmark.scoring.trust import trusted_reason

if TYPE_CHECKING:
    from benchmark.scoring.sandbox import SandboxLimits


@dataclass
class Submission:
    """A loaded submission: its spec, the built model and a fingerprint for the score cache."""

    spec: SubmissionSpec
    folder: Path
    model: Any
    fingerprint: str
    sandboxed: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def close(self) -> None:
        """End the sandboxed child, if one was started."""
        close = getattr(self.model, "close", None)
        if callable(close):
            close()


def model_info(submission: Submission) -> dict[str, Any]:
    """What the board shows about a model (MTEB-style record): size, licence, link, revision.

    The parameter count is measured where the harness can (a torch module, in-process or in the
    sandbox, as it reported when started, now or when the same folder was built before:
    `benchmark.scoring.model_facts`) and the declared one is used otherwise; `parameters_source` says which.
    """
    spec = submission.spec
    measured = count_parameters(submission.model)
    return {
        "parameters": measured if measured is not None else spec.parameters,
        "parameters_source": "measured"
        if measured is not None
        else ("declared" if spec.parameters is not None else None),
        "license": spec.license,
        "url": spec.url,
        "revision": spec.revision,
        "release_date": None if spec.release_date is None else spec.release_date.isoformat(),
        "requirements": list(spec.requirements),
    }


def count_parameters(model: Any) -> int | None:
    """Parameters of a torch module (also behind ImplicitAsScalar or a started sandbox)."""
    reported = getattr(model, "parameters_count", None)
    if isinstance(reported, int):
        return reported
    inner = getattr(model, "model", model)
    params = getattr(inner, "parameters", None)
    if not callable(params):
        return None
    try:
        return int(sum(p.numel() for p in params()))
    except Exception:  # not a torch module after all
        return None


def is_trusted(spec: SubmissionSpec, folder: str | Path) -> bool:
    """One of the repository's own baseline folders, which run in-process (`benchmark.scoring.trust`);
    every other folder runs sandboxed, whatever its entry."""
    folder = Path(folder)
    return trusted_reason(spec.entry, folder, folder_files(folder)) is not None


def current_fingerprint(folder: str | Path) -> str:
    """The fingerprint `load_submission` would give, without running any untrusted code (nor
    downloading: hub weights are looked up in the local cache only)."""
    sub = load_submission(folder, unsandboxed=True, fetch=False)
    sub.close()
    return sub.fingerprint


def _factory_kwargs(spec: SubmissionSpec, folder: Path) -> dict[str, Any]:
    """A param naming a file or folder of the submission reaches the factory as an absolute path
    (it is inside the folder, so already in the fingerprint); anything else is passed as is."""
    return {
        k: str(folder / v) if isinstance(v, str) and v and (folder / v).exists() else v
        for k, v in spec.params.items()
    }


def load_submission(
    folder: str | Path,
    *,
    limits: SandboxLimits | None = None,
    unsandboxed: bool = False,
    fetch: bool = True,
) -> Submission:
    """Validate `submission.yaml`, fingerprint the folder, and make the model.

    One of the repository's own baseline folders (`benchmark.scoring.trust`) is built here. Any other
    folder becomes a `SandboxedModel`, started on first use (bubblewrap required unless
    `unsandboxed`, which still runs it in a separate, limited process but with this user's
    file-system and network access), whether its entry is its own `file.py:callable` or a module
    entry of `benchmark.baselines`; for the latter, hub weights it names are fetched here first
    (from the local cache only unless `fetch`: `benchmark.scoring.hub_weights`). Once the folder's model
    has been built, its sample rate and parameter count are known without starting it
    (`benchmark.scoring.model_facts`), so an evaluation served wholly from the score cache never does.
    A trusted baseline's fingerprint includes what its built model says (`fingerprint()`: weights
    it loaded, files outside the folder), so it is always built, which is why the baselines import
    torch only once they compute.
    """
    from benchmark import HARNESS_VERSION
    from benchmark.scoring import model_facts
    from benchmark.scoring.sandbox import SandboxedModel, bubblewrap

    folder = Path(folder).resolve()
    spec = read_spec(folder)
    yaml_path = folder / "submission.yaml"
    _check_params(spec, folder, yaml_path)
    check_requirements(spec, yaml_path)
    digest = _digest(spec, folder)
    if spec.kind == "predictions":
        for task, file in sorted(spec.predictions.items()):
            _inside(folder, file, f"predictions.{task}", yaml_path)
        return Submission(spec, folder, None, _fingerprint(digest))
    assert spec.entry is not None
    target, _, attr = spec.entry.partition(":")
    if spec.weights is not None:
        _inside(folder, spec.weights, "weights", yaml_path)
    if trusted_reason(spec.entry, folder, digest["files"]) is None:
        module_entry = is_module_entry(spec.entry)
        if not module_entry:
            _inside(folder, target, "entry", yaml_path)
        if not unsandboxed and bubblewrap() is None:
            raise SubmissionError(
                f"{folder}: bubblewrap (bwrap) is not available here, so this submission's code "
                "cannot be sandboxed; install it (apt-get install bubblewrap), or pass "
                "--unsafe-no-sandbox to run it with your user's full permissions"
            )
        params: dict[str, Any] | None = None
        binds: list[Path] = []
        if module_entry:
            from benchmark.scoring import hub_weights

            try:  # the harness's own package: finding the module runs none of a stranger's code
                found = importlib.util.find_spec(target)
            except ImportError:
                found = None
            if found is None:
                raise SubmissionError(f"{yaml_path}: field 'entry': no module named '{target}'")
            # the harness's own fingerprint of the adapter's run: nothing the child reports
            hub = hub_weights.resolve(
                target, _factory_kwargs(spec, folder), str(yaml_path), download=fetch
            )
            params, binds = hub.kwargs, hub.binds
            digest["harness"] = HARNESS_VERSION
            digest["run"] = "sandbox"
            if hub.digest:
                digest["hub"] = hub.digest
        fingerprint = _fingerprint(digest)
        # what this very folder's model reported when last built, so that a fully cached
        # evaluation need not start the sandbox at all (`benchmark.scoring.model_facts`)
        known = model_facts.recorded(fingerprint)
        model = SandboxedModel(
            folder,
            spec,
            limits=limits,
            sandbox=not unsandboxed,
            known_sample_rate=None if known is None else known.sample_rate,
            known_parameters=None if known is None else known.parameters,
            on_start=functools.partial(model_facts.record, fingerprint),
            params=params,
            extra_ro=binds,
        )
        return Submission(spec, folder, model, fingerprint, sandboxed=True)
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        raise SubmissionError(f"{yaml_path}: field 'entry': {exc}") from None
    digest["harness"] = HARNESS_VERSION
    factory = getattr(module, attr, None)
    if factory is None:
        raise SubmissionError(f"{yaml_path}: field 'entry': '{target}' has no '{attr}'")
    kwargs = _factory_kwargs(spec, folder)
    if spec.weights is not None:
        kwargs["weights_path"] = folder / spec.weights
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise SubmissionError(
            f"{yaml_path}: building '{spec.entry}' with params {sorted(kwargs)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    model = _check_kind(model, spec, yaml_path)
    extra = getattr(model, "fingerprint", None)
    if callable(extra):
        digest["model"] = str(extra())
    return Submission(spec, folder, model, _fingerprint(digest))


def _check_kind(model: Any, spec: SubmissionSpec, yaml_path: Path) -> Any:
    if spec.kind == "implicit":
        if not isinstance(model, ImplicitRewardModel):
            raise SubmissionError(
                f"{yaml_path}: kind 'implicit' but the model lacks policy_logp/reference_logp/beta"
            )
        return ImplicitAsScalar(model)
    if spec.kind == "scalar" and not isinstance(model, ScalarRewardModel):
        raise SubmissionError(
            f"{yaml_path}: kind 'scalar' but the model has no score()/sample_rate"
        )
    if spec.kind == "pairwise" and not isinstance(model, PairwiseRewardModel):
        raise SubmissionError(
            f"{yaml_path}: kind 'pairwise' but the model has no prefer()/sample_rate"
        )
    return model

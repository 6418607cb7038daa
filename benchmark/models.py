"""Reward-model interfaces and submission loading.

Three kinds of reward model are evaluated:

- scalar: `score(batch) -> Tensor[B]`, one number per clip, higher = better. Scored once per unique
  clip and cached; a pair is judged by comparing the two scores.
- pairwise: `prefer(a, b) -> Tensor[B]`, P(clip a is better than clip b). The harness always asks in
  both orders and averages, P = (prefer(a, b) + 1 - prefer(b, a)) / 2, so a judge's position bias
  cannot move its accuracy.
- implicit: a DPO-style policy with its reference model; reward = beta * (log pi(x) - log pi_ref(x)).
  A reference model is mandatory (an implicit reward without it is meaningless), and the harness
  scores it as a scalar model through `ImplicitAsScalar`.

Models must mask padding: a batch is zero-padded to its longest clip and carries the true lengths.
The harness checks that batch size does not change scores (see tests/test_scoring.py). Which clip
of a pair is shown first is picked by a hash of both clips' audio, and clips and pairs arrive
ordered by length, then by audio SHA-256 (`scoring.send_order`, `scoring.presented_first`), so
neither the order nor the count of calls tells a model anything the audio does not.

Submissions are folders under `submissions/` with a `submission.yaml` (validated, unknown keys
rejected) naming an entry point: either `file.py:callable` inside the folder, or a callable of the
reference adapters in `benchmark.baselines` (a module entry). Only the repository's own baseline
folders run in the harness process (`benchmark.trust`: a module entry whose files are
byte-identical to an official folder listed in `baselines/official.json`, or a folder the harness
trained under `$MOSRM_HOME/trained/`); every other folder, whatever its entry, runs in the
bubblewrap sandbox (`benchmark.sandbox`). For a stranger's module entry the harness imports
nothing of it: the child imports the adapter from the read-only package, params naming files of
the folder become absolute paths as in-process, and hub weights an adapter names
(`benchmark.hub_weights`) are fetched by the harness beforehand and bound read-only. Its
fingerprint is the harness's: spec, folder files, harness version and the fetched hub files, never
what the child reports. With `--unsafe-no-sandbox` (`unsandboxed`) such an entry, like folder
code, runs in a separate process without bubblewrap (this user's files and network, the rlimits
still applied): never in the harness process. Weights are safetensors files inside the folder;
pickle is never loaded.

The fingerprint that keys the score cache covers the spec and every file of the folder, so editing
any of them means re-scoring; nothing is left out. Compiled code, which runs without a source a
reader can check and which the import system prefers over or uses instead of a `.py`, is refused
with a one-line error naming the file (`folder_files`): anything under `__pycache__`, Python
bytecode (`.pyc`/`.pyo`, or a file starting with this interpreter's bytecode magic), extension
modules and native libraries (`.so`, `.pyd`, `.dylib`, `.dll` and every suffix CPython loads as an
extension), any native executable by its magic bytes (ELF, Mach-O, PE; a renamed `.so` can still be
loaded with ctypes), and zip archives holding any of these (zipimport runs `.pyc` from a zip on
`sys.path`). Scripts (shebang or not) are text: read, hashed, accepted. The child also imports the
folder's modules from source only (`sandbox.child.build`), so no bytecode of the folder is ever
read even if one slipped through.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.batch import Batch  # re-exported: submitted code imports it from here
from benchmark.errors import SubmissionError, describe_validation_error
from benchmark.hashing import sha256_file
from benchmark.safe_yaml import load_yaml
from benchmark.trust import TRUSTED_PACKAGE, is_module_entry, trusted_reason

if TYPE_CHECKING:
    import torch

    from benchmark.sandbox import SandboxLimits

MODEL_API_VERSION = 1

COMPILED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib", ".dll")
"""Bytecode and native-code file names refused in a submission folder (with every suffix of
`importlib.machinery.EXTENSION_SUFFIXES` and `BYTECODE_SUFFIXES`: see the module docstring)."""

NATIVE_MAGIC = {
    b"\x7fELF": "an ELF executable or shared library",
    b"\xfe\xed\xfa\xce": "a Mach-O binary",
    b"\xfe\xed\xfa\xcf": "a Mach-O binary",
    b"\xce\xfa\xed\xfe": "a Mach-O binary",
    b"\xcf\xfa\xed\xfe": "a Mach-O binary",
    b"\xca\xfe\xba\xbe": "a universal Mach-O binary (or Java class file)",
}
"""The first four bytes of native code; PE (Windows) is checked apart (`MZ` + a `PE` header)."""

RESERVED_PARAMS = frozenset({"weights_path"})
"""Set by the harness from `weights` (checked inside the folder and hashed), never by params."""


@runtime_checkable
class ScalarRewardModel(Protocol):
    sample_rate: int

    def score(self, batch: Batch) -> torch.Tensor:
        """One score per clip, higher = better; must not depend on padding or batch composition."""
        ...


@runtime_checkable
class PairwiseRewardModel(Protocol):
    sample_rate: int

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        """P(a[i] is better than b[i]) in [0, 1] for each row i."""
        ...


@runtime_checkable
class ImplicitRewardModel(Protocol):
    sample_rate: int
    beta: float

    def policy_logp(self, batch: Batch) -> torch.Tensor: ...

    def reference_logp(self, batch: Batch) -> torch.Tensor: ...


class ImplicitAsScalar:
    """Scores an implicit (policy + reference) model as a scalar reward beta * log-ratio."""

    def __init__(self, model: ImplicitRewardModel) -> None:
        self.model = model
        self.sample_rate = model.sample_rate

    def score(self, batch: Batch) -> torch.Tensor:
        return self.model.beta * (self.model.policy_logp(batch) - self.model.reference_logp(batch))

    def to(self, device: str | torch.device) -> ImplicitAsScalar:
        if hasattr(self.model, "to"):
            self.model = self.model.to(device)
        return self


class SubmissionSpec(BaseModel):
    """`submission.yaml`: what a submitted model is and how to build it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    display_name: str
    kind: Literal["scalar", "pairwise", "implicit", "predictions"]
    entry: str | None = Field(
        default=None,
        description="'file.py:callable' inside the folder, or 'benchmark.baselines.x:callable'; "
        "none for kind 'predictions'",
    )
    predictions: dict[str, str] = Field(
        default_factory=dict,
        description="kind 'predictions': task name -> a .parquet or .csv file inside the folder "
        "with per-clip scores (clip_id, score) or per-pair P(A better) (pair_id, p_a)",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(default=None, description="safetensors file inside the folder")
    reference_model: str | None = Field(
        default=None, description="required for implicit models: the reference policy"
    )
    description: str = ""
    authors: list[str] = Field(default_factory=list)
    url: str | None = None
    license: str | None = None
    training_data: list[str] = Field(
        default_factory=list,
        description="corpora/splits the model was trained on, e.g. 'bvcc:train' (contamination)",
    )
    baseline: bool = False
    shortcut: bool = Field(default=False, description="a shortcut heuristic, not a quality model")
    revision: str | None = Field(
        default=None, max_length=200, description="code or checkpoint revision (commit, hub tag)"
    )
    release_date: datetime.date | None = None
    parameters: int | None = Field(
        default=None, ge=0, description="declared parameter count (the harness measures it too)"
    )
    requirements: list[str] = Field(
        default_factory=list,
        description="PEP 508 requirements the model's code needs, checked before it runs",
    )

    @field_validator("requirements")
    @classmethod
    def _requirements_form(cls, v: list[str]) -> list[str]:
        if not v:
            return v  # packaging's parser is a noticeable share of a cached run's start-up
        from packaging.requirements import InvalidRequirement, Requirement

        for item in v:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"'{item}' is not a PEP 508 requirement ({exc})") from None
        return v

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str | None) -> str | None:
        if v is None:
            return v
        target, sep, attr = v.partition(":")
        if not sep or not target or not attr.isidentifier():
            raise ValueError("must look like 'model.py:build' or 'benchmark.module:Class'")
        if not target.endswith(".py") and not target.startswith(TRUSTED_PACKAGE + "."):
            raise ValueError(
                f"module entries must be reference adapters in '{TRUSTED_PACKAGE}' (the "
                "harness's own code); a submission's own code is 'file.py:callable'"
            )
        return v

    @field_validator("weights")
    @classmethod
    def _weights_form(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".safetensors"):
            raise ValueError("weights must be a .safetensors file (pickle is never loaded)")
        return v

    @model_validator(mode="after")
    def _reference_for_implicit(self) -> SubmissionSpec:
        if self.kind == "implicit" and not self.reference_model:
            raise ValueError("an implicit model needs 'reference_model'")
        return self

    @model_validator(mode="after")
    def _entry_or_predictions(self) -> SubmissionSpec:
        if self.kind == "predictions":
            if self.entry is not None or self.weights is not None or self.params:
                raise ValueError("kind 'predictions' runs no code: no entry, weights or params")
            if not self.predictions:
                raise ValueError("kind 'predictions' needs 'predictions: {task: file}'")
            for task, file in self.predictions.items():
                if not file.endswith((".parquet", ".csv")):
                    raise ValueError(f"predictions.{task}: expected a .parquet or .csv file")
        elif self.entry is None:
            raise ValueError(f"kind '{self.kind}' needs an 'entry'")
        elif self.predictions:
            raise ValueError("'predictions' files belong to kind 'predictions'")
        return self


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


def _inside(folder: Path, rel: str, field: str, yaml_path: Path) -> Path:
    """Resolve `rel` under `folder`, refusing anything that escapes it (.., absolute, symlinks)."""
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SubmissionError(f"{yaml_path}: field '{field}' points outside the submission folder")
    if not path.is_file():
        raise SubmissionError(f"{yaml_path}: field '{field}': file '{rel}' not found")
    return path


def read_spec(folder: str | Path) -> SubmissionSpec:
    folder = Path(folder)
    yaml_path = folder / "submission.yaml"
    if not yaml_path.is_file():
        raise SubmissionError(f"{yaml_path}: not found (every submission folder needs one)")
    raw = load_yaml(yaml_path, SubmissionError)
    if not isinstance(raw, dict):
        raise SubmissionError(f"{yaml_path}: expected a mapping at the top level")
    try:
        spec = SubmissionSpec.model_validate(raw)
    except ValidationError as exc:
        raise SubmissionError(f"{yaml_path}: {describe_validation_error(exc)}") from None
    if spec.name != folder.name:
        raise SubmissionError(
            f"{yaml_path}: field 'name' is '{spec.name}' but the folder is '{folder.name}'"
        )
    return spec


def folder_files(folder: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file of a submission folder, sorted; none left out.

    Compiled code is refused with a one-line error naming the file (`check_not_compiled`). A
    symlink is followed only if it stays inside the folder, so nothing outside can change behind
    the fingerprint's back.
    """
    root = folder.resolve()
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                _check_link(root, Path(dirpath) / d)
            if d == "__pycache__":
                inside = sorted((Path(dirpath) / d).iterdir())
                raise SubmissionError(
                    f"{inside[0] if inside else Path(dirpath) / d}: a bytecode cache "
                    "(__pycache__) in a submission folder; delete it: only source runs"
                )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                _check_link(root, path)
            if not path.is_file():
                raise SubmissionError(f"{path}: not a regular file (submission folders hold files)")
            check_not_compiled(path)
            out.append((path.relative_to(root).as_posix(), sha256_file(path)))
    return sorted(out)


def _compiled_suffixes() -> tuple[str, ...]:
    from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES

    return tuple({*COMPILED_SUFFIXES, *BYTECODE_SUFFIXES, *EXTENSION_SUFFIXES})


def _compiled_name(name: str) -> bool:
    return name.lower().endswith(_compiled_suffixes()) or "__pycache__" in name.split("/")


def check_not_compiled(path: Path) -> None:
    """A one-line `SubmissionError` naming `path` if it is compiled code (module docstring)."""
    what = None
    if _compiled_name(path.name):
        what = "compiled code (bytecode or a native library)"
    else:
        with path.open("rb") as f:
            head = f.read(64)
            if head[:4] in NATIVE_MAGIC:
                what = NATIVE_MAGIC[head[:4]]
            elif head[:4] == importlib.util.MAGIC_NUMBER:
                what = "Python bytecode"
            elif head[:2] == b"MZ" and len(head) >= 64:
                offset = int.from_bytes(head[60:64], "little")
                f.seek(offset)
                if f.read(4) == b"PE\0\0":
                    what = "a Windows (PE) executable or library"
            elif head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                what = _compiled_in_zip(path)
    if what is not None:
        raise SubmissionError(
            f"{path}: {what} in a submission folder; ship the source instead: only source "
            "code runs (a compiled file would run without anything a reader can check)"
        )


def _compiled_in_zip(path: Path) -> str | None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not an archive after all (or one nothing can import from)
    bad = sorted(n for n in names if _compiled_name(n))
    return f"a zip archive holding compiled code ('{bad[0]}')" if bad else None


def _check_link(root: Path, path: Path) -> None:
    if not path.resolve().is_relative_to(root):
        raise SubmissionError(f"{path}: a symlink pointing outside the submission folder")


def _check_params(spec: SubmissionSpec, folder: Path, yaml_path: Path) -> None:
    """Params are data for the model's factory, never a way to reach files outside the folder.

    Files inside the folder are already in the fingerprint; a string that looks like a path out
    of it (absolute, `~`, or `..` escaping) is refused, and harness-set keys are reserved.
    """
    reserved = sorted(RESERVED_PARAMS & set(spec.params))
    if reserved:
        raise SubmissionError(
            f"{yaml_path}: field 'params.{reserved[0]}' is set by the harness from 'weights'"
        )

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str) and ("/" in value or "\\" in value or value.startswith("~")):
            if value.startswith(("/", "~")) or not (folder / value).resolve().is_relative_to(
                folder.resolve()
            ):
                raise SubmissionError(
                    f"{yaml_path}: field '{where}': '{value}' points outside the submission "
                    "folder; models may only read files of their own folder"
                )

    walk(spec.params, "params")


def check_requirements(spec: SubmissionSpec, yaml_path: Path) -> None:
    """Every declared requirement is installed in a matching version, or a one-line error that
    says how to install it (before any of the model's code runs)."""
    if not spec.requirements:
        return
    from importlib import metadata

    from packaging.requirements import Requirement

    for item in spec.requirements:
        req = Requirement(item)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            found = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            found = None
        if found is None or (req.specifier and not req.specifier.contains(found, prereleases=True)):
            have = "not installed" if found is None else f"{found} is installed"
            raise SubmissionError(
                f"{yaml_path}: field 'requirements': '{item}' is needed but {have}; install it "
                f"with: {sys.executable} -m pip install '{item}'"
            )


def model_info(submission: Submission) -> dict[str, Any]:
    """What the board shows about a model (MTEB-style record): size, licence, link, revision.

    The parameter count is measured where the harness can (a torch module, in-process or in the
    sandbox, as it reported when started, now or when the same folder was built before:
    `benchmark.model_facts`) and the declared one is used otherwise; `parameters_source` says which.
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


def _digest(spec: SubmissionSpec, folder: Path) -> dict[str, Any]:
    return {
        "api": MODEL_API_VERSION,
        "spec": spec.model_dump(mode="json"),
        "files": folder_files(folder),
    }


def _fingerprint(digest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()[:32]


def is_trusted(spec: SubmissionSpec, folder: str | Path) -> bool:
    """One of the repository's own baseline folders, which run in-process (`benchmark.trust`);
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

    One of the repository's own baseline folders (`benchmark.trust`) is built here. Any other
    folder becomes a `SandboxedModel`, started on first use (bubblewrap required unless
    `unsandboxed`, which still runs it in a separate, limited process but with this user's
    file-system and network access), whether its entry is its own `file.py:callable` or a module
    entry of `benchmark.baselines`; for the latter, hub weights it names are fetched here first
    (from the local cache only unless `fetch`: `benchmark.hub_weights`). Once the folder's model
    has been built, its sample rate and parameter count are known without starting it
    (`benchmark.model_facts`), so an evaluation served wholly from the score cache never does.
    A trusted baseline's fingerprint includes what its built model says (`fingerprint()`: weights
    it loaded, files outside the folder), so it is always built, which is why the baselines import
    torch only once they compute.
    """
    from benchmark import HARNESS_VERSION, model_facts
    from benchmark.sandbox import SandboxedModel, bubblewrap

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
            from benchmark import hub_weights

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
        # evaluation need not start the sandbox at all (`benchmark.model_facts`)
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


def discover_submissions(root: str | Path) -> list[Path]:
    """Submission folders under `root` (those holding a submission.yaml), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/submission.yaml"))

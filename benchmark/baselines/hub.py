"""Any Hugging Face audio model with one regression output, as a scalar reward model in one line.

"Evaluate this model id" should be a `submission.yaml`, not a wrapper to write:

    kind: scalar
    entry: benchmark.baselines.hub:build
    params: {source: some-org/some-mos-predictor}     # or a folder inside the submission

The model is loaded with `AutoModelForAudioClassification` (local folders offline); its single
logit is the score (`output` picks another one of several), raw: no softmax, unlike `pipeline()`.

Input: the model's own feature extractor (its `preprocessor_config.json`), exactly as its authors
ran it: a fine-tuned MOS predictor trained on normalised waveforms (`do_normalize: true`) scores
something else on raw ones, silently (one clip: -0.00496 raw against -0.00292 normalised). Its
sampling rate is the one the harness resamples to; a model without a feature extractor gets the
raw waveform at `sample_rate`, and `fingerprint` records which. Padding as in the SSL encoder:
models whose CNN normalises over the whole padded input (GroupNorm) see one clip at a time, the
others a padded batch with an attention mask, so batch size never changes a score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError, first_line


class HubScalar(nn.Module):
    def __init__(
        self,
        source: str,
        output: int = 0,
        sample_rate: int | None = None,
        revision: str | None = None,
    ) -> None:
        super().__init__()
        self.source = str(source)
        self.output = int(output)
        self.revision = (
            revision  # a hub id's commit or tag; a local folder (a fetched snapshot) has none
        )
        self.extractor = load_feature_extractor(self.source, "hub model", revision)
        native = getattr(self.extractor, "sampling_rate", None)
        if sample_rate is not None and native is not None and int(sample_rate) != int(native):
            raise SubmissionError(
                f"hub model '{self.source}': params.sample_rate {sample_rate} but its feature "
                f"extractor expects {native} Hz (leave sample_rate out)"
            )
        self.sample_rate = int(native or sample_rate or 16000)
        self.model = _load(self.source, revision)
        self.model.eval()
        labels = int(getattr(self.model.config, "num_labels", 1))
        if not 0 <= self.output < labels:
            raise SubmissionError(
                f"hub model '{self.source}': params.output {self.output} is not one of its "
                f"{labels} output(s)"
            )
        self.per_clip = getattr(self.model.config, "feat_extract_norm", "layer") == "group"

    def fingerprint(self) -> str:
        """The model's own weights and config, hashed (a hub id alone may point at new weights)."""
        h = hashlib.sha256(f"{self.source}\0{self.output}\0{self.revision}\0".encode())
        h.update(self.model.config.to_json_string(use_diff=False).encode())
        extractor = "none" if self.extractor is None else self.extractor.to_json_string()
        h.update(f"\0extractor\0{extractor}\0".encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return "hub-v1-" + h.hexdigest()[:24]

    def score(self, batch: Batch) -> torch.Tensor:
        if batch.sample_rate != self.sample_rate:
            raise SubmissionError(
                f"hub model '{self.source}': expects {self.sample_rate} Hz, got {batch.sample_rate}"
            )
        x, lengths = batch.waveforms.float(), batch.lengths
        if self.per_clip:
            rows = [
                self.model(**self._inputs(x[i : i + 1, : int(n)], None)).logits
                for i, n in enumerate(lengths.tolist())
            ]
            logits = torch.cat(rows, dim=0)
        else:
            logits = self.model(**self._inputs(x, lengths)).logits
        return logits[:, self.output].double()

    def _inputs(self, x: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The model's inputs for clips `x` (`lengths` None: one unpadded clip): its feature
        extractor's output where it has one (normalisation, features, attention mask, padding
        over the valid samples only), else the waveform and, for a batch, its mask."""
        if self.extractor is None:
            if lengths is None:
                return {"input_values": x}
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
            return {"input_values": x, "attention_mask": mask.long()}
        if lengths is None:
            clips = [x[0].cpu().numpy()]
            extra: dict[str, Any] = {}
        else:
            clips = [x[i, : int(n)].cpu().numpy() for i, n in enumerate(lengths.tolist())]
            extra = {"padding": True, "return_attention_mask": True}
        feats = self.extractor(clips, sampling_rate=self.sample_rate, return_tensors="pt", **extra)
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in feats.items()}


def _is_local(source: str) -> bool:
    path = Path(source).expanduser()
    return path.is_absolute() or path.exists() or source.startswith((".", "~"))


def load_feature_extractor(source: str, what: str, revision: str | None = None) -> Any | None:
    """The feature extractor a model ships (`preprocessor_config.json`), or None where it ships
    none; a local folder is read offline, a hub id (at `revision`) through the Hugging Face
    cache."""
    from transformers import AutoFeatureExtractor
    from transformers.utils import cached_file

    local = _is_local(source)
    path = Path(source).expanduser()
    try:
        if local:
            if not (path / "preprocessor_config.json").is_file():
                return None
            return AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        found = cached_file(
            source,
            "preprocessor_config.json",
            revision=revision,
            _raise_exceptions_for_missing_entries=False,
        )  # offline and never looked up: an error, not a silent raw waveform
        if found is None:
            return None
        return AutoFeatureExtractor.from_pretrained(source, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        raise SubmissionError(
            f"{what} '{source}': cannot load its feature extractor (preprocessor_config.json): "
            f"{first_line(exc)}"
        ) from None


def _load(source: str, revision: str | None = None) -> Any:
    from transformers import AutoModelForAudioClassification

    path = Path(source).expanduser()
    local = _is_local(source)
    if local and not path.is_dir():
        raise SubmissionError(f"hub model: local folder '{path}' not found")
    try:
        if local:
            return AutoModelForAudioClassification.from_pretrained(str(path), local_files_only=True)
        return AutoModelForAudioClassification.from_pretrained(source, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        raise SubmissionError(
            f"hub model: cannot load '{source}' as an audio classifier: {first_line(exc)}"
        ) from None


def build(
    source: str,
    output: int = 0,
    sample_rate: int | None = None,
    revision: str | None = None,
    **unknown: Any,
) -> HubScalar:
    if unknown:
        raise SubmissionError(f"hub model: unknown param(s) {', '.join(sorted(unknown))}")
    if revision is not None and _is_local(source):
        revision = None  # the harness fetched that revision's snapshot: `source` is its folder
    return HubScalar(source, output=output, sample_rate=sample_rate, revision=revision)

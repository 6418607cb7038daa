"""Any Hugging Face audio model with one regression output, as a scalar reward model in one line.

"Evaluate this model id" should be a `submission.yaml`, not a wrapper to write:

    kind: scalar
    entry: benchmark.baselines.hub:build
    params: {source: some-org/some-mos-predictor}     # or a folder inside the submission

The model is loaded with `AutoModelForAudioClassification` (local folders offline); its single
logit is the score (`output` picks another one of several). Padding is handled as in the SSL
encoder: models whose feature extractor normalises over the whole padded input (GroupNorm) see one
clip at a time, the others get an attention mask, so batch size never changes a score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError


class HubScalar(nn.Module):
    def __init__(self, source: str, output: int = 0, sample_rate: int = 16000) -> None:
        super().__init__()
        self.source = str(source)
        self.output = int(output)
        self.sample_rate = int(sample_rate)
        self.model = _load(self.source)
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
        h = hashlib.sha256(f"{self.source}\0{self.output}\0".encode())
        h.update(self.model.config.to_json_string(use_diff=False).encode())
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
                self.model(x[i : i + 1, : int(n)]).logits for i, n in enumerate(lengths.tolist())
            ]
            logits = torch.cat(rows, dim=0)
        else:
            mask = batch.mask().long()
            logits = self.model(x, attention_mask=mask).logits
        return logits[:, self.output].double()


def _load(source: str) -> Any:
    from transformers import AutoModelForAudioClassification

    path = Path(source).expanduser()
    local = path.is_absolute() or path.exists() or source.startswith((".", "~"))
    if local and not path.is_dir():
        raise SubmissionError(f"hub model: local folder '{path}' not found")
    try:
        if local:
            return AutoModelForAudioClassification.from_pretrained(str(path), local_files_only=True)
        return AutoModelForAudioClassification.from_pretrained(source)
    except (OSError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise SubmissionError(
            f"hub model: cannot load '{source}' as an audio classifier: {type(exc).__name__}: "
            f"{first}"
        ) from None


def build(source: str, output: int = 0, sample_rate: int = 16000, **unknown: Any) -> HubScalar:
    if unknown:
        raise SubmissionError(f"hub model: unknown param(s) {', '.join(sorted(unknown))}")
    return HubScalar(source, output=output, sample_rate=sample_rate)

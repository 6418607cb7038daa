"""A generative audio-LLM (e.g. Qwen2-Audio) as a pairwise judge, from one `submission.yaml`.

The judge hears both clips in one prompt, is asked which one sounds better, and its answer is read
from the next-token logits of the two answer tokens, not from sampled text:

    kind: pairwise
    entry: benchmark.baselines.audio_llm:build
    params: {model: Qwen/Qwen2-Audio-7B-Instruct}     # or a folder inside the submission

Why logits and not generation: P(A) = softmax over the two answer logits is deterministic, needs one
forward pass, never fails to parse, and is a probability the harness can average over both orders
(so the judge's position bias cannot move its accuracy). Restricting the softmax to the two answers
(not the full vocabulary) keeps it a probability of "A rather than B" even when the model would
rather say something else.

The prompt is one user turn holding both clips, through the model's own chat template with its
assistant prefix (`<|im_start|>assistant\\n` for Qwen2-Audio), so the next token is the answer.
`<audio>` in `prompt` marks where each clip goes; it becomes the processor's audio markup
(`<|audio_bos|><|AUDIO|><|audio_eos|>` for Qwen2-Audio), which the processor expands to one token
per audio frame.

Rows of a batch differ in length (clips do), so they are left-padded: the last position is then the
next-token position of every row. Each clip is trimmed to its true length before the processor
sees it; the Whisper-style feature extractor pads every clip to its fixed window (30 s for
Qwen2-Audio, longer clips are cut there) and the text side is masked, so batch size does not change
an answer (checked on a tiny random Qwen2-Audio in tests/baselines/test_audio_llm.py).

The model class is the one its config names (`architectures`, e.g.
`Qwen2AudioForConditionalGeneration`), loaded from `transformers` itself: remote code is never
trusted. Any audio-text model whose processor takes `text=` and `audio=` (or the older `audios=`),
exposes an `audio_token`, and whose forward returns `.logits` should work; only Qwen2-Audio is
tested.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError, first_line

PLACEHOLDER = "<audio>"
DEFAULT_PROMPT = (
    "Audio A: <audio>\nAudio B: <audio>\nWhich clip sounds better, A or B? Answer with A or B."
)
DEFAULT_ANSWERS = ("A", "B")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class AudioLLMJudge:
    """P(clip a sounds better than clip b) from an audio-text LLM's answer-token logits."""

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        answers: Sequence[str] = DEFAULT_ANSWERS,
        dtype: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        max_batch: int = 8,
        chat_template: bool = True,
        audio_markup: str | None = None,
    ) -> None:
        self.source = str(model)
        self.revision = revision
        self.max_batch = _positive(max_batch, "max_batch")
        self.device_map = device_map
        self.dtype = _dtype(dtype)
        if prompt.count(PLACEHOLDER) != 2:
            raise SubmissionError(
                f"audio-LLM judge: params.prompt must hold '{PLACEHOLDER}' exactly twice (clip A, "
                f"then clip B), found {prompt.count(PLACEHOLDER)}"
            )
        self.processor, self.model, self.commit = _load(
            self.source, revision, self.dtype, device_map
        )
        self.model.eval()
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # the last position is every row's next token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.answer_ids = _answer_ids(tokenizer, answers)
        self.answers = tuple(answers)
        self.text = self._prompt_text(prompt, chat_template, audio_markup)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.audio_kw = _audio_kwarg(self.processor)
        self.logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _prompt_text(self, prompt: str, use_template: bool, markup: str | None) -> str:
        if markup is None:
            token = getattr(self.processor, "audio_token", None)
            if not isinstance(token, str):
                raise SubmissionError(
                    f"audio-LLM judge: the processor of '{self.source}' has no audio_token (is it "
                    "an audio-text model?); set params.audio_markup to the text that marks a clip"
                )
            bos = getattr(self.processor, "audio_bos_token", None) or ""
            eos = getattr(self.processor, "audio_eos_token", None) or ""
            markup = f"{bos}{token}{eos}"
        user = prompt.replace(PLACEHOLDER, markup)
        if not use_template:
            return user
        if not getattr(self.processor, "chat_template", None):
            raise SubmissionError(
                f"audio-LLM judge: '{self.source}' has no chat template; set "
                "params.chat_template: false to send params.prompt as it is"
            )
        messages = [{"role": "user", "content": user}]
        return str(
            self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        )

    def to(self, device: str | torch.device) -> AudioLLMJudge:
        """Move to the harness's device, unless `device_map` already placed the model."""
        if self.device_map is None:
            self.model.to(device)
        return self

    def eval(self) -> AudioLLMJudge:
        self.model.eval()
        return self

    def parameters(self) -> Any:
        return self.model.parameters()

    def fingerprint(self) -> str:
        """Prompt, answers, dtype, and the weights: the hub commit when the model came from the
        hub (a hub id alone may point at new weights), else the weights themselves, hashed."""
        h = hashlib.sha256(
            "\0".join(
                [self.source, str(self.revision), self.text, repr(self.answer_ids), str(self.dtype)]
            ).encode()
        )
        h.update(self.model.config.to_json_string(use_diff=False).encode())
        if self.commit is not None:
            h.update(f"commit:{self.commit}".encode())
        else:
            for name, tensor in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        return "audio-llm-v1-" + h.hexdigest()[:24]

    @torch.no_grad()
    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        for batch in (a, b):
            if batch.sample_rate != self.sample_rate:
                raise SubmissionError(
                    f"audio-LLM judge '{self.source}': expects {self.sample_rate} Hz, got "
                    f"{batch.sample_rate}"
                )
        if len(a) != len(b):
            raise SubmissionError(f"audio-LLM judge: {len(a)} clips A but {len(b)} clips B")
        clips_a, clips_b = _trimmed(a), _trimmed(b)
        out = [
            self._judge(clips_a[i : i + self.max_batch], clips_b[i : i + self.max_batch])
            for i in range(0, len(clips_a), self.max_batch)
        ]
        return torch.cat(out).double()

    @torch.no_grad()
    def answer_logits(self, clips_a: list[np.ndarray], clips_b: list[np.ndarray]) -> torch.Tensor:
        """float32 [n, 2]: the next-token logits of answer A and answer B, one row per pair."""
        audio = [x for pair in zip(clips_a, clips_b, strict=True) for x in pair]  # prompt order
        inputs = self.processor(
            text=[self.text] * len(clips_a),
            **{self.audio_kw: audio},
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            padding=True,
        )
        device = self.model.get_input_embeddings().weight.device
        inputs = {
            k: v.to(device, self.dtype if v.is_floating_point() else None)
            if isinstance(v, torch.Tensor)
            else v
            for k, v in inputs.items()
        }
        mask = inputs["attention_mask"]
        if not bool(mask[:, -1].all()):
            raise SubmissionError(
                f"audio-LLM judge: the processor of '{self.source}' did not left-pad the prompts"
            )
        extra = {"logits_to_keep": 1} if self.logits_to_keep else {}
        logits = self.model(**inputs, use_cache=False, **extra).logits[:, -1, :]
        return logits[:, list(self.answer_ids)].float()

    def _judge(self, clips_a: list[np.ndarray], clips_b: list[np.ndarray]) -> torch.Tensor:
        return torch.softmax(self.answer_logits(clips_a, clips_b), dim=-1)[:, 0].cpu()


def _trimmed(batch: Batch) -> list[np.ndarray]:
    """Each clip cut to its true length: the processor must never see the batch's padding."""
    x = batch.waveforms.detach().to("cpu", torch.float32).numpy()
    return [x[i, : int(n)].copy() for i, n in enumerate(batch.lengths.tolist())]


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SubmissionError(
            f"audio-LLM judge: params.{name} must be a positive int, not {value!r}"
        )
    return value


def _dtype(name: str | None) -> torch.dtype:
    """bf16 where a GPU is (a 7B model then fits in ~16 GB), float32 on CPU (bf16 is slow there)."""
    if name is None:
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if name not in DTYPES:
        raise SubmissionError(
            f"audio-LLM judge: params.dtype '{name}' is not one of {', '.join(DTYPES)}"
        )
    return DTYPES[name]


def _answer_ids(tokenizer: Any, answers: Sequence[str]) -> tuple[int, int]:
    if (
        isinstance(answers, str)
        or len(answers) != 2
        or not all(isinstance(s, str) and s for s in answers)
    ):
        raise SubmissionError(
            f"audio-LLM judge: params.answers must be two strings (clip A's, clip B's), "
            f"not {answers!r}"
        )
    ids = []
    for answer in answers:
        tokens = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(tokens) != 1:
            raise SubmissionError(
                f"audio-LLM judge: params.answers: '{answer}' is {len(tokens)} tokens for this "
                "tokenizer; each answer must be a single token"
            )
        ids.append(int(tokens[0]))
    if ids[0] == ids[1]:
        raise SubmissionError(f"audio-LLM judge: params.answers {list(answers)} are the same token")
    return ids[0], ids[1]


def _audio_kwarg(processor: Any) -> str:
    """`audio=` (transformers >= 4.5x) or, on older processors that only know it, `audios=`."""
    params = inspect.signature(processor.__call__).parameters
    return "audios" if "audios" in params and "audio" not in params else "audio"


def _load(
    source: str, revision: str | None, dtype: torch.dtype, device_map: Any
) -> tuple[Any, Any, str | None]:
    """(processor, model, hub commit or None) from a hub id or a local folder."""
    import transformers
    from transformers import AutoConfig, AutoProcessor

    path = Path(source).expanduser()
    local = path.is_absolute() or path.exists() or source.startswith((".", "~"))
    if local and not path.is_dir():
        raise SubmissionError(f"audio-LLM judge: local folder '{path}' not found")
    where = str(path) if local else source
    hub: dict[str, Any] = {"local_files_only": True} if local else {"revision": revision}
    try:
        config = AutoConfig.from_pretrained(where, **hub)
        names = [n for n in (getattr(config, "architectures", None) or []) if isinstance(n, str)]
        cls = next(
            (getattr(transformers, n) for n in names if hasattr(transformers, n)),
            transformers.AutoModelForCausalLM,
        )
        # safetensors only: a folder or hub repo with pickled weights alone is refused
        kwargs: dict[str, Any] = {**hub, _dtype_kwarg(): dtype, "use_safetensors": True}
        if device_map is not None:
            kwargs["device_map"] = device_map
        model = cls.from_pretrained(where, **kwargs)
        processor = AutoProcessor.from_pretrained(where, **hub)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise SubmissionError(
            f"audio-LLM judge: cannot load '{source}': {first_line(exc)}"
        ) from None
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise SubmissionError(
            f"audio-LLM judge: '{source}' has no audio-text processor (tokenizer + feature "
            "extractor)"
        )
    return processor, model, None if local else _commit(source, revision)


def _dtype_kwarg() -> str:
    """`dtype=` since transformers 4.56, `torch_dtype=` before."""
    from packaging.version import Version
    from transformers import __version__

    return "dtype" if Version(__version__) >= Version("4.56") else "torch_dtype"


def _commit(source: str, revision: str | None) -> str | None:
    """The hub commit the cached files came from (snapshots/<commit>/), None if unknown."""
    try:
        from transformers.utils import cached_file

        resolved = cached_file(source, "config.json", revision=revision)
    except Exception:  # offline without a cache entry, or an old layout: hash the weights
        return None
    found = re.search(r"snapshots/([0-9a-f]{40})/", str(resolved).replace("\\", "/"))
    return found.group(1) if found else None


def build(
    model: str,
    revision: str | None = None,
    prompt: str = DEFAULT_PROMPT,
    answers: Sequence[str] = DEFAULT_ANSWERS,
    dtype: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    max_batch: int = 8,
    chat_template: bool = True,
    audio_markup: str | None = None,
    **unknown: Any,
) -> AudioLLMJudge:
    if unknown:
        raise SubmissionError(f"audio-LLM judge: unknown param(s) {', '.join(sorted(unknown))}")
    return AudioLLMJudge(
        model,
        revision=revision,
        prompt=prompt,
        answers=answers,
        dtype=dtype,
        device_map=device_map,
        max_batch=max_batch,
        chat_template=chat_template,
        audio_markup=audio_markup,
    )

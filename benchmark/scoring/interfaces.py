"""What a submitted reward model implements (submitted code imports these through
`benchmark.models`, which stays). Nothing here loads or runs a submission.

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
ordered by length, then by audio SHA-256 (`scoring.order.send_order`, `scoring.order.presented_first`), so
neither the order nor the count of calls tells a model anything the audio does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from benchmark.data.batch import Batch  # re-exported: submitted code imports it from here

if TYPE_CHECKING:
    import torch


MODEL_API_VERSION = 1


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

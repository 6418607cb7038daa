"""Training-curve plot: loss per step and dev accuracy per epoch, as a byte-stable PNG.

Matplotlib stamps PNGs with its version and software tag; fixed metadata keeps the same curve the
same file, so a re-run does not change a committed plot for nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curve(curve: list[dict[str, Any]], path: str | Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark.atomic import atomic_path

    steps = [r["step"] for r in curve if "loss" in r]
    losses = [r["loss"] for r in curve if "loss" in r]
    dev = [(r["step"], r["dev_accuracy"]) for r in curve if r.get("dev_accuracy") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, color="tab:blue", linewidth=1, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if dev:
        ax2 = ax.twinx()
        ax2.plot(
            [s for s, _ in dev],
            [100 * a for _, a in dev],
            "o-",
            color="tab:red",
            label="dev accuracy",
        )
        ax2.set_ylabel("dev accuracy (%)", color="tab:red")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)

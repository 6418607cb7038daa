"""The noise ceiling in results (`benchmark.stats.ceiling`), shown by `evaluate`/`compare`, and the
reliability-filtered views (`--min-reliability`), checked against independent recomputations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark import api as mb
from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.errors import MosrmError
from benchmark.leaderboard.board import load_results, render_markdown
from benchmark.pairs.build import build_pairs
from benchmark.pairs.prepare import PreparedTask, prepare
from benchmark.pairs.reliability import CEILING_DRAWS, clip_noise, closed_form, gap_closed
from benchmark.pipeline import evaluate
from benchmark.results.report import format_result
from benchmark.results.schema import TaskResult
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import load_submission
from benchmark.stats.ceiling import ceiling_report, check_min_reliability, filter_pairs
from benchmark.stats.metrics import aggregate
from tests.rated_clips import rated_clips
from tests.toy_task import finish_repo, settle, write_wav

QUIET = ScoringConfig(progress=False)
RELATIONS = ("same_content", "same_system", "cross")


def _clips(n: int = 90, subsets: bool = False, seed: int = 0) -> pa.Table:
    """Clips rated by 4-8 simulated listeners each (integer votes); two tracks with `subsets`."""
    return rated_clips(n, seed, subsets=subsets)


def _pred(clips: pa.Table, bins: int = 4, seed: int = 1) -> tuple[pa.Table, dict]:
    """Pairs built as `prepare` builds them, scored by a seeded random model."""
    counts = {"test": {"same_content": 60, "same_system": 60, "cross": 120}}
    pairs, meta = build_pairs(
        clips, task="t", relations=RELATIONS, counts=counts, seed=seed, bins=bins
    )["test"]
    rng = np.random.default_rng(seed)
    pairs = pairs.append_column("score_a", pa.array(rng.random(pairs.num_rows)))
    pairs = pairs.append_column("score_b", pa.array(rng.random(pairs.num_rows)))
    return pairs, json.loads(json.dumps(meta))


def _keys(block: dict) -> dict:
    """The nested keys of a metrics-shaped block, down to the cells."""
    return {
        k: sorted(v) if k != "by_relation_bin" else {r: sorted(b) for r, b in v.items()}
        for k, v in block.items()
        if isinstance(v, dict) and k != "overall"
    }


@pytest.mark.parametrize("subsets", [False, True])
def test_ceiling_cells_equal_an_independent_recomputation(subsets: bool) -> None:
    clips = _clips(subsets=subsets)
    pred, meta = _pred(clips)
    bins = int(meta["bins"])
    got = ceiling_report(pred, clips, meta, bins=bins, seed=5)
    assert got is not None
    metrics = aggregate(pred, bins=bins)
    # the same cells as the metrics, by the same keys (by_task/by_split/macro aside)
    want = {k: v for k, v in _keys(metrics).items() if k not in ("by_task", "by_split", "macro")}
    assert _keys(got) == want
    assert ("by_group_subset" in got) is subsets
    assert got["estimator"] == "closed_form" and got["draws"] == CEILING_DRAWS
    assert got["confidence"] == 0.95 and got["reliability_version"] == 1

    df = pred.to_pandas()
    rel = df["label_reliability"]
    assert rel.notna().all()

    def check(cell: dict, sel: pd.Series) -> None:
        assert cell["n"] == int(sel.sum()) == cell["n_rated"]
        assert cell["ceiling"] == pytest.approx(rel[sel].mean(), abs=1e-6)
        assert 0.0 <= cell["ci_low"] <= cell["ci_high"] <= 1.0

    check(got["overall"], pd.Series(True, index=df.index))
    for b in range(bins):
        check(got["by_bin"][str(b)], df["delta_bin"] == b)
        for r in RELATIONS:
            check(got["by_relation_bin"][r][str(b)], (df["relation"] == r) & (df["delta_bin"] == b))
    for r in RELATIONS:
        check(got["by_relation"][r], df["relation"] == r)
    for k in ("dmos_lt_0_2", "dmos_le_0_5", "dmos_gt_1_5"):
        if df[k].any():
            check(got["by_subset"][k], df[k])
        else:
            assert got["by_subset"][k] is None
    for g, cell in (got.get("by_group_subset") or {}).items():
        check(cell, df["subset"] == g)
    # per-bin ceilings rise with ΔMOS: the smallest gaps are the least reliable labels
    per_bin = [got["by_bin"][str(b)]["ceiling"] for b in range(bins)]
    assert per_bin == sorted(per_bin) and per_bin[0] < 0.9
    # row order does not matter, the seed does only for the interval
    shuffled = pred.take(pa.array(np.random.default_rng(3).permutation(pred.num_rows)))
    assert ceiling_report(shuffled, clips, meta, bins=bins, seed=5) == got
    other = ceiling_report(pred, clips, meta, bins=bins, seed=6)
    assert other["overall"]["ceiling"] == got["overall"]["ceiling"]


def test_the_interval_is_the_oracles_accuracy_over_posterior_draws() -> None:
    """Simulated here independently: each clip's true mean drawn once per draw (MOS + SE·t(df)),
    shrunk by the pair file's prior per relation, the oracle scored against the observed order;
    the interval is the draws' central 95%, moved to centre on the ceiling."""
    clips = _clips(n=120, seed=4)
    pred, meta = _pred(clips, seed=2)
    got = ceiling_report(pred, clips, meta, bins=int(meta["bins"]), seed=9)
    noise = clip_noise(clips)
    df = pred.to_pandas()
    index = {c: i for i, c in enumerate(clips.column("clip_id").to_pylist())}
    a = df["clip_a"].map(index).to_numpy()
    b = df["clip_b"].map(index).to_numpy()
    rng = np.random.default_rng(123)
    draws = 4000
    err = np.sqrt(noise.var / noise.n)[:, None] * rng.standard_t(
        noise.df[:, None], (len(index), draws)
    )
    tau2 = df["relation"].map(lambda r: meta["label_reliability"]["prior_sd"][r]["null"] ** 2)
    u = noise.var[a] / noise.n[a] + noise.var[b] / noise.n[b]
    k = (tau2.to_numpy() / (tau2.to_numpy() + u))[:, None]
    delta = (df["mos_a"] - df["mos_b"]).to_numpy()[:, None]
    correct = np.sign(k * delta + np.sqrt(k) * (err[a] - err[b])) == np.sign(delta)
    for name, sel in [("overall", np.ones(len(df), bool))] + [
        (r, (df["relation"] == r).to_numpy()) for r in RELATIONS
    ]:
        cell = got["overall"] if name == "overall" else got["by_relation"][name]
        acc = correct[sel].mean(axis=0)
        # the mean reliability is the oracle's expected accuracy under the same model
        assert cell["ceiling"] == pytest.approx(acc.mean(), abs=0.02)
        # the draws' spread, centred on the ceiling (reliability.ceiling_cells)
        shift = cell["ceiling"] - acc.mean()
        low = min(max(np.quantile(acc, 0.025) + shift, 0.0), cell["ceiling"])
        high = max(min(np.quantile(acc, 0.975) + shift, 1.0), cell["ceiling"])
        assert cell["ci_low"] == pytest.approx(low, abs=0.015)
        assert cell["ci_high"] == pytest.approx(high, abs=0.015)


def test_no_reliability_gives_a_null_block() -> None:
    clips = _clips()
    pred, meta = _pred(clips)
    assert (
        ceiling_report(
            pred, clips, {**meta, "label_reliability": {"estimator": None}}, bins=4, seed=1
        )
        is None
    )
    nulls = pred.set_column(
        pred.schema.get_field_index("label_reliability"),
        "label_reliability",
        pa.nulls(pred.num_rows, pa.float64()),
    )
    assert ceiling_report(nulls, clips, meta, bins=4, seed=1) is None
    # a cell whose pairs are all unrated is null; an empty bin too, but it has its key
    some = pred.set_column(
        pred.schema.get_field_index("label_reliability"),
        "label_reliability",
        pa.array(
            [
                None if r == "cross" else v
                for r, v in zip(
                    pred.column("relation").to_pylist(),
                    pred.column("label_reliability").to_pylist(),
                    strict=True,
                )
            ],
            pa.float64(),
        ),
    )
    got = ceiling_report(some, clips, meta, bins=7, seed=1)
    assert got["by_relation"]["cross"] is None
    assert got["overall"]["n"] == pred.num_rows
    assert got["overall"]["n_rated"] == pred.num_rows - int(
        (np.array(pred.column("relation").to_pylist()) == "cross").sum()
    )
    assert set(got["by_bin"]) == {str(b) for b in range(7)}
    assert got["by_bin"]["6"] is None


def test_thresholds_and_filtering() -> None:
    for bad in (0.5, 0.2, 1.01, float("nan"), True, "0.9", None):
        with pytest.raises(MosrmError, match=r"min_reliability must be .*\(0\.5, 1\]") as exc:
            check_min_reliability(bad)
        assert "\n" not in str(exc.value)
    assert check_min_reliability(1) == 1.0
    clips = _clips()
    pred, _ = _pred(clips)
    rel = np.array(pred.column("label_reliability").to_pylist(), dtype=float)
    rel[:5] = np.nan
    pairs = pred.set_column(
        pred.schema.get_field_index("label_reliability"),
        "label_reliability",
        pa.array(rel, pa.float64(), mask=np.isnan(rel)),
    )
    kept, record = filter_pairs(pairs, 0.9, source="p.parquet")
    want = np.flatnonzero(rel >= 0.9)
    assert kept.column("pair_id").to_pylist() == [pairs.column("pair_id")[i].as_py() for i in want]
    assert record == {"min": 0.9, "kept": want.size, "of": pairs.num_rows, "unrated": 5}
    assert np.nanmax(rel) < 1.0
    with pytest.raises(MosrmError, match=r"p\.parquet: no pair has 'label_reliability' >= 1\.0"):
        filter_pairs(pairs, 1.0, source="p.parquet")
    none = pairs.set_column(
        pairs.schema.get_field_index("label_reliability"),
        "label_reliability",
        pa.nulls(pairs.num_rows, pa.float64()),
    )
    with pytest.raises(MosrmError, match=r"p\.parquet: column 'label_reliability' is null"):
        filter_pairs(none, 0.9, source="p.parquet")


# ---------------------------------------------------------------- evaluate, the board, the CLI


@pytest.fixture
def rated(tmp_path) -> tuple[Path, PreparedTask]:
    """A CSV task whose clips carry rating counts and standard deviations (5 systems x 8
    sentences, 140 test pairs), prepared without resampling; returns (repo, prepared)."""
    base = tmp_path / "rated"
    repo, data = base / "repo", base / "data"
    rng = np.random.default_rng(11)
    rows = ["wav,mos,system,sentence,votes,std"]
    for s in range(5):
        for c in range(8):
            name = f"wav/s{s}_c{c}.wav"
            write_wav(data / name, seconds=0.3 + 0.04 * c, seed=8 * s + c, amp=0.05 + 0.05 * s)
            mos = round(float(np.clip(1.8 + 0.6 * s + rng.normal(0, 0.4), 1, 5)), 3)
            votes = int(rng.integers(4, 9))
            rows.append(f"{name},{mos},sys{s},sent{c},{votes},{rng.uniform(0.5, 1.0):.3f}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    pairs = {"test": {"same_content": 40, "same_system": 40, "cross": 60}}
    finish_repo(repo, data, pairs=pairs, bins=4, seed=3, split_column=False)
    spec_path = repo / "tasks" / "toy.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["data"]["options"]["columns"].update(n_ratings="votes", rating_std="std")
    spec_path.write_text(yaml.safe_dump(spec))
    settle(data)
    task = load_task_file(spec_path)
    return repo, prepare(task, out_dir=base / "prepared", resample=False)


def _accuracy(pairs: pd.DataFrame, scores: pd.DataFrame) -> tuple[int, int]:
    """(correct, n) of the strict rule, from the pair rows and a model's scores by pair id."""
    df = pairs.merge(scores, on="pair_id")
    chosen = np.where(df["chosen"] == "a", df["score_a"], df["score_b"])
    rejected = np.where(df["chosen"] == "a", df["score_b"], df["score_a"])
    return int((chosen > rejected).sum()), len(df)


def test_filtered_results_are_the_kept_pairs_and_never_reach_the_board(rated, tmp_path) -> None:
    repo, prepared = rated
    root = tmp_path / "results"
    subs = {
        n: load_submission(repo / "submissions" / n)
        for n in ("shortcut-loudness", "shortcut-random", "shortcut-duration")
    }
    full = {
        n: evaluate(subs[n], prepared, results_root=root, config=QUIET)
        for n in ("shortcut-loudness", "shortcut-random")
    }
    pair_df = prepared.pairs("test").to_pandas()
    rel = pair_df["label_reliability"]
    assert rel.notna().all() and (rel < 0.9).any() and (rel >= 0.9).any()
    # the full result's ceiling is the mean reliability of its pairs
    assert full["shortcut-loudness"]["ceiling"]["overall"]["ceiling"] == pytest.approx(
        rel.mean(), abs=1e-6
    )
    before = render_markdown(root, repo / "submissions")

    got = evaluate(
        subs["shortcut-loudness"], prepared, results_root=root, config=QUIET, min_reliability=0.9
    )
    folder = root / "shortcut-loudness"
    assert (folder / "toy.min-rel-0.9.json").is_file()
    assert (folder / "toy.min-rel-0.9.predictions.parquet").is_file()
    assert (folder / "toy.min-rel-0.9.run.json").is_file()
    kept = pair_df[rel >= 0.9]
    assert got["reliability_filter"] == {
        "min": 0.9,
        "kept": len(kept),
        "of": len(pair_df),
        "unrated": 0,
    }
    assert got["n_pairs"] == len(kept) and got["bins"] == full["shortcut-loudness"]["bins"]
    assert set(got["metrics"]["by_bin"]) == {str(b) for b in range(got["bins"])}
    # the filtered accuracy, recomputed from the full run's scores on the kept pairs
    scores = pq.read_table(folder / "toy.predictions.parquet").to_pandas()[
        ["pair_id", "score_a", "score_b"]
    ]
    correct, n = _accuracy(kept, scores)
    assert got["metrics"]["overall"]["n"] == n == len(kept)
    assert got["metrics"]["overall"]["accuracy"] == pytest.approx(correct / n, abs=1e-6)
    for b, cell in got["metrics"]["by_bin"].items():
        sub = kept[kept["delta_bin"] == int(b)]
        c, m = _accuracy(sub, scores)
        assert cell["n"] == m and (m == 0 or cell["accuracy"] == pytest.approx(c / m, abs=1e-6))
    assert got["ceiling"]["overall"]["ceiling"] == pytest.approx(
        kept["label_reliability"].mean(), abs=1e-6
    )
    TaskResult.load(folder / "toy.min-rel-0.9.json")  # the schema knows the record

    # filtered runs beside full ones, of a submission with no full result, and quick ones:
    # the default board does not move by a byte
    evaluate(
        subs["shortcut-duration"], prepared, results_root=root, config=QUIET, min_reliability=0.95
    )
    evaluate(
        subs["shortcut-random"],
        prepared,
        results_root=root,
        config=QUIET,
        min_reliability=0.9,
        limit=5,
    )
    assert (root / "shortcut-random" / "toy.min-rel-0.9.partial.json").is_file()
    assert render_markdown(root, repo / "submissions").encode() == before.encode()
    assert {r["submission"] for r in load_results(root)} == {"shortcut-loudness", "shortcut-random"}
    assert len(mb.load_results(root)) == 2
    assert len(mb.load_results(root, filtered=True)) == 4
    assert len(mb.load_results(root, filtered=True, partial=True)) == 5
    # a filtered result renamed into a full one's place is refused, not shown
    dur = root / "shortcut-duration"
    (dur / "toy.min-rel-0.95.json").rename(dur / "toy.json")
    (dur / "toy.min-rel-0.95.predictions.parquet").rename(dur / "toy.predictions.parquet")
    with pytest.raises(MosrmError, match="toy.json: field 'reliability_filter' is set"):
        render_markdown(root, repo / "submissions")


def test_cli_shows_the_ceiling_filters_and_compares(rated, capsys) -> None:
    repo, _ = rated
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "shortcut-random"]
    args += ["--task", "toy", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    results = repo / "results"  # the workspace's
    record = json.loads((results / "shortcut-loudness" / "toy.json").read_text())
    ceiling = record["ceiling"]
    assert "ceiling [95% range]" in out and "of gap" in out
    # each row shows its own cell's ceiling and the share of the gap the model closes
    for b, top in ceiling["by_bin"].items():
        acc = record["metrics"]["by_bin"][b]["accuracy"]
        line = next(x for x in out.splitlines() if x.strip().startswith(f"bin {b} "))
        want = f"{100 * top['ceiling']:.1f} [{100 * top['ci_low']:.1f}, {100 * top['ci_high']:.1f}]"
        assert want in line
        share = gap_closed(acc, top["ceiling"], top["ci_low"])
        assert line.rstrip().endswith("–" if share is None else f"{100 * share:.0f}%")
    assert "ceiling: accuracy of an oracle knowing the true means" in out
    assert "ceiling [" not in format_result({**record, "ceiling": None})  # e.g. a version 1 file

    assert main([*args, "--min-reliability", "0.9"]) == 0
    out = capsys.readouterr().out
    filtered = json.loads((results / "shortcut-loudness" / "toy.min-rel-0.9.json").read_text())
    f = filtered["reliability_filter"]
    assert out.count(f"reliability-filtered: {f['kept']} of {f['of']} pairs") == 4  # 2 x 2 banners
    # compare: full results, then the two filtered at the same threshold
    cmp = ["--repo", str(repo), "compare", "shortcut-loudness", "shortcut-random", "--task", "toy"]
    assert main(cmp) == 0
    out = capsys.readouterr().out
    head = next(x for x in out.splitlines() if x.rstrip().endswith("ceiling [95% range]"))
    assert "p (adj.)" in head
    top = ceiling["by_bin"]["0"]
    line = next(x for x in out.splitlines() if x.strip().startswith("bin 0 "))
    assert line.rstrip().endswith(
        f"{100 * top['ceiling']:.1f} [{100 * top['ci_low']:.1f}, {100 * top['ci_high']:.1f}]"
    )
    assert main([*cmp, "--min-reliability", "0.9"]) == 0
    out = capsys.readouterr().out
    assert f"reliability-filtered: {f['kept']} of {f['of']}" in out
    assert f"{f['kept']} pairs" in out.splitlines()[1]
    # one relation only: its bins read that relation's ceiling
    assert main([*cmp, "--relation", "same_system"]) == 0
    out = capsys.readouterr().out
    top = ceiling["by_relation_bin"]["same_system"]["1"]
    line = next(x for x in out.splitlines() if x.strip().startswith("bin 1 "))
    assert line.rstrip().endswith(
        f"{100 * top['ceiling']:.1f} [{100 * top['ci_low']:.1f}, {100 * top['ci_high']:.1f}]"
    )
    assert main([*cmp, "--min-reliability", "0.95"]) == 2
    err = capsys.readouterr().err
    assert "toy.min-rel-0.95.predictions.parquet: no predictions" in err
    assert "--min-reliability 0.95" in err and len(err.strip().splitlines()) == 1
    for bad in ("0.5", "0.3", "1.5", "nan", "x"):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--min-reliability", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert "argument --min-reliability" in err[-1] and "(0.5, 1]" in err[-1]
    with pytest.raises(MosrmError, match=r"min_reliability must be in \(0\.5, 1\], got 0\.2"):
        mb.evaluate(object(), ["toy"], min_reliability=0.2, repo=repo)


@pytest.mark.parametrize("subsets", [False, True])
def test_the_prior_is_the_pair_files_per_relation_and_subset(subsets, monkeypatch) -> None:
    """The τ² handed to the ceiling is prior_sd² of the pair's relation and subset, and with it
    the closed form gives back the pair file's own reliabilities: the builder's model."""
    import benchmark.stats.ceiling as ceiling_module

    seen = {}
    real = ceiling_module.ceiling_cells

    def spy(noise, a, b, rel, masks, tau2, **kw):
        seen.update(noise=noise, a=a, b=b, rel=rel, tau2=tau2)
        return real(noise, a, b, rel, masks, tau2, **kw)

    monkeypatch.setattr(ceiling_module, "ceiling_cells", spy)
    clips = _clips(subsets=subsets)
    pred, meta = _pred(clips)
    ceiling_report(pred, clips, meta, bins=int(meta["bins"]), seed=1)
    df = pred.to_pandas().sort_values("pair_id", kind="stable")
    prior = meta["label_reliability"]["prior_sd"]
    subset = pred.column("subset").to_pylist()
    order = np.argsort(np.array(pred.column("pair_id").to_pylist()), kind="stable")
    relation = pred.column("relation").to_pylist()
    want = [prior[relation[i]]["null" if subset[i] is None else subset[i]] ** 2 for i in order]
    np.testing.assert_allclose(seen["tau2"], want, rtol=0, atol=0)
    assert len(set(want)) == (6 if subsets else 3)
    again = closed_form(seen["noise"], seen["a"], seen["b"], seen["tau2"])
    np.testing.assert_allclose(again, df["label_reliability"], atol=2e-5)
    np.testing.assert_allclose(seen["rel"], df["label_reliability"], atol=0)


def test_of_gap_needs_a_ceiling_clear_of_chance() -> None:
    """The "of gap" share only where the ceiling's lower bound clears 50% by `GAP_MARGIN` (issue 23: a
    one-pair quick run printed 104% and -224%)."""
    from benchmark.pairs.reliability import GAP_MARGIN

    assert gap_closed(0.7, 0.8, 0.6) == pytest.approx(2 / 3, abs=1e-6)
    assert gap_closed(0.7, 0.8, 0.5 + GAP_MARGIN) == pytest.approx(2 / 3, abs=1e-6)
    assert gap_closed(0.7, 0.8, 0.5 + GAP_MARGIN - 1e-9) is None
    assert gap_closed(0.52, 0.51, 0.40) is None and gap_closed(0.9, 0.6, None) is None


def test_a_result_without_a_ceiling_says_why(tmp_path, capsys) -> None:
    """A CSV task without rating counts: no ceiling column, and one line naming the columns that
    would give one (never a silent gap)."""
    from benchmark.results.report import NO_CEILING
    from tests.toy_task import write_toy_repo

    repo = write_toy_repo(tmp_path)  # no votes/std columns
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "--task", "toy"]
    assert main([*args, "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "ceiling [" not in out and NO_CEILING in out
    assert "`n_ratings` and `rating_std`" in NO_CEILING

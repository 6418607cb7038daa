"""Data cards: every number checked against an independent reading of the prepared files."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from benchmark.cards.card import Card, escape_cell, render_card, write_card
from benchmark.data.corpora._native import Skip
from benchmark.data.tables import FIXED_SUBSETS
from benchmark.data.tasks import TaskSpec, load_task_file
from benchmark.errors import MosrmError
from benchmark.pairs.prepare import prepare
from benchmark.pairs.reliability import ESTIMATORS

SVG = "{http://www.w3.org/2000/svg}"
RATE = 16000


def _spec(data: Path, **patch: object) -> dict:
    spec = {
        "name": "toy",
        "version": 3,
        "description": "tiny generated CSV task for the card tests",
        "reader": "csv",
        "data": {
            "root": str(data),
            "options": {
                "file": "scores.csv",
                "columns": {
                    "audio": "wav",
                    "score": "mos",
                    "system": "system",
                    "content": "sentence",
                    "split": "split",
                    "subset": "track",
                    "n_ratings": "votes",
                },
            },
        },
        "relations": ["same_content", "same_system", "cross"],
        "pairs": {
            "train": {"same_content": 6, "same_system": "all", "cross": 10_000},
            "test": {"same_content": 5, "same_system": 8, "cross": 12},
        },
        "bins": 4,
        "seed": 11,
        "license": "CC-BY-4.0",
        "citation": "Toy, A. (2026). ``A toy corpus``. Proc. Nothing.",
        "url": "https://example.org/toy",
        "card": {
            "source": "Generated in tmp_path by tests/test_cards.py",
            "redistribution": "Nothing to redistribute: it only lives for one test.",
            "published_clips": {"train": 12, "test": 99},
            "notes": "Hand-written note about the toy corpus.",
        },
    }
    spec.update(patch)
    return spec


@pytest.fixture
def toy(tmp_path, write_wav):
    """3 systems x 8 sentences (train: s0-s3, test: s4-s7), two tracks, MOS on a 0.1 grid."""
    data = tmp_path / "data"
    rng = np.random.default_rng(5)
    rows = ["wav,mos,system,sentence,split,track,votes"]
    for s in range(3):
        for c in range(8):
            name = f"wav/s{s}_c{c}.wav"
            write_wav(data / name, seconds=0.05 + 0.01 * c, sr=RATE, seed=s * 8 + c)
            # 0.1 steps with ties, so ΔMOS lands exactly on histogram bar edges
            mos = round(1.5 + 0.8 * s + 0.1 * int(rng.integers(0, 6)), 1)
            split = "train" if c < 4 else "test"
            rows.append(f"{name},{mos},sys{s},sent{c},{split},t{c % 2},{4 + s}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    return tasks, data


def _task(tasks: Path, data: Path, **patch: object):
    path = tasks / "toy.yaml"
    path.write_text(yaml.safe_dump(_spec(data, **patch), allow_unicode=True))
    return load_task_file(path)


def _section(md: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = md.index(heading + "\n")
    rest = md[start + len(heading) + 1 :]
    stop = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.M)
    return rest[: stop.start()] if stop else rest


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in `text`: rows of cells (header first, rule rows dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if all(re.fullmatch(r"-+:?", c) for c in cells):
            continue
        if current is None:
            current = []
            tables.append(current)
        current.append(cells)
    return tables


def _num(cell: str) -> int:
    return int(cell.split(" ")[0].replace(",", ""))


def _pairs_df(prepared, split: str):
    return pq.read_table(prepared.pair_files[split]).to_pandas()


def test_pair_counts_bins_and_sha_match_the_pair_files(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    md = render_card(task, prepared).markdown
    for split in ("train", "test"):
        df = _pairs_df(prepared, split)
        meta = prepared.pair_meta[split]
        part = _section(md, f"### Split {split}")
        counts, bins, fixed, subsets = _tables(part)

        by_rel = df.groupby("relation").size().to_dict()
        rows = {r[0].strip("`"): r for r in counts[1:]}
        for rel in ("same_content", "same_system", "cross"):
            info = meta["relations"][rel]
            assert _num(rows[rel][3]) == by_rel.get(rel, 0)
            assert _num(rows[rel][2]) == info["available"]
            assert rows[rel][1].replace(",", "") == str(info["target"])
            if "shortfall" in info:
                assert f"short by {info['target'] - by_rel[rel]:,}" in rows[rel][4]
            else:
                assert rows[rel][4] == "—"
        assert _num(rows["**total**"][3]) == len(df)

        edges = ", ".join(f"{e:.3f}" for e in meta["bin_edges"])
        assert f"edges {edges}." in part
        assert len(bins[0]) == task.spec.bins + 2
        per_bin = df.groupby(["relation", "delta_bin"]).size()
        for row in bins[1:-1]:
            rel = row[0].strip("`")
            got = [_num(c) for c in row[1:-1]]
            want = [int(per_bin.get((rel, b), 0)) for b in range(task.spec.bins)]
            assert got == want
        assert [_num(c) for c in bins[-1][1:-1]] == meta["bin_counts"]

        for row in fixed[1:]:
            rel = row[0].strip("`")
            sel = df if rel == "**all**" else df[df.relation == rel]
            for cell, flag in zip(row[1:-1], FIXED_SUBSETS, strict=True):
                assert _num(cell) == int(sel[flag].sum()), (split, rel, flag)
            assert _num(row[-1]) == len(sel)
        assert fixed[0][1:-1] == ["ΔMOS &lt; 0.2", "ΔMOS ≤ 0.5", "ΔMOS &gt; 1.5"]

        sub_pairs = df.groupby(["subset", "relation"]).size()
        clips = prepared.clips.to_pandas()
        sub_clips = clips[clips.split == split].groupby("subset").size()
        rels = [c.strip("`") for c in subsets[0][2:-1]]
        assert [r[0] for r in subsets[1:]] == ["t0", "t1"]
        for row in subsets[1:]:
            assert _num(row[1]) == sub_clips[row[0]]
            assert [_num(c) for c in row[2:-1]] == [
                int(sub_pairs.get((row[0], r), 0)) for r in rels
            ]
            assert _num(row[-1]) == int((df.subset == row[0]).sum())

    files = {r[0]: r for r in _tables(_section(md, "## Pair files"))[0][1:]}
    for split, path in prepared.pair_files.items():
        assert files[split][3] == f"`{hashlib.sha256(path.read_bytes()).hexdigest()}`"
        assert _num(files[split][2]) == pq.read_metadata(path).num_rows


def test_clip_counts_published_counts_and_split_details(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    md = render_card(task, prepared).markdown
    clips = prepared.clips.to_pandas()
    (table,) = _tables(_section(md, "## Clips per split"))
    rows = {r[0]: r for r in table[1:]}
    for split, n in clips.groupby("split").size().items():
        assert _num(rows[split][1]) == n
    assert _num(rows["train"][2]) == 12 and rows["train"][3] == "matches"
    assert _num(rows["test"][2]) == 99
    assert rows["test"][3] == f"**DIFFERS** ({12 - 99:+,})"
    assert "**1 split(s) differ from the published count**" in md

    (details,) = _tables(_section(md, "## Split details"))
    rows = {r[0]: r for r in details[1:]}
    for split, part in clips.groupby("split"):
        row = rows[split]
        assert _num(row[1]) == part.system_id.nunique()
        assert _num(row[2]) == part.content_id.nunique()
        assert row[4] == f"16 kHz ({len(part)})"
        # the source files (clip ids are the CSV's paths), not the 16 kHz cache
        seconds = sum(sf.info(str(toy[1] / c)).duration for c in part.clip_id)
        hours, per_clip = re.fullmatch(r"([\d.]+) h \(([\d.]+) s/clip\)", row[5]).groups()
        assert float(hours) == pytest.approx(seconds / 3600, abs=0.0051)
        assert float(per_clip) == pytest.approx(seconds / len(part), abs=0.0051)
        assert row[6].startswith(f"{part.mos.mean():.3f} ")


def test_histogram_svg_is_xml_and_bars_follow_the_counts(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    card = render_card(task, prepared)
    assert card.svg is not None
    assert f"![ΔMOS histogram of the sampled pairs]({card.svg_name})" in card.markdown
    root = ET.fromstring(card.svg.encode())
    assert root.tag == f"{SVG}svg"
    assert "toy" in root.find(f"{SVG}title").text
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0", "0.5", "1", "2", "4"} <= set(texts)
    assert "pairs" in texts
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert bars
    for split in ("train", "test"):
        delta = _pairs_df(prepared, split).delta_mos.to_numpy()
        # integer nano-units with integer edges: exact bar membership, no float edge noise
        expected, _ = np.histogram(
            np.rint(delta * 1e9).astype(np.int64), bins=np.arange(0, 41) * 100_000_000
        )
        heights = np.zeros(40)
        for r in bars:
            if r.get("data-split") == split:
                heights[int(r.get("data-bin"))] += float(r.get("height"))
        assert expected.sum() == len(delta) > 0
        px_per_pair = heights.sum() / expected.sum()
        # proportional up to the 0.01 px rounding of each stacked segment
        np.testing.assert_allclose(heights, expected * px_per_pair, rtol=0, atol=0.03)
        assert (heights[expected == 0] == 0).all()
        # the inner percentile-bin edges of the split are drawn where the pair metadata puts them
        panel = next(g for g in root.iter(f"{SVG}g") if g.get("data-split") == split)
        drawn = [
            float(x.get("data-edge"))
            for x in panel.iter(f"{SVG}line")
            if x.get("class") == "bin-edge"
        ]
        inner = prepared.pair_meta[split]["bin_edges"][1:-1]
        np.testing.assert_allclose(drawn, inner, atol=5e-4)


def test_output_is_byte_identical_and_machine_independent(toy, tmp_path):
    task = _task(*toy)
    first = prepare(task, out_dir=tmp_path / "p1")
    second = prepare(task, out_dir=tmp_path / "p2")
    a = write_card(task, first, tmp_path / "cards1")
    b = write_card(task, second, tmp_path / "cards2")
    assert [p.name for p in a] == [p.name for p in b] == ["toy.md", "toy-delta-mos.svg"]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
    assert sorted(p.name for p in (tmp_path / "cards1").iterdir()) == sorted(p.name for p in a)
    text = a[0].read_text()
    assert str(tmp_path) not in text and str(tmp_path) not in a[1].read_text()
    assert "absolute path set in the task YAML, not shown" in text


def test_static_information_and_notes(toy, tmp_path):
    task = _task(*toy)
    md = render_card(task, prepare(task, out_dir=tmp_path / "prep")).markdown
    assert md.startswith("# Data card: `toy`\n")
    assert "tiny generated CSV task for the card tests" in md
    assert "| Task version | 3 |" in md and "| Seed | 11 |" in md
    assert "| Licence | CC-BY-4.0 |" in md and "| URL | https://example.org/toy |" in md
    assert "Generated in tmp\\_path" not in md  # prose keeps Markdown, only tables escape it
    assert "Generated in tmp_path by tests/test_cards.py" in md
    assert "Redistribution: Nothing to redistribute" in md
    # the citation holds a double backtick: the fence must be longer than it
    assert "```text\nToy, A. (2026). ``A toy corpus``. Proc. Nothing.\n```" in md
    assert _section(md, "## Notes").strip() == "Hand-written note about the toy corpus."
    assert "SYNTHETIC" not in md


def test_synthetic_warning_and_missing_card_section(toy, tmp_path):
    task = _task(*toy, synthetic=True, card=None)
    card = render_card(task, prepare(task, out_dir=tmp_path / "prep"))
    assert card.markdown.startswith("# Data card: `toy` (SYNTHETIC)\n")
    assert "**SYNTHETIC DATA.**" in card.markdown
    assert "SYNTHETIC" in ET.fromstring(card.svg.encode()).find(f"{SVG}title").text
    assert "Redistribution: not documented" in card.markdown
    assert "Not documented (no `card` section)." in card.markdown
    assert "The task YAML lists no published clip counts" not in card.markdown
    assert "## Notes" not in card.markdown


def test_skips_are_rendered_with_counts_and_examples(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    skips = [
        Skip.of("no quality score", [f"x{i}" for i in range(7)]),
        Skip.of("no content key: joins same_system and cross only", ["k1", "k0"], kept=True),
    ]
    md = render_card(task, dataclasses.replace(prepared, skips=skips)).markdown
    part = _section(md, "## Clips left out by the reader")
    assert "7 clip(s) left out, 2 kept with a caveat (2 reason(s))" in part
    (table,) = _tables(part)
    assert table[1] == ["no quality score", "7", "left out", "x0, x1, x2, x3, x4, …"]
    assert table[2][1:] == ["2", "kept with a caveat", "k0, k1"]
    assert "None: the reader kept every clip" in render_card(task, prepared).markdown


def test_absent_data_card_keeps_static_info_and_marks_computed_sections(toy, tmp_path):
    task = _task(*toy)
    out = tmp_path / "cards"
    out.mkdir()
    (out / "toy-delta-mos.svg").write_text("<svg/>")  # from an earlier run with data
    paths = write_card(task, None, out, absent_reason="no copy of the toy corpus here")
    assert paths == [out / "toy.md"]
    assert not (out / "toy-delta-mos.svg").exists()
    md = paths[0].read_text()
    assert render_card(task, None, absent_reason="no copy of the toy corpus here") == Card(
        name="toy", markdown=md, svg=None
    )
    for text in (
        "tiny generated CSV task",
        "Generated in tmp_path",
        "Redistribution: Nothing to redistribute",
        "| Task version | 3 |",
        "| Seed | 11 |",
        "| Licence | CC-BY-4.0 |",
        "``A toy corpus``",
        "Hand-written note",
    ):
        assert text in md, text
    marker = "not computed: no copy of the toy corpus here."
    for heading in (
        "## Clips per split",
        "## Clips left out by the reader",
        "## Pairs",
        "## ΔMOS histogram",
        "## Label reliability and noise ceiling",
        "## Pair files",
    ):
        part = _section(md, heading)
        assert marker in part, heading
        assert "`mosrm download toy`" in part and "`mosrm card toy --labels-only`" in part
    (published,) = _tables(_section(md, "## Clips per split"))
    assert published[1:] == [
        ["train", "12 (published, not verified)"],
        ["test", "99 (published, not verified)"],
    ]
    targets = _tables(_section(md, "## Pairs"))[0]
    assert targets[0] == ["split", "same_content", "same_system", "cross"]
    assert targets[1] == ["train", "6", "all", "10,000"]
    assert "sha256" not in md and ".svg" not in md
    assert "not computed: the corpus data was not available" in render_card(task, None).markdown


def test_labels_only_card_says_audio_was_not_probed(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, labels_only=True, out_dir=tmp_path / "prep")
    md = render_card(task, prepared).markdown
    (details,) = _tables(_section(md, "## Split details"))
    for row in details[1:]:
        assert row[4] == row[5] == "not probed (labels-only)"
    assert "labels only: the audio was not probed" in md
    full = render_card(task, prepare(task, out_dir=tmp_path / "full")).markdown
    assert _section(md, "## Pairs") == _section(full, "## Pairs")


def test_corpus_text_is_escaped_in_markdown_and_svg(toy, tmp_path):
    tasks, data = toy
    csv = data / "scores.csv"
    evil_split = "te<st>&|x'"
    evil_subset = "<b>t|1</b>"
    text = csv.read_text().replace(",test,", f",{evil_split},").replace(",t1,", f",{evil_subset},")
    csv.write_text(text)
    pairs = _spec(data)["pairs"]
    pairs[evil_split] = pairs.pop("test")
    task = _task(
        tasks,
        data,
        pairs=pairs,
        eval_split=evil_split,
        description="A <script>alert(1)</script> description",
        card={
            "source": "s",
            "redistribution": "r",
            "notes": "<script>x</script> | y, but `-v <voice>` and <https://example.org/a> stay"
            "\n\n```sh\nrun <x>",
        },
    )
    prepared = prepare(task, out_dir=tmp_path / "prep")
    reason = "bad <script>alert(2)</script> | reason\nsecond line"
    skips = [Skip.of(reason, ["id|<i>one</i>", "id_two"])]
    card = render_card(task, dataclasses.replace(prepared, skips=skips))
    md = card.markdown
    assert "<script>" not in md and "<b>" not in md and "<i>" not in md
    assert "A &lt;script>alert(1)&lt;/script> description" in md
    assert _section(md, "## Notes").strip() == (
        "&lt;script>x&lt;/script> | y, but `-v <voice>` and <https://example.org/a> stay\n\n"
        "```sh\nrun <x>\n```"
    )
    (table,) = _tables(_section(md, "## Clips left out by the reader"))
    assert len(table[1]) == 4  # escaped pipes and newlines keep the row at four cells
    assert table[1][0] == escape_cell(reason)
    assert "\\|" in table[1][0] and "second line" in table[1][0]
    subsets = _tables(_section(md, "### Split te&lt;st&gt;&amp;\\|x'"))[3]
    assert [r[0] for r in subsets[1:]] == ["&lt;b&gt;t\\|1&lt;/b&gt;", "t0"]

    root = ET.fromstring(card.svg.encode())  # parses: nothing unescaped
    assert "<script>" not in card.svg
    splits = {g.get("data-split") for g in root.iter(f"{SVG}g")}
    assert splits == {"train", evil_split}
    assert any(
        t.text == f"split {evil_split}: {prepared.pair_meta[evil_split]['n_pairs']:,} pairs"
        for t in root.iter(f"{SVG}text")
    )


def test_escape_cell_neutralises_markdown_table_syntax():
    assert escape_cell("a|b") == "a\\|b"
    assert escape_cell("one\ntwo\r\nthree") == "one two three"
    assert escape_cell("<x> & `y` *z*") == "&lt;x&gt; &amp; \\`y\\` \\*z\\*"


def test_tampered_or_stale_pair_files_are_refused(toy, tmp_path):
    task = _task(*toy)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    path = prepared.pair_files["test"]
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    with pytest.raises(MosrmError, match=r"pairs-test\.parquet: sha256 .*mosrm prepare toy"):
        render_card(task, prepared)
    newer = _task(*toy, version=4)
    fresh = prepare(task, out_dir=tmp_path / "prep2")
    with pytest.raises(MosrmError, match="built for task version 3, the task YAML is version 4"):
        render_card(newer, dataclasses.replace(fresh, task=newer))
    with pytest.raises(MosrmError, match="given the prepared data of 'toy'"):
        render_card(_renamed(toy, "other"), fresh)


def _renamed(toy, name: str):
    tasks, data = toy
    path = tasks / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_spec(data, name=name)))
    return load_task_file(path)


def test_balanced_subsets_and_count_overrides_are_reported(toy, tmp_path):
    task = _task(*toy, balance_subsets=True)
    prepared = prepare(task, out_dir=tmp_path / "prep", counts={"test": {"cross": 4}})
    md = render_card(task, prepared).markdown
    assert "| Subset balancing | yes |" in md
    part = _section(md, "### Split test")
    assert "**Non-standard pair set**: counts overridden when it was prepared (cross: 4)" in part
    assert "counts overridden" not in _section(md, "### Split train")
    balanced = _tables(part)[4]
    assert balanced[0] == ["subset", "relation", "target", "available pool", "sampled", "shortfall"]
    df = _pairs_df(prepared, "test")
    per = df.groupby(["subset", "relation"]).size()
    meta = prepared.pair_meta["test"]["relations"]
    for row in balanced[1:]:
        sub, rel = row[0], row[1].strip("`")
        info = meta[rel]["subsets"][sub]
        assert _num(row[4]) == int(per.get((sub, rel), 0))
        assert row[2].replace(",", "") == str(info["target"])
        assert _num(row[3]) == info["available"]
    cross = {r[0]: _num(r[2]) for r in balanced[1:] if r[1] == "`cross`"}
    assert cross == {"t0": 2, "t1": 2}


def test_merged_percentile_bins_are_stated(toy, tmp_path):
    """Asking for more bins than distinct ΔMOS percentiles: the card says how many were made."""
    task = _task(*toy, bins=40)
    prepared = prepare(task, out_dir=tmp_path / "prep")
    md = render_card(task, prepared).markdown
    meta = prepared.pair_meta["test"]
    made = meta["bins"]
    assert made < 40 and meta["bins_requested"] == 40 and len(meta["bin_edges"]) == made + 1
    part = _section(md, "### Split test")
    assert f"**{made} bins, not the 40 requested:**" in part
    bins = _tables(part)[1]
    assert len(bins[0]) == made + 2  # relation, one column per bin made, pairs
    assert [_num(c) for c in bins[-1][1:-1]] == meta["bin_counts"]
    empty = [str(i) for i, c in enumerate(meta["bin_counts"]) if c == 0]
    assert (f"**Empty in this sample:** bin(s) {', '.join(empty)}" in part) == bool(empty)


def test_label_reliability_section_matches_the_pair_files(toy, tmp_path):
    """Bands and the ceiling per bin recomputed from the pair files; a corpus with counts but no
    spread says why there is no reliability."""
    tasks, data = toy
    md = render_card(
        _task(tasks, data), prepare(_task(tasks, data), out_dir=tmp_path / "a")
    ).markdown
    part = _section(md, "## Label reliability and noise ceiling")
    assert (
        part.count("Not computed: no clip of this split has both a rating count and a spread") == 2
    )
    csv = data / "scores.csv"
    lines = csv.read_text().splitlines()
    rng = np.random.default_rng(2)
    lines = [lines[0] + ",std"] + [f"{x},{rng.uniform(0.4, 1.1):.3f}" for x in lines[1:]]
    csv.write_text("\n".join(lines) + "\n")
    spec = _spec(data)
    spec["data"]["options"]["columns"]["rating_std"] = "std"
    path = tasks / "toy.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    task = load_task_file(path)
    prepared = prepare(task, out_dir=tmp_path / "b")
    section = _section(
        render_card(task, prepared).markdown, "## Label reliability and noise ceiling"
    )
    for split in ("train", "test"):
        part = _section(section, f"### Split {split}")
        df = _pairs_df(prepared, split)
        rel = df["label_reliability"].to_numpy()
        assert np.isfinite(rel).all() and ((rel >= 0.5) & (rel <= 1)).all()
        bands, ceiling = _tables(part)
        want = [
            ((rel >= lo) & (rel < hi)).sum()
            for lo, hi in ((0, 0.6), (0.6, 0.9), (0.9, 0.99), (0.99, 2))
        ]
        assert [_num(r[1]) for r in bands[1:]] == want
        rows = {r[0]: r for r in ceiling[1:]}
        assert float(rows["all"][2].split(" ")[0]) == pytest.approx(100 * rel.mean(), abs=0.051)
        for b, group in df.groupby("delta_bin"):
            row = next(r for k, r in rows.items() if k.startswith(f"bin {b} "))
            assert _num(row[1]) == len(group)
            value = float(row[2].split(" ")[0])
            assert value == pytest.approx(100 * group["label_reliability"].mean(), abs=0.051)
    # the task chooses the estimator; the pair file records it, the card names it
    spec["label_reliability"] = "bootstrap"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    task = load_task_file(path)
    boot = prepare(task, out_dir=tmp_path / "c")
    assert boot.pair_meta["test"]["label_reliability"]["estimator"] == "bootstrap"
    assert "Estimator `bootstrap`" in render_card(task, boot).markdown
    closed = _pairs_df(prepared, "test")["label_reliability"].to_numpy()
    resampled = _pairs_df(boot, "test")["label_reliability"].to_numpy()
    assert np.abs(closed - resampled).mean() < 0.02
    assert set(ESTIMATORS) == set(TaskSpec.model_fields["label_reliability"].annotation.__args__)

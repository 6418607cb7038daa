"""The per-rating `ratings` column: rescaled like `mos`, and checked by `validate_clips`."""

from __future__ import annotations

import statistics

import pyarrow as pa
import pytest

from benchmark.data.tables import CLIP_SCHEMA, attach_mos_rounding, from_rows, validate_clips
from benchmark.errors import DataError
from benchmark.pairs.prepare import rescale_to_canonical


def _clips(rows: list[dict]) -> pa.Table:
    base = {"corpus": "c", "split": "test", "audio_path": "a.wav"}
    return from_rows([{**base, **r} for r in rows], CLIP_SCHEMA)


def test_ratings_are_rescaled_like_mos():
    """A 0–10 panel: each rating maps to 1 + 0.4 r, so the list's mean is still the clip's MOS."""
    rows = [
        {"clip_id": "a", "mos": 6.0, "n_ratings": 3, "rating_std": 2.0, "ratings": [4.0, 6.0, 8.0]},
        {"clip_id": "b", "mos": 2.0, "ratings": None},
        {"clip_id": "c", "mos": 10.0, "n_ratings": 1, "ratings": [10.0]},
    ]
    # several chunks, the second a slice, as a concatenated or filtered table gives
    table = pa.concat_tables([_clips(rows[:1]), _clips(rows).slice(1)])
    out = rescale_to_canonical(table, (0.0, 10.0)).to_pylist()
    assert [r["ratings"] for r in out] == [
        pytest.approx([2.6, 3.4, 4.2]),
        None,
        pytest.approx([5.0]),
    ]
    assert out[0]["mos"] == pytest.approx(statistics.fmean(out[0]["ratings"]))
    assert out[0]["rating_std"] == pytest.approx(statistics.stdev(out[0]["ratings"]))
    assert out[1]["mos"] == pytest.approx(1.8)


def test_ratings_untouched_on_the_canonical_scale():
    table = _clips([{"clip_id": "a", "mos": 3.0, "ratings": [2.0, 4.0]}])
    assert rescale_to_canonical(table, (1.0, 5.0)).equals(table)


def _valid(**clip: object) -> dict:
    return {"clip_id": "ok", "mos": 3.0, "n_ratings": 2, "ratings": [2.0, 4.0], **clip}


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"ratings": []}, "is an empty list"),
        ({"ratings": [2.0, float("nan")], "mos": 2.0}, "holds nan, not a finite rating"),
        (
            {"ratings": [0.0, 6.0]},
            r"holds 0\.0, not a finite rating inside the score range \[1, 5\]",
        ),
        ({"ratings": [2.0, 3.0, 4.0]}, "has 3 ratings but n_ratings is 2"),
        ({"ratings": [2.0, 4.5]}, r"averages 3\.25 but mos is 3\.0 \(tolerance 4e-06\)"),
    ],
)
def test_inconsistent_ratings_are_one_line_errors(bad, pattern):
    table = _clips([_valid(), _valid(clip_id="x1", **bad), _valid(clip_id="x2", **bad)])
    with pytest.raises(DataError, match=pattern) as err:
        validate_clips(table, (1.0, 5.0), source="raw.csv")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("raw.csv: column 'ratings' of clip 'x1' ") and "(2 clip(s) so" in msg


def test_consistent_ratings_pass_and_null_means_unknown():
    rows = [
        _valid(),
        _valid(clip_id="n", n_ratings=None, ratings=[1.0, 2.0, 2.0], mos=5 / 3),
        _valid(clip_id="u", ratings=None, n_ratings=None),
    ]
    out = validate_clips(_clips(rows), (1.0, 5.0)).to_pylist()
    assert [r["ratings"] for r in out] == [[2.0, 4.0], [1.0, 2.0, 2.0], None]


def test_tolerance_scales_with_the_range_and_a_declared_rounding():
    """1e-6 per unit of range; a reader that keeps a rounded published MOS declares its rounding."""
    off = _valid(ratings=[2.0, 4.0], mos=3.00003)  # 3e-5 away
    with pytest.raises(DataError, match="averages"):
        validate_clips(_clips([off]), (1.0, 5.0))
    # on a 0–100 scale 1e-6 of the range is 1e-4
    assert validate_clips(_clips([off]), (0.0, 100.0)).num_rows == 1
    rounded = _valid(ratings=[2.0, 2.0, 3.0], n_ratings=3, mos=2.33)  # printed with 2 decimals
    with pytest.raises(DataError, match="averages"):
        validate_clips(_clips([rounded]), (1.0, 5.0))
    declared = attach_mos_rounding(_clips([rounded]), 0.005)
    assert validate_clips(declared, (1.0, 5.0)).num_rows == 1
    worse = attach_mos_rounding(
        _clips([_valid(ratings=[2.0, 2.0, 3.0], n_ratings=3, mos=2.32)]), 0.005
    )
    with pytest.raises(DataError, match=r"tolerance 0\.005"):
        validate_clips(worse, (1.0, 5.0))

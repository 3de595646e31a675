"""Grid search on hand-made curves where one grid point is plainly right."""

import numpy as np
import pytest

from lighthouse_audio.baseline.frames import FrameLayout
from lighthouse_audio.baseline.similarity import SimilarityCurves
from lighthouse_audio.baseline.tune import default_thresholds, grid_search
from lighthouse_audio.data.annotations import MomentQuery

LAYOUT = FrameLayout(1.0, 1.0, "none")


def curves_with_blips() -> SimilarityCurves:
    """GT [2, 7) and [5, 10): 0.9 inside, 0.1 outside, one dip inside and one blip outside."""
    curves = SimilarityCurves(LAYOUT)
    for qid, (start, end, dip, blip) in enumerate([(2, 7, 4, 10), (5, 10, 7, 1)]):
        sim = np.full(12, 0.1, dtype=np.float32)
        sim[start:end] = 0.9
        sim[dip], sim[blip] = 0.1, 0.9
        curves.queries.append(MomentQuery(qid, "q", 12.0, f"v{qid}", [[start, end]]))
        curves.curves.append(sim)
        curves.centres.append(LAYOUT.centres(12))
    return curves


def test_grid_search_picks_the_obvious_point():
    search = grid_search(curves_with_blips(), [0.05, 0.5, 0.95], [1, 3], progress=False)
    assert (search.threshold, search.median_length) == (0.5, 3)
    assert search.metrics["brief"]["MR-full-mAP"] == 100.0
    assert search.metrics["brief"]["MR-full-R1@0.7"] == 100.0
    assert [(r["threshold"], r["median_length"]) for r in search.grid] == [
        (0.05, 1), (0.05, 3), (0.5, 1), (0.5, 3), (0.95, 1), (0.95, 3),
    ]  # fmt: skip
    unfiltered = search.grid[2]
    assert unfiltered["MR-full-mAP"] < 100.0  # the blip and the dip cost without the filter


def test_ties_go_to_the_first_grid_point():
    search = grid_search(curves_with_blips(), [0.6, 0.5], [5, 3], progress=False)
    assert (search.threshold, search.median_length) == (0.5, 3)


def test_default_thresholds_span_the_similarities():
    thresholds = default_thresholds(curves_with_blips())
    assert len(thresholds) == 41 and thresholds == sorted(thresholds)
    assert thresholds[0] == pytest.approx(0.1) and thresholds[-1] == pytest.approx(0.9)


@pytest.mark.parametrize(
    "thresholds, medians, message",
    [([], [1], "threshold grid is empty"), ([0.5], [], "median-length grid is empty"),
     ([0.5], [2], "odd integer"), ([float("nan")], [1], "finite")],
)  # fmt: skip
def test_bad_grids(thresholds, medians, message):
    with pytest.raises(ValueError, match=message):
        grid_search(curves_with_blips(), thresholds, medians, progress=False)

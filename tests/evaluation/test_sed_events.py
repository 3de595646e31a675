"""Event-based and segment-based SED scores: hand-worked cases and sed_eval 0.2.1 parity."""

from __future__ import annotations

import hashlib

import pytest

from lighthouse_audio.evaluation.sed_events import (
    build_event_lists,
    event_based_scores,
    sed_event_scores,
    segment_based_scores,
)
from lighthouse_audio.file_io import load_jsonl
from tests.conftest import fixture_files
from tests.evaluation.sed_cases import TUT_GT, TUT_PREDS
from tests.evaluation.sed_cases import pred_line as _pred
from tests.evaluation.sed_cases import ref_line as _ref


def test_event_collars_by_hand() -> None:
    # Reference [2, 6] (length 4): onset collar 0.2 s, offset collar max(0.2, 0.2 * 4) = 0.8 s.
    reference = [_ref([[2, 6]])]
    cases = {
        (2.15, 6.75): 1,  # both within their collars
        (2.0, 6.5): 1,  # 6.5 is within the 0.8 s offset collar, not the 0.2 s one
        (2.3, 6.0): 0,  # onset 0.3 s off
        (2.0, 6.9): 0,  # offset 0.9 s off
    }
    for (start, end), tp in cases.items():
        scores = sed_event_scores(reference, [_pred([[start, end, 0.9]])])["event_based"]
        assert scores["counts"]["tp"] == tp, (start, end)
        assert (scores["counts"]["n_ref"], scores["counts"]["n_sys"]) == (1, 1)


def test_event_based_micro_counts_by_hand() -> None:
    # Clip a: dog [1, 3] + [5, 9]; car [0, 2]. Clip b: dog [4, 5].
    reference = [
        _ref([[1, 3], [5, 9]]),
        _ref([[0, 2]], query="car"),
        _ref([[4, 5]], vid="b"),
    ]
    predictions = [
        # [1.1, 3.1] hits [1, 3]; [5, 7] misses [5, 9] (offset 2 s > 0.8 s); 0.4 is below 0.5.
        _pred([[1.1, 3.1, 0.9], [5, 7, 0.8], [0, 10, 0.4]]),
        _pred([[6, 8, 0.9]], query="car"),  # false alarm; [0, 2] missed
        _pred([[4.1, 5.05, 0.7]], vid="b"),  # hit
    ]
    scores = event_based_scores(build_event_lists(reference, predictions, 0.5))
    assert scores["counts"] == {"tp": 2, "fp": 2, "fn": 2, "n_ref": 4, "n_sys": 4}
    assert (scores["precision"], scores["recall"], scores["f1"]) == (50.0, 50.0, 50.0)


def test_matching_is_one_to_one_and_maximal() -> None:
    # Two references 0.3 s apart, two estimates each within both collars: two matches, not one.
    reference = [_ref([[1.0, 2.0], [2.1, 3.0]])]
    events = build_event_lists(reference, [_pred([[1.1, 1.9, 0.9], [2.2, 3.1, 0.9]])], 0.5)
    assert event_based_scores(events)["counts"]["tp"] == 2
    # One estimate can match only one reference.
    events = build_event_lists([_ref([[1, 2]]), _ref([[1, 2]], vid="b")], [
        _pred([[1, 2, 0.9]]), _pred([], vid="b")], 0.5)  # fmt: skip
    assert event_based_scores(events)["counts"] == {
        "tp": 1, "fp": 0, "fn": 1, "n_ref": 2, "n_sys": 1,
    }  # fmt: skip


def test_overlapping_predictions_merge_and_clip() -> None:
    # Top-k windows of one moment merge into one event; past the clip end is cut off.
    events = build_event_lists(
        [_ref([[2, 6]])], [_pred([[2, 4, 0.9], [3.5, 6.1, 0.8], [9, 15, 0.7], [12, 13, 0.9]])]
    )
    assert [(e.onset, e.offset) for e in events.estimated["a"]] == [(2.0, 6.1), (9.0, 10.0)]
    assert event_based_scores(events)["counts"]["tp"] == 1


def test_segment_based_by_hand() -> None:
    # 10 s clip, 1 s segments. Reference [1.5, 3.2] -> segments 1, 2, 3.
    # Prediction [3.0, 4.5] -> segments 3, 4: TP 1 (segment 3), FP 1, FN 2.
    result = segment_based_scores(build_event_lists([_ref([[1.5, 3.2]])], [_pred([[3, 4.5, 0.9]])]))
    assert result["counts"] == {"tp": 1, "fp": 1, "fn": 2, "n_ref": 3, "n_sys": 2, "segments": 10}
    assert (result["precision"], result["recall"], result["f1"]) == (50.0, 33.33, 40.0)
    # 2 s segments: reference -> segments 0, 1; prediction -> 1, 2.
    result = segment_based_scores(
        build_event_lists([_ref([[1.5, 3.2]])], [_pred([[3, 4.5, 0.9]])]), segment_length=2.0
    )
    assert result["counts"]["tp"] == 1 and result["counts"]["segments"] == 5


def test_nothing_predicted_scores_zero() -> None:
    result = sed_event_scores([_ref([[1, 2]])], [_pred([[1, 2, 0.5]])], threshold=0.5)
    for key in ("event_based", "segment_based"):
        assert (result[key]["precision"], result[key]["recall"], result[key]["f1"]) == (0, 0, 0)


def test_unknown_vid_or_label_raise() -> None:
    with pytest.raises(ValueError, match="vid 'z' is not in the reference"):
        build_event_lists([_ref([])], [_pred([], vid="z")])
    with pytest.raises(ValueError, match="query 'cat' is not a reference label"):
        build_event_lists([_ref([])], [_pred([], query="cat")])


# Counts sed_eval 0.2.1 (EventBasedMetrics(t_collar=0.2, percentage_of_length=0.2), optimal
# matching; SegmentBasedMetrics(time_resolution=1.0) with evaluated_length_seconds = duration)
# gave on the event lists of one predictions file, keyed by that file's md5: a file of the same
# form with other contents has no recorded counts and is checked against sed_eval itself below.
SED_EVAL_COUNTS = {
    "d01f9305551d463748a71c8cdc6ef150": {
        0.1: ((6, 240, 149), (1531, 1603, 4574)),
        0.5: ((12, 240, 175), (1190, 1603, 3377)),
        0.7: ((13, 240, 160), (920, 1603, 2353)),
    },
}


def _recorded_cases() -> list:
    cases = []
    for path in fixture_files("sed_preds_tut2017_seed*.jsonl"):
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        for threshold, counts in SED_EVAL_COUNTS.get(digest, {}).items():
            cases.append(pytest.param(path, threshold, counts, id=f"{path.stem}-{threshold}"))
    return cases


@pytest.mark.parametrize(("predictions_file", "threshold", "counts"), _recorded_cases())
def test_matches_recorded_sed_eval_counts(predictions_file, threshold: float, counts) -> None:
    result = sed_event_scores(load_jsonl(TUT_GT), load_jsonl(predictions_file), threshold)
    (event_tp, event_ref, event_sys), (seg_tp, seg_ref, seg_sys) = counts
    event, segment = result["event_based"]["counts"], result["segment_based"]["counts"]
    assert (event["tp"], event["n_ref"], event["n_sys"]) == (event_tp, event_ref, event_sys)
    assert (segment["tp"], segment["n_ref"], segment["n_sys"]) == (seg_tp, seg_ref, seg_sys)


@pytest.mark.skipif(TUT_PREDS is None, reason="no TUT2017 SED fixture")
def test_against_sed_eval_when_importable() -> None:
    sed_eval = pytest.importorskip("sed_eval")
    events = build_event_lists(load_jsonl(TUT_GT), load_jsonl(TUT_PREDS), 0.3)
    event_metrics = sed_eval.sound_event.EventBasedMetrics(
        events.labels, t_collar=0.2, percentage_of_length=0.2
    )
    segment_metrics = sed_eval.sound_event.SegmentBasedMetrics(events.labels, time_resolution=1.0)
    for vid, duration in events.durations.items():
        ref, est = (
            [{"filename": vid, "event_label": e.label, "onset": e.onset, "offset": e.offset}
             for e in side[vid]]
            for side in (events.reference, events.estimated)
        )  # fmt: skip
        ref, est = list(ref), list(est)
        event_metrics.evaluate(ref, est)
        segment_metrics.evaluate(ref, est, evaluated_length_seconds=duration)
    ours_event, ours_segment = event_based_scores(events), segment_based_scores(events)
    for ours, theirs in ((ours_event, event_metrics), (ours_segment, segment_metrics)):
        assert ours["counts"]["tp"] == theirs.overall["Ntp"]
        assert ours["counts"]["n_ref"] == theirs.overall["Nref"]
        assert ours["counts"]["n_sys"] == theirs.overall["Nsys"]
        assert ours["f1"] == round(100 * theirs.overall_f_measure()["f_measure"], 2)

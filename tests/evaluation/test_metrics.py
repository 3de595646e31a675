"""Moment-retrieval metrics: parity with Lighthouse's standalone_eval, plus hand-worked cases."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from lighthouse_audio.evaluation.metrics import (
    IOU_THRESHOLDS,
    eval_submission,
    per_query_details,
)
from lighthouse_audio.file_io import load_jsonl
from tests.conftest import SHARED, fixture_files, lighthouse_fixtures_dir

ANNOTATIONS = SHARED / "data" / "annotations"
FIXTURE_NAME = re.compile(r"eval_(?:preds|metrics|perquery)_(?P<gt>.+)_seed\d+.*$")


def gt_path_for(fixture: Path) -> Path:
    """``eval_preds_castella_val_seed101.jsonl`` -> ``castella_val_release.jsonl``."""
    match = FIXTURE_NAME.match(fixture.stem)
    assert match, f"cannot tell the annotation file of {fixture.name}"
    name = match["gt"]
    candidates = [
        folder / f"{name}{suffix}"
        for folder in (lighthouse_fixtures_dir(), ANNOTATIONS)
        for suffix in ("_release.jsonl", ".jsonl")
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(f"no annotation file for {fixture.name}; looked for {[str(c) for c in candidates]}")


def preds_path_for(fixture: Path) -> Path:
    kind = "metrics" if fixture.name.startswith("eval_metrics_") else "perquery"
    return fixture.with_name(fixture.name.replace(f"eval_{kind}_", "eval_preds_")).with_suffix(
        ".jsonl"
    )


# ---------------------------------------------------------------------------------------------
# Fixture parity: every eval_metrics_* / eval_perquery_* file found in the fixture folder.


@pytest.mark.parametrize("metrics_file", fixture_files("eval_metrics_*.json"), ids=lambda p: p.stem)
def test_reproduces_lighthouse_metrics(metrics_file: Path) -> None:
    expected = json.loads(metrics_file.read_text())
    submission = load_jsonl(preds_path_for(metrics_file))
    ground_truth = load_jsonl(gt_path_for(metrics_file))
    result = eval_submission(submission, ground_truth)
    assert result == expected
    # Same key order at every level, so the saved file is byte-identical to Lighthouse's.
    assert json.dumps(result, indent=4) == metrics_file.read_text()


@pytest.mark.parametrize(
    "perquery_file", fixture_files("eval_perquery_*.json"), ids=lambda p: p.stem
)
def test_per_query_details_match_fixture(perquery_file: Path) -> None:
    expected = json.loads(perquery_file.read_text())
    submission = load_jsonl(preds_path_for(perquery_file))
    ground_truth = load_jsonl(gt_path_for(perquery_file))
    details = per_query_details(submission, ground_truth)
    assert details["thresholds"] == expected["thresholds"] == list(IOU_THRESHOLDS)
    got = {str(qid): entry for qid, entry in details["per_query"].items()}
    assert got.keys() == expected["per_query"].keys()
    for qid, want in expected["per_query"].items():
        entry = got[qid]
        assert entry["r1_top_window"] == want["r1_top_window"], qid
        assert entry["r1_gt_index"] == want["r1_gt_index"], qid
        assert entry["r1_iou"] == pytest.approx(want["r1_iou"], abs=1e-12), qid
        assert entry["ap"] == pytest.approx(want["ap"], abs=1e-12), qid


def test_fixture_folder_has_eval_fixtures() -> None:
    if not lighthouse_fixtures_dir().is_dir():
        pytest.skip("no Lighthouse fixture folder")
    assert fixture_files("eval_metrics_*.json"), "no eval_metrics_* fixture found"


# ---------------------------------------------------------------------------------------------
# An independent, loop-based implementation of README §9, to cross-check the vectorised one on
# random inputs full of ties, duplicates, zero-length windows and unsorted lists.


def _true_iou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union


def _loop_ap(preds, gts) -> list[float]:
    preds = sorted(preds[:10], key=lambda w: -w[2])  # stable
    aps = []
    for thr in IOU_THRESHOLDS:
        locked = [False] * len(gts)
        flags = []
        for p in preds:
            ious = np.array([_true_iou(p, g) for g in gts])
            hit = False
            for j in np.argsort(ious, kind="stable")[::-1]:
                if ious[j] < thr:
                    break
                if locked[j]:
                    continue
                locked[j] = hit = True
                break
            flags.append(hit)
        tp = np.cumsum(flags)
        fp = np.cumsum([not f for f in flags])
        rec = [0.0, *(tp / len(gts)), 1.0]
        prec = [0.0, *(tp / (tp + fp)), 0.0]
        for i in range(len(prec) - 2, -1, -1):
            prec[i] = max(prec[i], prec[i + 1])
        aps.append(
            sum((rec[i] - rec[i - 1]) * prec[i] for i in range(1, len(rec)) if rec[i] != rec[i - 1])
        )
    return aps


def _loop_r1_iou(top, gts) -> float:
    best = max(range(len(gts)), key=lambda j: (_true_iou(top, gts[j]), -j))
    g = gts[best]
    inter = max(0.0, min(top[1], g[1]) - max(top[0], g[0]))
    hull = max(top[1], g[1]) - min(top[0], g[0])
    return inter / hull if hull else 0.0


def _random_case(seed: int, num_queries: int = 60):
    rng = random.Random(seed)
    submission, ground_truth = [], []
    for qid in range(num_queries):
        duration = rng.choice([10, 30, 150])
        gts = []
        for _ in range(rng.randint(1, 4)):
            s = rng.randint(0, duration - 1)
            gts.append([s, rng.randint(s + 1, duration)])
        preds = []
        for _ in range(rng.randint(1, 13)):
            kind = rng.random()
            if kind < 0.3:
                s, e = rng.choice(gts)
            elif kind < 0.5 and preds:
                s, e = rng.choice(preds)[:2]  # duplicate window
            else:
                s = round(rng.uniform(0, duration), rng.choice([0, 2]))
                e = round(rng.uniform(s, duration), rng.choice([0, 2]))  # may be zero-length
            score = rng.choice([0.5, 0.25, round(rng.random(), 4)])  # frequent ties
            preds.append([float(s), float(e), score])
        submission.append({"qid": qid, "pred_relevant_windows": preds})
        ground_truth.append({"qid": qid, "relevant_windows": gts})
    return submission, ground_truth


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_matches_loop_reference(seed: int) -> None:
    submission, ground_truth = _random_case(seed)
    details = per_query_details(submission, ground_truth)["per_query"]
    gts = {d["qid"]: d["relevant_windows"] for d in ground_truth}
    for d in submission:
        entry = details[d["qid"]]
        want_ap = _loop_ap(d["pred_relevant_windows"], gts[d["qid"]])
        assert entry["ap"] == pytest.approx(want_ap, abs=1e-12)
        want_r1 = _loop_r1_iou(d["pred_relevant_windows"][0], gts[d["qid"]])
        assert entry["r1_iou"] == pytest.approx(want_r1, abs=1e-12)
    metrics = eval_submission(submission, ground_truth)
    aps = np.array([details[q]["ap"] for q in details]).mean(0)
    assert metrics["full"]["MR-mAP"]["0.5"] == float(f"{100 * aps[0]:.2f}")


# ---------------------------------------------------------------------------------------------
# Hand-worked cases.


def _one(windows_pred, windows_gt, qid=1):
    return (
        [{"qid": qid, "pred_relevant_windows": windows_pred}],
        [{"qid": qid, "relevant_windows": windows_gt}],
    )


def test_output_layout() -> None:
    result = eval_submission(*_one([[2, 6, 0.9]], [[2, 6]]))
    assert list(result) == ["brief", "full"]
    assert list(result["brief"]) == [
        "MR-full-R1@0.5",
        "MR-full-R1@0.7",
        "MR-full-mAP",
        "MR-full-mAP@0.5",
        "MR-full-mAP@0.75",
    ]
    assert list(result["full"]) == ["MR-mAP", "MR-R1"]
    keys = ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95"]
    assert list(result["full"]["MR-mAP"]) == [*keys, "average"]
    assert list(result["full"]["MR-R1"]) == keys


def test_perfect_prediction_scores_100() -> None:
    result = eval_submission(*_one([[2, 6, 0.9], [0, 10, 0.5]], [[2, 6]]))
    assert set(result["full"]["MR-mAP"].values()) == {100.0}
    assert set(result["full"]["MR-R1"].values()) == {100.0}


def test_disjoint_prediction_scores_0() -> None:
    result = eval_submission(*_one([[20, 30, 0.9], [40, 41, 0.5]], [[2, 6]]))
    assert set(result["full"]["MR-mAP"].values()) == {0.0}
    assert set(result["full"]["MR-R1"].values()) == {0.0}


def test_interpolated_ap_by_hand() -> None:
    # Sorted: TP (rec .5, prec 1), FP (rec .5, prec .5), TP (rec 1, prec 2/3).
    # AP = .5 * 1 + .5 * 2/3 = 0.8333...
    preds = [[50, 60, 0.8], [20, 30, 0.7], [0, 10, 0.9]]
    result = eval_submission(*_one(preds, [[0, 10], [20, 30]]))
    assert result["full"]["MR-mAP"]["0.5"] == 83.33
    assert result["full"]["MR-mAP"]["average"] == 83.33


def test_each_gt_window_matches_once() -> None:
    # Two identical predictions of one GT window: the second is a false positive.
    details = per_query_details(*_one([[0, 10, 0.9], [0, 10, 0.8]], [[0, 10]]))
    assert details["per_query"][1]["ap"] == [1.0] * 10
    details = per_query_details(*_one([[0, 10, 0.8], [30, 40, 0.9]], [[0, 10]]))
    assert details["per_query"][1]["ap"] == [0.5] * 10


def test_equal_iou_gt_windows_tried_from_higher_index() -> None:
    # [1, 11] has IoU 9/11 with both GT windows; Lighthouse walks argsort()[::-1], so it locks
    # GT 1 first. [2, 12] (= GT 1) then falls back to GT 0 (IoU 8/12), a TP only below 0.7.
    details = per_query_details(*_one([[1, 11, 0.9], [2, 12, 0.8]], [[0, 10], [2, 12]]))
    assert details["per_query"][1]["ap"] == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_r1_uses_first_listed_window_not_best_score() -> None:
    # Unsorted list: the top-scored window is perfect, but R1 looks at the first one only.
    result = eval_submission(*_one([[20, 30, 0.1], [2, 6, 0.9]], [[2, 6]]))
    assert result["full"]["MR-R1"]["0.5"] == 0.0
    assert result["full"]["MR-mAP"]["0.5"] == 100.0


def test_map_uses_first_ten_windows_in_list_order() -> None:
    preds = [[20 + i, 21 + i, 0.5] for i in range(10)] + [[2, 6, 0.99]]
    result = eval_submission(*_one(preds, [[2, 6]]))
    assert result["full"]["MR-mAP"]["average"] == 0.0


def test_r1_iou_formula_and_gt_choice() -> None:
    # Top [9, 19] overlaps GT 1 most: IoU 9/11 (hull 10..20 -> 9..20 = 11).
    details = per_query_details(*_one([[9, 19, 0.5]], [[0, 2], [10, 20]]))["per_query"][1]
    assert details["r1_gt_index"] == 1
    assert details["r1_iou"] == pytest.approx(9 / 11)
    assert details["r1_top_window"] == [9.0, 19.0]
    # Disjoint windows: intersection 0 over the hull.
    details = per_query_details(*_one([[0, 2, 0.5]], [[4, 6]]))["per_query"][1]
    assert details["r1_iou"] == 0.0
    # Ties between GT windows: the first index wins.
    details = per_query_details(*_one([[5, 15, 0.5]], [[0, 10], [10, 20]]))["per_query"][1]
    assert details["r1_gt_index"] == 0


def test_length_filter_drops_queries_without_valid_gt() -> None:
    submission = [
        {"qid": "a", "pred_relevant_windows": [[0, 10, 0.9]]},
        {"qid": "b", "pred_relevant_windows": [[0, 10, 0.9]]},
        {"qid": "c", "pred_relevant_windows": [[0, 10, 0.9]]},
    ]
    ground_truth = [
        {"qid": "a", "relevant_windows": [[0, 10]]},
        {"qid": "b", "relevant_windows": [[5, 5]]},  # length 0: dropped
        {"qid": "c", "relevant_windows": [[0, 1600]]},  # longer than 1500: dropped
    ]
    result = eval_submission(submission, ground_truth)
    assert result["brief"]["MR-full-mAP"] == 100.0
    assert result["brief"]["MR-full-R1@0.5"] == 100.0
    assert list(per_query_details(submission, ground_truth)["per_query"]) == ["a"]


@pytest.mark.parametrize(
    ("pred_qids", "gt_qids"),
    [([1, 2], [1]), ([1], [1, 2]), (["1"], [1]), ([1], ["1"])],
    ids=["extra", "missing", "str-vs-int", "int-vs-str"],
)
def test_qid_mismatch_raises(pred_qids, gt_qids) -> None:
    submission = [{"qid": q, "pred_relevant_windows": [[0, 1, 0.5]]} for q in pred_qids]
    ground_truth = [{"qid": q, "relevant_windows": [[0, 1]]} for q in gt_qids]
    with pytest.raises(ValueError, match="qids in submission and ground truth must match"):
        eval_submission(submission, ground_truth)


def test_match_number_false_keeps_shared_qids() -> None:
    submission = [
        {"qid": 1, "pred_relevant_windows": [[0, 1, 0.5]]},
        {"qid": 2, "pred_relevant_windows": [[0, 1, 0.5]]},
    ]
    ground_truth = [{"qid": 1, "relevant_windows": [[0, 1]]}]
    result = eval_submission(submission, ground_truth, match_number=False)
    assert result["brief"]["MR-full-mAP"] == 100.0


def test_empty_prediction_list_raises() -> None:
    with pytest.raises(ValueError, match="empty 'pred_relevant_windows'"):
        eval_submission(*_one([], [[0, 1]]))


def test_malformed_windows_raise_naming_qid() -> None:
    with pytest.raises(ValueError, match="qid 'q7'"):
        eval_submission(*_one([[0, 1]], [[0, 1]], qid="q7"))


def test_verbose_prints_lighthouse_lines(capsys) -> None:
    eval_submission(*_one([[0, 1, 0.5]], [[0, 1]]), verbose=True)
    out = capsys.readouterr().out
    assert out.startswith("full: [0, 1500], 1/1=100.00 examples.\n")


def test_fast_on_5000_queries() -> None:
    import time

    submission, ground_truth = [], []
    rng = np.random.default_rng(0)
    for qid in range(5000):
        starts = rng.integers(0, 140, size=3)
        ground_truth.append(
            {"qid": qid, "relevant_windows": [[int(s), int(s) + 10] for s in starts]}
        )
        starts, scores = rng.integers(0, 140, size=10), rng.random(10)
        preds = [
            [int(a), int(a) + 10, round(float(p), 4)] for a, p in zip(starts, scores, strict=True)
        ]
        submission.append({"qid": qid, "pred_relevant_windows": preds})
    start = time.perf_counter()
    eval_submission(submission, ground_truth)
    assert time.perf_counter() - start < 5.0

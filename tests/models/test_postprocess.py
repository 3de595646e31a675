import copy
import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.models.postprocess import (
    PostProcessorDETR,
    build_batch_postprocessor,
    build_postprocessor,
    outputs_to_predictions,
    postprocess_batch,
)
from tests.conftest import fixture_files

EXPECTED_FILES = fixture_files("postprocess_expected*.json")


def collect_cases() -> list:
    """One param per (file, section, case index): every case of every expected file."""
    params = []
    for path in EXPECTED_FILES:
        data = json.loads(path.read_text())
        for i in range(len(data.get("cases", []))):
            params.append(pytest.param(path, "cases", i, id=f"{path.name}-cases-{i}"))
        for i in range(len(data.get("crafted", {}).get("cases", []))):
            params.append(pytest.param(path, "crafted", i, id=f"{path.name}-crafted-{i}"))
    return params


def load_case(path: Path, section: str, index: int) -> tuple[dict, dict, list[dict]]:
    """``(case, outputs, metas)`` for one case, outputs from the io file or the crafted tensors."""
    data = json.loads(path.read_text())
    if section == "cases":
        case = data["cases"][index]
        io = torch.load(path.parent / data["source_outputs"], weights_only=True)
        outputs = io["outputs"]
    else:
        case = data["crafted"]["cases"][index]
        outputs = {
            "pred_spans": torch.tensor(data["crafted"]["pred_spans"], dtype=torch.float32),
            "pred_logits": torch.tensor(data["crafted"]["pred_logits"], dtype=torch.float32),
        }
    metas = [
        {"qid": line["qid"], "query": line["query"], "vid": line["vid"], "duration": duration}
        for line, duration in zip(case["before_postprocessor"], case["durations"], strict=True)
    ]
    return case, outputs, metas


CASES = collect_cases()


@pytest.mark.parametrize(("path", "section", "index"), CASES)
def test_before_postprocessor_exact(path, section, index):
    case, outputs, metas = load_case(path, section, index)
    assert outputs_to_predictions(outputs, metas) == case["before_postprocessor"]


@pytest.mark.parametrize(("path", "section", "index"), CASES)
def test_postprocessor_exact(path, section, index):
    case, outputs, metas = load_case(path, section, index)
    postprocessor = PostProcessorDETR(**case["postprocessor_settings"])
    before = copy.deepcopy(case["before_postprocessor"])
    assert postprocessor(before) == case["expected"]
    assert before == case["before_postprocessor"]  # input lines are not mutated
    assert postprocess_batch(outputs, metas, postprocessor) == case["expected"]


@pytest.mark.parametrize(("path", "section", "index"), CASES)
def test_build_postprocessor_matches_settings(path, section, index):
    """Settings from config + dataset: the clamp is 150 s, CASTELLA 300 s."""
    case, outputs, metas = load_case(path, section, index)
    settings = case["postprocessor_settings"]
    opt = {"clip_length": settings["clip_length"], "dset_name": case["dset_name"]}
    assert build_postprocessor(opt).settings() == settings
    explicit = build_postprocessor(opt, max_ts_val=settings["max_ts_val"])
    assert explicit.settings() == settings
    assert build_batch_postprocessor(opt)(outputs, metas) == case["expected"]


def test_castella_clamps_at_300():
    postprocessor = build_postprocessor({"clip_length": 1, "dset_name": "castella"})
    assert postprocessor.max_ts_val == 300
    line = {"qid": "q", "query": "x", "vid": "v", "pred_relevant_windows": [[-3, 412.4, 0.5]]}
    assert postprocessor([line])[0]["pred_relevant_windows"] == [[0.0, 300.0, 0.5]]


def test_dataset_settings_recorded_like_lighthouse():
    """CASTELLA's evaluation builds its post-processor with a 300 s clamp and window bounds
    1..300; the 150 s datasets use 2..60. The bounds are recorded, never applied."""
    castella = build_postprocessor({"clip_length": 1, "dset_name": "castella"}).settings()
    assert (castella["max_ts_val"], castella["min_w_l"], castella["max_w_l"]) == (300, 1, 300)
    for name in ("clotho-moment", "unav100-subset", "tut2017", "custom", None):
        settings = build_postprocessor({"clip_length": 1, "dset_name": name}).settings()
        assert (settings["max_ts_val"], settings["min_w_l"], settings["max_w_l"]) == (150, 2, 60)
    line = {"qid": "q", "query": "x", "vid": "v", "pred_relevant_windows": [[3.0, 3.4, 0.5]]}
    short = build_postprocessor({"clip_length": 1, "dset_name": "castella"})([line])
    assert short[0]["pred_relevant_windows"] == [[3.0, 3.0, 0.5]]  # shorter than min_w_l: kept


def test_round_half_to_even_after_4_decimals():
    postprocessor = PostProcessorDETR(clip_length=1, max_ts_val=150)
    windows = [[12.5, 13.5, 0.12345], [17.5, 42.5, 0.5], [0.49999, 150.5, 1.0]]
    line = {"qid": 1, "query": "q", "vid": "v", "pred_relevant_windows": windows}
    out = postprocessor([line])[0]["pred_relevant_windows"]
    assert out == [[12.0, 14.0, 0.1235], [18.0, 42.0, 0.5], [0.0, 150.0, 1.0]]


def test_predictions_sorted_stably_and_rounded():
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0]]])
    spans = torch.tensor([[[0.5, 0.2], [0.25, 0.5], [0.1, 0.1], [0.9, 0.1]]])
    meta = [{"qid": "a", "query": "q", "vid": "v", "duration": 30}]
    (line,) = outputs_to_predictions({"pred_logits": logits, "pred_spans": spans}, meta)
    rows = line["pred_relevant_windows"]
    assert [r[2] for r in rows] == [0.8808, 0.7311, 0.5, 0.5]
    assert rows[2][:2] == [12.0, 18.0] and rows[3][:2] == [1.5, 4.5]  # tie keeps query order
    assert set(line) == {"qid", "query", "vid", "pred_relevant_windows"}


def test_mismatched_metas_and_empty_lines():
    outputs = {"pred_logits": torch.zeros(2, 3, 2), "pred_spans": torch.full((2, 3, 2), 0.5)}
    with pytest.raises(ValueError, match="metas"):
        outputs_to_predictions(outputs, [{"qid": 0, "query": "", "vid": "", "duration": 1}])
    assert PostProcessorDETR(clip_length=1)([]) == []
    empty = {"qid": 0, "query": "", "vid": "", "pred_relevant_windows": []}
    assert PostProcessorDETR(clip_length=1)([empty]) == [empty]


def test_unknown_process_func_rejected():
    with pytest.raises(ValueError, match="clip_window_l"):
        PostProcessorDETR(process_func_names=("clip_window_l",))

"""Window bounds redrawn from the joint prior (``prior_refine``, models/prior_refine.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easydict import EasyDict

from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.models.prior_refine import (
    PART_OF_RECORDING,
    check_prior_refine,
    drop_repeated_windows,
    refine_rows,
    refine_windows,
)
from lighthouse_audio.models.prior_score import PRIOR_SIMILARITY_KEY
from lighthouse_audio.models.qd_detr import build_model
from tests.models.test_joint_prior import _opt, _space_file

#            frame: 0    1    2    3    4    5    6
SIMILARITY = [0.1, 0.2, 0.9, 0.6, 0.5, 0.1, 0.8]


def _refine(windows, ratio, similarity=SIMILARITY, mask=None, hop=1.0):
    sim = torch.tensor([similarity])
    mask = torch.ones_like(sim) if mask is None else torch.tensor([mask])
    return refine_windows(sim, mask, torch.tensor([windows]), hop, ratio)[0].tolist()


def test_a_window_grows_from_its_peak_over_frames_above_the_ratio():
    # [2, 3] holds frame 2 (0.9): at 0.5 frames 3 (0.6) and 4 (0.5) join, 1 (0.2) and 5 do not;
    # at 0.7 only the peak frame stays
    assert _refine([[2.0, 3.0]], 0.5) == [[2.0, 5.0]]
    assert _refine([[2.0, 3.0]], 0.7) == [[2.0, 3.0]]
    # a long window shrinks to the frames around its peak
    assert _refine([[0.0, 6.0]], 0.5) == [[2.0, 5.0]]


def test_a_window_reaches_past_its_bounds_and_stops_at_padding():
    # [3, 5] peaks at frame 3 (0.6); frame 2 (0.9) is above 0.3 and joins, though outside
    assert _refine([[3.0, 5.0]], 0.5) == [[2.0, 5.0]]
    # at 0.1 every frame is above 0.08 and joins frame 6's window; padding (frames 4-6 here)
    # stops the growth and is never included
    assert _refine([[6.0, 7.0]], 0.1) == [[0.0, 7.0]]
    assert _refine([[2.0, 3.0]], 0.1, mask=[1, 1, 1, 1, 0, 0, 0]) == [[0.0, 4.0]]


def test_bounds_follow_the_hop_and_too_short_windows_take_the_middle_frame():
    assert _refine([[1.0, 1.5]], 0.5, hop=0.5) == [[1.0, 2.5]]  # frames 2-4 at 0.5 s each
    assert _refine([[2.2, 2.4]], 0.5) == [[2.0, 5.0]]  # no centre inside: frame 2 below it


def test_nothing_to_say_keeps_the_models_bounds():
    assert _refine([[2.0, 3.0]], 0.0) == [[2.0, 3.0]]  # off
    negative = [-0.5, -0.1, -0.3]
    assert _refine([[0.5, 2.5]], 0.5, similarity=negative) == [[0.5, 2.5]]  # peak not positive


def test_repeated_bounds_keep_the_better_scored_window():
    rows = [[2.0, 5.0, 0.9], [1.0, 2.0, 0.8], [2.0, 5.0, 0.7]]
    assert drop_repeated_windows(rows) == rows[:2]
    refined = refine_rows([[2.0, 3.0, 0.9], [3.0, 4.0, 0.5], [6.0, 7.0, 0.4]], SIMILARITY, 1.0,
                          0.5, duration=6.5)  # fmt: skip
    assert refined == [[2.0, 5.0, 0.9], [6.0, 6.5, 0.4]]  # clipped to the recording


def _outputs() -> dict:
    logits = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])
    spans = torch.tensor([[[2.5 / 7, 1 / 7], [3.5 / 7, 1 / 7], [6.5 / 7, 1 / 7]]])  # (c, w) of 7 s
    return {
        "pred_logits": logits.expand(2, -1, -1),
        "pred_spans": spans.expand(2, -1, -1),
        "video_mask": torch.ones(2, 7),
        PRIOR_SIMILARITY_KEY: torch.tensor([SIMILARITY, SIMILARITY]),
    }


def test_post_processing_redraws_windows_but_not_scores_nor_chunks():
    meta = {"query": "q", "vid": "v", "duration": 7.0}
    metas = [{**meta, "qid": 0}, {**meta, "qid": 1, PART_OF_RECORDING: True}]
    plain = outputs_to_predictions(_outputs(), metas)
    lines = outputs_to_predictions(_outputs(), metas, prior_refine=0.5)
    scores = [row[2] for row in plain[0]["pred_relevant_windows"]]
    # windows [2, 3] and [3, 4] both become [2, 5]: the better-scored one stays
    assert lines[0]["pred_relevant_windows"] == [[2.0, 5.0, scores[0]], [6.0, 7.0, scores[2]]]
    assert lines[1] == plain[1]  # a chunk waits for the merge


@pytest.mark.parametrize("value", [-0.1, 1.5, "much"])
def test_ratios_outside_zero_one_are_refused(value):
    with pytest.raises(ValueError, match="prior_refine"):
        check_prior_refine({"prior_refine": value, "joint_prior": "space.pt"})


def test_refining_without_a_joint_prior_is_refused():
    with pytest.raises(ValueError, match="no joint prior"):
        check_prior_refine({"prior_refine": 0.4})
    assert check_prior_refine({}) == 0.0
    outputs = _outputs()
    del outputs[PRIOR_SIMILARITY_KEY]
    metas = [{"qid": i, "query": "q", "vid": "v", "duration": 7.0} for i in range(2)]
    with pytest.raises(ValueError, match="prior_refine=0.4 needs the joint prior"):
        outputs_to_predictions(outputs, metas, prior_refine=0.4)


@pytest.fixture
def checkpoints(tmp_path):
    """A random AM-DETR with a joint prior reading 10 frames at once, and one without a prior."""
    from lighthouse_audio.config import load_config
    from lighthouse_audio.engine.checkpoint import save_checkpoint
    from lighthouse_audio.models.joint_prior import with_joint_prior_heads

    path, space = _space_file(tmp_path)
    base = {**load_config("qd_detr", "clotho-moment", "clap", []),
            **_opt(path, max_v_l=10, max_a_l=10, clip_length=1.0)}  # fmt: skip
    for name, opt in (("prior", with_joint_prior_heads(EasyDict(base))),
                      ("plain", EasyDict({**base, "joint_prior": None}))):  # fmt: skip
        torch.manual_seed(3)
        save_checkpoint(tmp_path / f"{name}.ckpt",
                        {"model": build_model(opt).state_dict(), "opt": opt})  # fmt: skip
    return tmp_path, space


def test_load_model_overrides_the_ratio_and_refuses_it_without_a_prior(checkpoints):
    from lighthouse_audio.engine.checkpoint import CheckpointError
    from lighthouse_audio.prediction.model import load_model

    folder, _ = checkpoints
    assert load_model(folder / "prior.ckpt").postprocessor.prior_refine == 0.0
    loaded = load_model(folder / "prior.ckpt", prior_refine=0.4)
    assert loaded.postprocessor.prior_refine == 0.4 and loaded.opt["prior_refine"] == 0.4
    with pytest.raises(CheckpointError, match=r"plain\.ckpt: prior_refine=0\.4.*no joint prior"):
        load_model(folder / "plain.ckpt", prior_refine=0.4)


def test_a_chunked_recording_is_redrawn_over_its_whole_frames(checkpoints):
    """47 frames in chunks of 10: the merged moments are redrawn over the whole recording's
    similarity, exactly as if the model had read it at once, not within each chunk."""
    from lighthouse_audio.data.feature_store import l2_normalize_rows
    from lighthouse_audio.prediction.model import load_model
    from lighthouse_audio.prediction.run import EncodedAudio, predict_queries
    from tests.models.test_joint_prior import AUDIO_DIM, TEXT_DIM

    folder, space = checkpoints
    rng = np.random.default_rng(0)
    features = l2_normalize_rows(rng.standard_normal((47, AUDIO_DIM)).astype(np.float32))
    text = l2_normalize_rows(rng.standard_normal((4, TEXT_DIM)).astype(np.float32))
    audio = EncodedAudio(torch.from_numpy(features), 47.0, "long")
    tokens = [torch.from_numpy(text)]

    def predict(ratio: float) -> dict:
        loaded = load_model(folder / "prior.ckpt", prior_refine=ratio)
        return predict_queries(loaded, audio, ["q"], tokens)[0]

    plain, refined = predict(0.0), predict(0.5)
    assert refined["num_chunks"] == plain["num_chunks"] > 1
    with torch.no_grad():
        similarity = space.similarity(torch.from_numpy(features), torch.from_numpy(text)).numpy()
    want = refine_rows(plain["pred_relevant_windows"], similarity, 1.0, 0.5, 47.0)
    got = refined["pred_relevant_windows"]
    assert got == [[round(x, 4) for x in row] for row in want]
    assert got != plain["pred_relevant_windows"]
    assert refined["pred_saliency_scores"] == plain["pred_saliency_scores"]

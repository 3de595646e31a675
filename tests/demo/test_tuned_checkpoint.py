"""The demo's tuned checkpoint: the best weights with the score mix and the window ratio tuned on
val in its config."""

import torch

from lighthouse_audio.demo.training import write_tuned_checkpoint
from lighthouse_audio.engine.checkpoint import load_checkpoint
from tests.conftest import SHARED

CHECKPOINT = SHARED / "fixtures" / "lighthouse" / "qd_detr_clap_seed0.ckpt"


def test_tuned_checkpoint_carries_the_settings_and_the_same_weights(tmp_path):
    target = write_tuned_checkpoint(CHECKPOINT, 0.75, tmp_path / "tuned.ckpt", prior_refine=0.4)
    tuned, source = load_checkpoint(target), load_checkpoint(CHECKPOINT)
    assert tuned["opt"]["prior_score_mix"] == 0.75
    assert tuned["opt"]["prior_refine"] == 0.4
    # the source is left as it was
    assert source["opt"].get("prior_score_mix", 0) == source["opt"].get("prior_refine", 0) == 0
    tuned_keys = ("prior_score_mix", "prior_refine")
    assert {k: v for k, v in tuned["opt"].items() if k not in tuned_keys} == {
        k: v for k, v in source["opt"].items() if k not in tuned_keys
    }
    assert tuned["model"].keys() == source["model"].keys()
    assert all(torch.equal(tuned["model"][k], source["model"][k]) for k in source["model"])
    assert [p.name for p in tmp_path.iterdir()] == ["tuned.ckpt"]  # no temporary file left

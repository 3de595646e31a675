"""The demo's tuned checkpoint: the best weights with the score mix tuned on val in its config."""

import torch

from lighthouse_audio.demo.training import write_tuned_checkpoint
from lighthouse_audio.engine.checkpoint import load_checkpoint
from tests.conftest import SHARED

CHECKPOINT = SHARED / "fixtures" / "lighthouse" / "qd_detr_clap_seed0.ckpt"


def test_tuned_checkpoint_carries_the_mix_and_the_same_weights(tmp_path):
    target = write_tuned_checkpoint(CHECKPOINT, 0.75, tmp_path / "tuned.ckpt")
    tuned, source = load_checkpoint(target), load_checkpoint(CHECKPOINT)
    assert tuned["opt"]["prior_score_mix"] == 0.75
    assert source["opt"].get("prior_score_mix", 0) == 0  # the source is left as it was
    assert {k: v for k, v in tuned["opt"].items() if k != "prior_score_mix"} == {
        k: v for k, v in source["opt"].items() if k != "prior_score_mix"
    }
    assert tuned["model"].keys() == source["model"].keys()
    assert all(torch.equal(tuned["model"][k], source["model"][k]) for k in source["model"])
    assert [p.name for p in tmp_path.iterdir()] == ["tuned.ckpt"]  # no temporary file left

"""The ``aisfx-minilm`` feature's trained joint space: registration, default path, refusals."""

from __future__ import annotations

import pytest

from lighthouse_audio.joint.space import JointSpaceError
from lighthouse_audio.joint.trained import TrainedJointSpace, default_joint_space_path
from lighthouse_audio.registry import FEATURES


def test_default_path_follows_cache_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path))
    assert default_joint_space_path("f", "w 1/2") == tmp_path / "joint" / "f-w_1_2.pt"


def test_aisfx_minilm_registers_a_trained_space(monkeypatch, tmp_path):
    pytest.importorskip("aisfx")
    spec = FEATURES.get("aisfx-minilm")
    assert isinstance(spec.joint_space, TrainedJointSpace)
    assert "joint space via lighthouse align" in spec.description
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path))
    with pytest.raises(JointSpaceError) as err:
        spec.joint_space()
    message = str(err.value)
    assert message.startswith(f"{tmp_path}/joint/aisfx-minilm-aisfx") and "\n" not in message
    assert "make one with `lighthouse align --feature aisfx-minilm --sounds DIR`" in message


def test_aisfx_minilm_weights_id_matches_encoder():
    pytest.importorskip("aisfx")
    from lighthouse_audio.encoders import aisfx_minilm

    class Unbuilt(aisfx_minilm.AisfxMiniLMEncoder):
        def __init__(self):  # only the weight paths weights_id() reads; no networks loaded
            self._checkpoint = aisfx_minilm.aisfx_checkpoint_path()
            self._text_dir = aisfx_minilm.minilm_model_dir()
            self.precision = "float32"
            self._weights_id = None

    assert aisfx_minilm.aisfx_minilm_weights_id() == Unbuilt().weights_id()
    assert aisfx_minilm.aisfx_minilm_weights_id(batch_size=8) == Unbuilt().weights_id()

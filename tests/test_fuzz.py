"""Property-based fuzzing of everything that reads a user's file or text.

For any input, each reader either returns a value of the documented form or raises its own
one-line error (a ``ValueError`` subclass, or ``FileNotFoundError``) naming the file: never
another exception, which the CLI would show as an unexpected error. Writers never leave a
half-written file, whatever point they fail at.

Examples are derandomized (the same on every machine, see ``tests/conftest.py``); set
``HYPOTHESIS_PROFILE=explore`` for a longer random search.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lighthouse_audio.audio.decode import AudioError, load_audio
from lighthouse_audio.config import load_config
from lighthouse_audio.data.annotations import AnnotationError, load_queries
from lighthouse_audio.data.feature_store import FeatureError, read_feature_array
from lighthouse_audio.data.predictions import PredictionError, load_predictions
from lighthouse_audio.engine.checkpoint import CheckpointError, load_checkpoint
from lighthouse_audio.engine.training_config import check_training_config
from lighthouse_audio.file_io import atomic_write, iter_jsonl

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBER = st.integers(-5, 200) | st.floats(allow_nan=True, allow_infinity=True)
WINDOW = st.lists(NUMBER, min_size=0, max_size=4)
ANNOTATION = st.fixed_dictionaries(
    {},
    optional={
        "qid": st.integers(-3, 3) | st.text(max_size=4) | st.booleans() | st.none(),
        "query": st.text(max_size=6) | st.integers(),
        "duration": NUMBER | st.text(max_size=3),
        "vid": st.text(max_size=6) | st.integers(),
        "relevant_windows": st.lists(WINDOW, max_size=3) | JSON,
    },
)
PREDICTION = st.fixed_dictionaries(
    {},
    optional={
        "qid": st.integers(-3, 3) | st.text(max_size=4) | st.booleans(),
        "query": st.text(max_size=6) | st.integers(),
        "vid": st.text(max_size=6) | st.none(),
        "pred_relevant_windows": st.lists(WINDOW, max_size=3) | JSON,
        "pred_saliency_scores": st.lists(NUMBER, max_size=3) | JSON,
    },
)


def lines_of(records: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    """A jsonl file's bytes: records, raw junk and blank lines mixed."""
    line = (
        records.map(lambda r: json.dumps(r).encode())
        | JSON.map(lambda r: json.dumps(r).encode())
        | st.binary(max_size=20)
        | st.just(b"")
    )
    return st.lists(line, max_size=6).map(lambda ls: b"\n".join(ls) + b"\n")


def in_temp_file(data: bytes, name: str, check: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        check(path)


def one_line_error(error: BaseException, path: Path) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert str(path) in message, message


def reads_or_refuses(read: Callable[[Path], object], errors: tuple[type, ...], data: bytes, name):
    def check(path: Path) -> None:
        try:
            read(path)
        except errors as error:
            one_line_error(error, path)

    in_temp_file(data, name, check)


@FUZZ
@given(lines_of(ANNOTATION))
def test_jsonl_reader(data: bytes) -> None:
    reads_or_refuses(lambda p: list(iter_jsonl(p)), (ValueError,), data, "any.jsonl")


@FUZZ
@given(lines_of(ANNOTATION))
def test_annotation_reader(data: bytes) -> None:
    def read(path: Path) -> None:
        for query in load_queries(path, require_windows=False):
            assert isinstance(query.qid, str | int) and not isinstance(query.qid, bool)
            assert query.query.strip() and query.vid.strip()
            assert math.isfinite(query.duration) and query.duration > 0
            for start, end in query.relevant_windows or []:
                assert math.isfinite(start) and math.isfinite(end) and end > start

    reads_or_refuses(read, (AnnotationError,), data, "gt.jsonl")


@FUZZ
@given(lines_of(PREDICTION))
def test_prediction_reader(data: bytes) -> None:
    def read(path: Path) -> None:
        lines = load_predictions(path)
        assert len({(type(line["qid"]), line["qid"]) for line in lines}) == len(lines)
        for line in lines:
            for start, end, score in line["pred_relevant_windows"]:
                assert all(math.isfinite(x) for x in (start, end, score)) and end >= start

    reads_or_refuses(read, (PredictionError,), data, "pred.jsonl")


ARRAYS = hnp.arrays(
    dtype=hnp.floating_dtypes() | hnp.integer_dtypes() | hnp.boolean_dtypes()
    | hnp.complex_number_dtypes() | hnp.unicode_string_dtypes(max_len=3),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)  # fmt: skip


@FUZZ
@given(ARRAYS, st.sampled_from(["features", "other"]))
def test_npz_reader_on_any_array(array: np.ndarray, key: str) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{key: array})

    def read(path: Path) -> None:
        x = read_feature_array(path, "features", max_len=3, dim=None)
        assert x.dtype == np.float32 and x.ndim == 2 and 0 < len(x) <= 3
        assert np.isfinite(x).all()

    reads_or_refuses(read, (FeatureError,), buffer.getvalue(), "clip.npz")


def _valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, features=np.ones((4, 3), np.float32))
    return buffer.getvalue()


def mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """``original`` cut short, or with a few bytes overwritten."""
    cut = st.integers(0, len(original)).map(lambda n: original[:n])
    flips = st.lists(
        st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ).map(lambda changes: _apply(original, changes))
    return cut | flips


def _apply(original: bytes, changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(original)
    for index, value in changes:
        data[index] = value
    return bytes(data)


@FUZZ
@given(mutated(_valid_npz()) | st.binary(max_size=64))
def test_npz_reader_on_damaged_files(data: bytes) -> None:
    reads_or_refuses(
        lambda p: read_feature_array(p, "features", dim=3), (FeatureError,), data, "clip.npz"
    )


def _valid_audio(fmt: str) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(1600) / 8000
    sf.write(buffer, np.sin(2 * np.pi * 440 * t).astype(np.float32), 8000, format=fmt)
    return buffer.getvalue()


@FUZZ
@given(
    mutated(_valid_audio("WAV")) | mutated(_valid_audio("FLAC")) | st.binary(max_size=64),
    st.sampled_from([8000, 16000, 44100]),
)
def test_audio_decoder(data: bytes, rate: int) -> None:
    def read(path: Path) -> None:
        signal = load_audio(path, rate)
        assert signal.dtype == np.float32 and signal.ndim == 1 and np.isfinite(signal).all()

    reads_or_refuses(read, (AudioError,), data, "clip.wav")


OVERRIDE_KEYS = st.sampled_from(["lr", "bsz", "n_epoch", "device", "num_queries", "max_v_l",
                                 "aux_loss", "eval_path", "lr_dorp", "", "=", "seed"])  # fmt: skip


@FUZZ
@given(st.lists(st.tuples(OVERRIDE_KEYS | st.text(max_size=5), st.text(max_size=8)), max_size=3))
def test_config_overrides(pairs: list[tuple[str, str]]) -> None:
    overrides = [f"{key}={value}" for key, value in pairs]
    try:
        opt = load_config("qd_detr", "custom", "clap", overrides)
        check_training_config(opt)
    except ValueError as error:
        assert "\n" not in str(error).strip(), error


def _valid_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {"model": {"w": torch.ones(2)}, "opt": {"model_name": "qd_detr"}, "epoch": 1}, buffer
    )
    return buffer.getvalue()


@FUZZ
@given(mutated(_valid_checkpoint()) | st.binary(max_size=64))
def test_checkpoint_loader_on_damaged_files(data: bytes) -> None:
    def read(path: Path) -> None:
        ckpt = load_checkpoint(path)
        assert isinstance(ckpt, dict) and "model" in ckpt

    reads_or_refuses(read, (CheckpointError,), data, "model.ckpt")


class _Calls:
    """Pickles as a call of ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


DANGEROUS = st.sampled_from(["os.mkdir", "builtins.exec", "builtins.eval", "subprocess.run",
                             "pathlib.Path.mkdir", "shutil.rmtree",
                             "builtins.getattr"])  # fmt: skip


@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(DANGEROUS, st.booleans())
def test_checkpoint_loader_never_runs_code(target: str, nested: bool) -> None:
    import importlib
    import operator

    module_name, _, name = target.rpartition(".")
    try:
        func = operator.attrgetter(name)(importlib.import_module(module_name))
    except (ImportError, AttributeError):
        module_name, _, cls = module_name.rpartition(".")
        func = getattr(getattr(importlib.import_module(module_name), cls), name)
    with tempfile.TemporaryDirectory() as folder:
        sentinel = Path(folder) / "ran"
        payload = _Calls(func, (str(sentinel),))
        ckpt = {"model": {"w": torch.ones(1)}, "opt": {"x": [payload]} if nested else payload}
        path = Path(folder) / "evil.ckpt"
        torch.save(ckpt, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
        with pytest.raises(CheckpointError, match="unsafe checkpoint") as error:
            load_checkpoint(path)
        one_line_error(error.value, path)
        assert not sentinel.exists()


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 4), st.booleans())
def test_writes_are_whole_or_absent(data: bytes, fail_after: int, had_old: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.json"
        if had_old:
            target.write_bytes(b"old")

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                for i in range(4):
                    if i == fail_after:
                        raise OSError("disk full")
                    handle.write(data[i::4])

        try:
            atomic_write(target, write)
            assert sorted(target.read_bytes()) == sorted(data)
        except OSError:
            assert target.read_bytes() == b"old" if had_old else not target.exists()
        assert [p.name for p in Path(folder).iterdir()] == (["out.json"] if target.exists() else [])


def test_the_zip_mutations_reach_the_archive_reader() -> None:
    """The damaged checkpoints above are not all rejected by the first byte: some keep a valid
    zip directory, so the loader's later checks are exercised too."""
    original = _valid_checkpoint()
    damaged = _apply(original, [(len(original) // 2, 0)])
    assert zipfile.is_zipfile(io.BytesIO(damaged))

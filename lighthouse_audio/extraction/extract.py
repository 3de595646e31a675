"""Recordings and queries -> Lighthouse-layout feature files, resumably.

Audio: ``ROOT/<feature>/{vid}.npz`` with ``features`` (frames, audio_dim) and ``frame_times``
(frames, 2) in seconds. Text: ``ROOT/<feature>_text/qid{qid}.npz`` with ``last_hidden_state``.
Every file is written to a temporary name and renamed, so a finished file is always whole; a
rerun verifies what exists and only computes what is missing or broken. Bad recordings are
skipped and reported, never fatal to the batch.

:func:`extract_features` is the whole job (``lighthouse extract`` and the demo call it): build the
feature's encoder, check or write the folder's manifest, extract the recordings an annotation
file names (or every one in the folder) and its queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lighthouse_audio.audio.decode import AudioError, audio_info, resampled_length, stream_audio
from lighthouse_audio.audio.windows import frame_times, iter_windows
from lighthouse_audio.data.layout import TEXT_KEY, find_audio_files, text_name
from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.file_io import remove_stale_temporaries, save_npz


@dataclass
class ExtractionReport:
    """What one extraction did; ``failed`` holds ``(name, one-line reason)`` per skipped item."""

    written: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, one-line reason)

    def summary(self, what: str) -> str:
        text = (
            f"{what}: {self.written} written, {self.reused} already done, {len(self.failed)} failed"
        )
        return text + "".join(f"\n  skipped {name}: {reason}" for name, reason in self.failed)


def recordings_by_vid(audio_dir: Path) -> dict[str, Path]:
    """Every audio file under ``audio_dir`` (recursively), keyed by file stem (the vid)."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: audio folder not found")
    files: dict[str, Path] = {}
    for path in find_audio_files(audio_dir):
        if path.stem in files:
            raise ValueError(
                f"{audio_dir}: two recordings share the name '{path.stem}': "
                f"{files[path.stem]} and {path}"
            )
        files[path.stem] = path
    return files


def is_complete(path: Path, key: str, dim: int, num_rows: int | None = None) -> bool:
    """A finished file: loads, has ``key`` of shape (num_rows, dim), all finite."""
    if not path.exists():
        return False
    try:
        with np.load(path) as data:
            array = data[key]
    except Exception:  # noqa: BLE001 - any unreadable file is simply redone
        return False
    rows_ok = num_rows is None or array.shape[0] == num_rows
    return array.ndim == 2 and array.shape[1] == dim and rows_ok and bool(np.isfinite(array).all())


def encode_recording(
    encoder: AudioTextEncoder,
    path: Path,
    window: float,
    hop: float,
    frames: str,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, audio_dim), frame_times (N, 2))`` of one recording, streamed in blocks."""
    info = audio_info(path)
    num_samples = resampled_length(info.num_frames, info.sample_rate, encoder.sample_rate)
    blocks = stream_audio(path, encoder.sample_rate)
    batches = iter_windows(
        blocks, encoder.sample_rate, window, hop, frames, batch_size, source=str(path)
    )
    features = np.concatenate([encoder.encode_audio_windows(b) for b in batches]).astype(np.float32)
    times = frame_times(num_samples, encoder.sample_rate, window, hop, frames)
    if len(times) != len(features):
        raise AudioError(f"{path}: decoded {len(features)} windows, header implies {len(times)}")
    if not np.isfinite(features).all():
        raise AudioError(f"{path}: encoder produced non-finite features")
    return features, times


def extract_audio(
    encoder: AudioTextEncoder,
    recordings: dict[str, Path],
    out_dir: Path,
    window: float,
    hop: float,
    frames: str,
    batch_size: int = 64,
    progress: bool = True,
) -> ExtractionReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExtractionReport()
    for vid, path in tqdm(recordings.items(), desc="audio", disable=not progress):
        target = out_dir / f"{vid}.npz"
        try:
            info = audio_info(path)
            num_samples = resampled_length(info.num_frames, info.sample_rate, encoder.sample_rate)
            expected = len(frame_times(num_samples, encoder.sample_rate, window, hop, frames))
            if is_complete(target, "features", encoder.audio_dim, expected):
                report.reused += 1
                continue
            features, times = encode_recording(encoder, path, window, hop, frames, batch_size)
        except (AudioError, FileNotFoundError) as exc:
            report.failed.append((vid, str(exc)))
            continue
        save_npz(target, features=features, frame_times=times)
        report.written += 1
    return report


def extract_text(
    encoder: AudioTextEncoder,
    queries: Sequence[tuple[str | int, str]],
    out_dir: Path,
    batch_size: int = 64,
    progress: bool = True,
) -> ExtractionReport:
    """``qid{qid}.npz`` (``last_hidden_state``) for each ``(qid, text)``; repeated qids once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExtractionReport()
    todo: dict[str, str] = {}
    for qid, text in queries:
        if not str(text).strip():
            report.failed.append((text_name(qid), "empty query text"))
        elif is_complete(out_dir / f"{text_name(qid)}.npz", TEXT_KEY, encoder.text_dim):
            report.reused += 1
        else:
            todo[str(qid)] = text
    items = list(todo.items())
    with tqdm(total=len(items), desc="text", disable=not progress) as bar:
        for batch in chunks(items, batch_size):
            states = encoder.encode_text([text for _, text in batch])
            for (qid, _), state in zip(batch, states, strict=True):
                save_npz(out_dir / f"{text_name(qid)}.npz", **{TEXT_KEY: state.astype(np.float32)})
            report.written += len(batch)
            bar.update(len(batch))
    return report


def chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def build_encoder(feature: str, device: str = "auto", **options: Any) -> AudioTextEncoder:
    """The registered feature's encoder on ``device`` (one-line error if it has none)."""
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.registry import FEATURES

    spec = FEATURES.get(feature)
    if spec.encoder is None:
        raise ValueError(f"feature '{feature}' has no encoder: it can only be read from disk")
    return spec.encoder(**options).to(resolve_device(device))


def extract_features(
    encoder: AudioTextEncoder | Callable[[], AudioTextEncoder],
    feature: str,
    audio_dir: Path,
    out: Path,
    annotations: Sequence[Path] = (),
    window: float | None = None,
    hop: float | None = None,
    frames: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[ExtractionReport, ExtractionReport | None]:
    """Features of ``audio_dir`` into ``out`` (Lighthouse layout), resumably.

    With ``annotations``, only the recordings they name (a vid without a file is reported as
    failed) and their queries' texts; without, every recording and no text. The feature
    folder's manifest must match (else a one-line ``ValueError``) or is written. Returns the
    audio and text reports (text None without annotations).

    ``encoder`` may be a function building it: it is called once the folder and annotations
    have been checked, so a wrong path fails at once rather than after the weights load.
    """
    import lighthouse_audio
    from lighthouse_audio.data.annotations import load_queries
    from lighthouse_audio.data.feature_manifest import (
        FeatureManifest,
        differences,
        read_manifest,
        write_manifest,
    )
    from lighthouse_audio.data.layout import FeatureLayout

    files = recordings_by_vid(audio_dir)
    queries = [q for path in annotations for q in load_queries(path, require_windows=False)]
    if not isinstance(encoder, AudioTextEncoder):
        encoder = encoder()
    layout = FeatureLayout(out, feature)
    window, hop, frames = window or encoder.window, hop or encoder.hop, frames or encoder.frames
    manifest = FeatureManifest(
        feature=feature, weights_id=encoder.weights_id(), sample_rate=encoder.sample_rate,
        window=window, hop=hop, frames=frames, audio_dim=encoder.audio_dim,
        text_dim=encoder.text_dim, text_mode=encoder.text_mode,
        package_version=lighthouse_audio.__version__,
    )  # fmt: skip
    existing = read_manifest(layout.audio_dir)
    if existing is not None and differences(existing, manifest):
        raise ValueError(
            f"{layout.audio_dir}: holds features made differently "
            f"({'; '.join(differences(existing, manifest))}); choose another output folder"
        )
    for folder in (layout.audio_dir, layout.text_dir):  # writes a killed run left half-done
        remove_stale_temporaries(folder)
    layout.audio_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(layout.audio_dir, manifest)
    if queries:
        wanted = dict.fromkeys(q.vid for q in queries)
        missing = [vid for vid in wanted if vid not in files]
        recordings = {vid: files[vid] for vid in wanted if vid in files}
    else:
        missing, recordings = [], files
    print(f"lighthouse: {len(recordings)} recordings, {len(queries)} queries -> {out}")
    audio = extract_audio(
        encoder, recordings, layout.audio_dir, window, hop, frames, batch_size, progress
    )
    audio.failed.extend((vid, f"no audio file for this vid in {audio_dir}") for vid in missing)
    text = None
    if queries:
        text = extract_text(
            encoder, [(q.qid, q.query) for q in queries], layout.text_dir, batch_size, progress
        )
    return audio, text

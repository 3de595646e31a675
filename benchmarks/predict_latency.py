"""Prediction speed: ms per query on cached features, and an hour of audio end to end.

    python benchmarks/predict_latency.py                 # both parts, CPU
    python benchmarks/predict_latency.py --parts cached  # only the cached-feature timings
    python benchmarks/predict_latency.py --device cuda

1. **cached**: a Clotho-Moment-shaped AM-DETR (CLAP dims, span 75, random weights) on recordings
   of 11, 30 and 60 frames and 20-token queries, all already encoded. ``new`` is
   ``prediction.run.predict_queries``: all queries in shared forward passes, negative pass off.
   ``previous`` re-runs, step for step, the predictor this project had before it (one forward
   per query, QD-DETR's negative pass on). Both must return identical windows. ``single`` is
   ``new`` with one query per call (an interactive user).
2. **hour**: decode + extract (``aisfx-minilm``, float32 and int8) + predict 5 queries on a
   1-hour recording built from ../shared/sounds ambiences, with a random AM-DETR of the demo's
   shape (span 11 frames, half overlapping: 600 chunks per query).

Prints one JSON object; docs/PERFORMANCE.md records the numbers with machine and command.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.data.feature_store import l2_normalize_rows
from lighthouse_audio.data.targets import temporal_endpoint_features
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.prediction.model import load_model
from lighthouse_audio.prediction.run import EncodedAudio, predict_queries

SHARED = Path(__file__).resolve().parents[2] / "shared"
CACHE = Path(__file__).resolve().parent / ".cache" / "predict_latency"


def random_checkpoint(path: Path, feature: str, overrides: list[str]) -> Path:
    if not path.is_file():
        opt = load_config("qd_detr", "custom", feature, overrides)
        torch.manual_seed(0)
        model = build_model_bundle(opt).model
        optimizer = torch.optim.AdamW(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(lighthouse_checkpoint(model, optimizer, scheduler, 0, opt), path)
    return path


@torch.inference_mode()
def previous_predict(loaded, audio: EncodedAudio, text: torch.Tensor) -> list[list[float]]:
    """The predictor before the shared prediction path, for one query (its exact steps)."""
    model = loaded.model
    model.negative_pass = True
    try:
        length = audio.features.shape[0]
        inputs = {
            "src_txt": text[None],
            "src_txt_mask": torch.ones(1, text.shape[0]),
            "src_vid": temporal_endpoint_features(length)[None],
            "src_vid_mask": torch.ones(1, length),
            "src_aud": audio.features[None],
            "src_aud_mask": torch.ones(1, length),
        }
        inputs = {k: v.to(loaded.device) for k, v in inputs.items()}
        outputs = model(**inputs)
        meta = {"qid": 0, "query": "q", "vid": audio.name, "duration": audio.duration}
        return loaded.postprocessor(outputs, [meta])[0]["pred_relevant_windows"]
    finally:
        model.negative_pass = False


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cached_features(args: argparse.Namespace) -> dict:
    ckpt = random_checkpoint(CACHE / "clotho_shaped.ckpt", "clap", [])
    loaded = load_model(ckpt, device=args.device)
    rng = np.random.default_rng(0)
    texts = [
        torch.from_numpy(l2_normalize_rows(rng.standard_normal((20, 768)).astype(np.float32)))
        for _ in range(args.queries)
    ]
    queries = [f"query {i}" for i in range(args.queries)]
    out = {}
    for frames in args.frames:
        rows = rng.standard_normal((frames, 768)).astype(np.float32)
        audio = EncodedAudio(torch.from_numpy(l2_normalize_rows(rows)), float(frames), "cached")
        out[f"{frames}_frames"] = _cached_timings(loaded, audio, queries, texts, args.repeats)
    return out


def _cached_timings(loaded, audio: EncodedAudio, queries, texts, repeats: int) -> dict:
    new = predict_queries(loaded, audio, queries, texts)
    previous = [previous_predict(loaded, audio, t) for t in texts]
    identical = all(
        [w[:2] for w in a["pred_relevant_windows"]] == [w[:2] for w in b]
        and np.allclose([w[2] for w in a["pred_relevant_windows"]], [w[2] for w in b], atol=1e-4)
        for a, b in zip(new, previous, strict=True)
    )
    t_new = timed(lambda: predict_queries(loaded, audio, queries, texts), repeats)
    t_prev = timed(lambda: [previous_predict(loaded, audio, t) for t in texts], repeats)
    t_single = timed(
        lambda: [
            predict_queries(loaded, audio, [q], [t]) for q, t in zip(queries, texts, strict=True)
        ],
        repeats,
    )
    n = len(queries)
    return {
        "queries": n,
        "identical_windows": identical,
        "new_batched_ms_per_query": round(1000 * t_new / n, 3),
        "new_single_ms_per_query": round(1000 * t_single / n, 3),
        "previous_ms_per_query": round(1000 * t_prev / n, 3),
        "speedup_batched_vs_previous": round(t_prev / t_new, 2),
        "speedup_single_vs_previous": round(t_prev / t_single, 2),
        "queries_per_s_batched": round(n / t_new, 1),
    }


def hour_recording(seconds: float) -> Path:
    """Shared ambiences with captioned clips laid over them, looped to ``seconds`` (16 kHz)."""
    path = CACHE / f"hour_{int(seconds)}s.flac"
    if path.is_file():
        return path
    rate = 16000
    parts = []
    for source in sorted((SHARED / "sounds" / "bg").rglob("*.ogg"))[:6]:
        audio, sr = sf.read(source, dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        idx = np.round(np.arange(int(len(mono) * rate / sr)) * sr / rate).astype(int)
        parts.append(mono[np.minimum(idx, len(mono) - 1)])
    loop = np.concatenate(parts)
    signal = np.tile(loop, int(np.ceil(seconds * rate / len(loop))))[: int(seconds * rate)]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, rate)
    return path


def hour_end_to_end(args: argparse.Namespace) -> dict:
    from lighthouse_audio.predictor import MomentPredictor

    ckpt = random_checkpoint(
        CACHE / "demo_shaped.ckpt", "aisfx-minilm", ["max_v_l=11", "max_a_l=11"]
    )
    path = hour_recording(args.hour_seconds)
    queries = ["a dog barks", "rain falls", "a car passes", "people talk", "birds sing"]
    out = {"seconds_of_audio": args.hour_seconds, "queries": len(queries)}
    for precision in args.precision:
        predictor = MomentPredictor(ckpt, device=args.device, precision=precision)
        start = time.perf_counter()
        audio = predictor.encode_audio(path)
        encoded = time.perf_counter()
        results = predictor.predict(queries, audio)
        done = time.perf_counter()
        out[precision] = {
            "decode_extract_s": round(encoded - start, 1),
            "predict_s": round(done - encoded, 2),
            "total_s": round(done - start, 1),
            "real_time_factor": round(args.hour_seconds / (done - start), 1),
            "chunks_per_query": results[0].get("num_chunks", 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["cached", "hour"], choices=["cached", "hour"]
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument(
        "--frames",
        type=int,
        nargs="+",
        default=[11, 30, 60],
        help="recording lengths (frames) for the cached-feature timings",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hour-seconds", type=float, default=3600.0)
    parser.add_argument("--precision", nargs="+", default=["int8", "float32"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        "machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
        "device": args.device,
    }
    if "cached" in args.parts:
        result["cached"] = cached_features(args)
    if "hour" in args.parts:
        result["hour"] = hour_end_to_end(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Speed of ``m2d-clap`` extraction: seconds of compute per minute of audio.

Times the per-recording path of ``lighthouse extract --feature m2d-clap`` (decode, resample to
16 kHz, cut whole 1 s windows, ViT + semantic-token projector per window) on a real ambience
from ../shared/sounds looped to ``--seconds``; optionally also the per-frame encoder outputs of
the whole recording (``--frames-too``: 10.01 s units, no projection) and the text side:

    python benchmarks/m2d_clap_speed.py                         # CPU, torch's default threads
    python benchmarks/m2d_clap_speed.py --threads 2 --seconds 60 --repeats 3 --frames-too
    python benchmarks/m2d_clap_speed.py --device cuda --seconds 600
    python benchmarks/m2d_clap_speed.py --weights .../m2d_clap_vit_base-...-2025/checkpoint-30.pth

Without ``--weights`` the random-weight stand-in the test suite regenerates
(``~/.cache/lighthouse-audio/test-weights/m2d_clap2025_random-*/``) is used: same network, same
speed. A short warm-up first; then the parts take turns ``--repeats`` times and each one's
median is reported.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lighthouse_audio.audio.decode import load_audio
from lighthouse_audio.encoders.m2d_clap import build_m2d_clap_encoder
from lighthouse_audio.extraction.extract import encode_recording

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEST_WEIGHTS = Path.home() / ".cache" / "lighthouse-audio" / "test-weights"
QUERIES = ["a dog barks twice", "rain falls on a metal roof while thunder rumbles far away"] * 32


def make_recording(path: Path, seconds: float) -> Path:
    """A ``seconds``-long recording at the source's rate: the first shared ambience, looped."""
    ambiences = sorted((SHARED / "sounds" / "bg").rglob("*.ogg"))
    if not ambiences:
        raise SystemExit("../shared/sounds/bg has no ambience to loop")
    audio, rate = sf.read(ambiences[0], dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    reps = int(np.ceil(seconds * rate / len(mono)))
    sf.write(path, np.tile(mono, reps)[: int(seconds * rate)], rate)
    return path


def default_weights() -> Path:
    found = sorted(TEST_WEIGHTS.glob("m2d_clap2025_random-*/*/checkpoint-30.pth"))
    if not found:
        raise SystemExit(
            "no --weights and no regenerated stand-in: run "
            "`pytest tests/encoders/test_m2d_clap.py` once, or pass --weights"
        )
    return found[-1]


def timed(runs: dict[str, Callable[[], object]], repeats: int, device: str) -> dict:
    """``{name: [seconds per repeat]}``; the runs take turns, so a changing machine load hits
    them alike and their ratio holds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint (default: the test stand-in)")
    parser.add_argument("--tokenizer", type=Path, default=SHARED / "fixtures" / "m2d_clap"
                        / "bert_tokenizer", help="folder with BERT's vocab.txt")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the recording")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--frames-too", action="store_true",
                        help="also time the per-frame outputs of the whole recording")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / ".cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    args.work.mkdir(parents=True, exist_ok=True)
    recording = make_recording(args.work / "m2d_clap_speed.wav", args.seconds)
    warm = make_recording(args.work / "m2d_clap_speed_warm.wav", 3.0)
    weights = args.weights or default_weights()
    start = time.perf_counter()
    encoder = build_m2d_clap_encoder(weights, tokenizer=args.tokenizer, device=args.device)
    encoder.batch_size = args.batch_size
    build_s = time.perf_counter() - start

    def windows() -> np.ndarray:
        return encode_recording(encoder, recording, 1.0, 1.0, "none", args.batch_size)[0]

    encode_recording(encoder, warm, 1.0, 1.0, "none", 8)  # warm-up
    runs: dict[str, Callable[[], object]] = {"windows": windows}
    if args.frames_too:
        signal = load_audio(recording, encoder.sample_rate)
        runs["frames"] = lambda: encoder.encode_audio_frames(signal)
    runs["text"] = lambda: encoder.encode_text(QUERIES)
    times = timed(runs, args.repeats, args.device)
    results: dict = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "seconds_of_audio": args.seconds,
        "weights": str(weights),
        "build_s": build_s,
    }
    for part in ("windows", "frames"):
        if part in times:
            cost = float(np.median(times[part])) * 60.0 / args.seconds
            results[part] = {"runs_s": times[part], "s_per_audio_minute": cost}
    text_s = float(np.median(times["text"]))
    results["text"] = {"queries": len(QUERIES), "ms_per_query": text_s / len(QUERIES) * 1000}

    for part in ("windows", "frames"):
        if part in results:
            cost = results[part]["s_per_audio_minute"]
            print(f"{part}: {cost:.2f} s per minute of audio = {60 / cost:.1f}x real time "
                  f"({args.device}, {torch.get_num_threads()} threads)")  # fmt: skip
    print(f"text: {results['text']['ms_per_query']:.1f} ms per query; build {build_s:.1f} s")
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""``lighthouse serve``: find moments in a recording from the browser (a Gradio app).

Upload a recording (or choose one of the server's), type one or more queries (one per line), and
the app shows the recording's spectrogram with each query's top moments and saliency, a table of
the moments, and plays a moment when its row is clicked. Gradio is what Lighthouse's own demo
uses: upload widgets, audio players, a queue for several users and size limits come with it.

Safety, by construction:

- it binds 127.0.0.1 unless told otherwise;
- uploads are limited in size (``max_file_size``, enforced by Gradio) and duration (checked from
  the header before any decoding);
- nothing the browser sends becomes a path: uploads live where Gradio put them, a chosen
  recording is looked up by name in the list made at start-up, a clicked row is an index into
  this session's own results;
- each session keeps its own results (``gr.State``); the model and encoder are shared read-only,
  and the queue runs ``concurrency`` requests at once.
"""

import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.audio.decode import AudioError, audio_info, load_segment
from lighthouse_audio.prediction.formatting import format_time, select_moments

__all__ = ["ServeConfig", "build_app", "launch"]

TABLE_HEADERS = ["query", "rank", "start", "end", "score"]


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    recordings: Path | None = None  # a folder whose recordings can be chosen by name
    max_upload_mb: float = 200.0
    max_duration: float = 3 * 3600.0  # seconds
    concurrency: int = 2
    top_k: int = 3
    cache_size: int = 8  # encoded recordings kept (per path, size and modification time)
    workdir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="lighthouse-serve-"))
    )


class EncodingCache:
    """The last few encoded recordings, so new queries on the same one skip the encoder."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, predictor: Any, path: Path) -> Any:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        encoded = predictor.encode_audio(path)
        with self._lock:
            self._items[key] = encoded
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return encoded


def server_recordings(folder: Path | None) -> dict[str, Path]:
    """Name (relative path) -> file, for every audio file under ``folder``, made once."""
    if folder is None:
        return {}
    from lighthouse_audio.data.layout import find_audio_files

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: recordings folder not found")
    return {str(p.relative_to(folder)): p for p in find_audio_files(folder)}


def parse_queries(text: str | None) -> list[str]:
    from lighthouse_audio.prediction.queries import check_queries

    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return check_queries(lines)


def build_app(predictor: Any, config: ServeConfig) -> Any:
    """The Gradio ``Blocks`` app (not launched); ``predictor`` is a ``MomentPredictor``."""
    import gradio as gr

    from lighthouse_audio.prediction.plot import plot_prediction

    choices = server_recordings(config.recordings)
    cache = EncodingCache(config.cache_size)
    loaded = predictor.loaded
    span = f"{loaded.span} frames" if loaded.span else "any length"
    about = (
        f"Model `{loaded.source.name}` ({loaded.model_name}, feature `{predictor.encoder.name}`, "
        f"span {span}); recordings up to {format_time(config.max_duration)} and "
        f"{config.max_upload_mb:g} MB. Longer recordings than the span are predicted in "
        "overlapping chunks."
    )

    def pick_recording(upload: str | None, chosen: str | None) -> Path:
        if upload:
            return Path(upload)  # a file Gradio stored for this upload
        if chosen:
            if chosen not in choices:
                raise gr.Error("unknown recording: choose one from the list")
            return choices[chosen]
        raise gr.Error("upload a recording or choose one first")

    def find_moments(upload, chosen, text, top_k, min_score, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        path = pick_recording(upload, chosen)
        try:
            queries = parse_queries(text)
            duration = audio_info(path).duration
            if duration > config.max_duration:
                raise gr.Error(
                    f"the recording lasts {format_time(duration)}; this server accepts up to "
                    f"{format_time(config.max_duration)}"
                )
            progress(0.1, desc="encoding the recording")
            audio = cache.get(predictor, path)
            progress(0.6, desc="predicting")
            results = predictor.predict(queries, audio)
        except (AudioError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        top_k = int(top_k)
        rows, moments = [], []
        for result in results:
            picked = select_moments(result["pred_relevant_windows"], top_k, float(min_score))
            for rank, (start, end, score) in enumerate(picked, start=1):
                rows.append([result["query"], rank, format_time(start), format_time(end),
                             round(score, 3)])  # fmt: skip
                moments.append((str(path), start, end))
        progress(0.8, desc="drawing")
        picture = Path(tempfile.mkdtemp(dir=config.workdir)) / "moments.png"
        plot_prediction(path, results, picture, frame_times=audio.frame_times,
                        top_k=min(top_k, 3), min_score=float(min_score))  # fmt: skip
        status = f"{len(queries)} queries on {path.name} ({format_time(duration)})"
        if any(r.get("num_chunks", 1) > 1 for r in results):
            status += f", predicted in {results[0]['num_chunks']} overlapping chunks"
        return str(picture), rows, moments, status, None

    # no postponed annotations in this module: Gradio finds SelectData by its annotation
    def play_moment(moments, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not moments or not 0 <= int(row) < len(moments):
            return None
        path, start, end = moments[int(row)]
        signal, rate = load_segment(path, start, end)
        return rate, (np.clip(signal, -1.0, 1.0) * 32767).astype(np.int16)  # what players take

    with gr.Blocks(
        title="lighthouse-audio: moments in a recording", analytics_enabled=False
    ) as app:
        gr.Markdown("## Find moments in a recording\n" + about)
        moments_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=2):
                upload = gr.Audio(sources=["upload"], type="filepath", label="Recording",
                                  elem_id="recording")  # fmt: skip
                chosen = gr.Dropdown(list(choices), value=None, visible=bool(choices),
                                     label="or choose a server recording",
                                     elem_id="choice")  # fmt: skip
                queries = gr.Textbox(lines=3, label="Queries, one per line",
                                     placeholder="a dog barks\nrain on a roof",
                                     elem_id="queries")  # fmt: skip
                with gr.Row():
                    top_k = gr.Slider(1, 10, value=config.top_k, step=1, label="moments per query")
                    min_score = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="minimum score")
                run = gr.Button("Find moments", variant="primary", elem_id="find")
                status = gr.Markdown(elem_id="status")
            with gr.Column(scale=3):
                picture = gr.Image(type="filepath", label="Moments", elem_id="picture")
                table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False,
                                     label="Moments (click a row to play it)",
                                     elem_id="moments")  # fmt: skip
                player = gr.Audio(label="Selected moment", interactive=False, elem_id="moment")
        run.click(
            find_moments,
            inputs=[upload, chosen, queries, top_k, min_score],
            outputs=[picture, table, moments_state, status, player],
        )
        table.select(play_moment, inputs=[moments_state], outputs=[player])
    app.queue(default_concurrency_limit=config.concurrency)
    return app


def launch(predictor: Any, config: ServeConfig, block: bool = True) -> Any:
    """Build and start the app; returns it (with ``block=False``, the server runs in a thread)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    config.workdir.mkdir(parents=True, exist_ok=True)  # pictures are written there per request
    app = build_app(predictor, config)
    app.launch(
        server_name=config.host,
        server_port=config.port,
        max_file_size=int(config.max_upload_mb * 1024 * 1024),
        prevent_thread_lock=not block,
        ssr_mode=False,
        show_error=True,
        quiet=not block,
        allowed_paths=[str(config.workdir)],
    )
    return app

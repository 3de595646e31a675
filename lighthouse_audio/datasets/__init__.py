"""Dataset plugins: what the engine needs to know about each benchmark.

A dataset is data, not code: annotation locations, the post-processing clamp and the domain
(which decides, in ``registry.valid_pairs``, which features it can be paired with).
"""

from __future__ import annotations

from dataclasses import dataclass

from lighthouse_audio.registry import DATASETS


@dataclass(frozen=True)
class DatasetSpec:
    """How one benchmark is laid out and post-processed.

    ``max_ts_val`` is Lighthouse's fixed post-processing clamp in seconds (not the clip duration).
    ``train_path``/``eval_path`` are the Lighthouse-layout annotation files, relative to the
    working directory, or None for evaluation-only sets.
    """

    name: str
    domain: str
    max_ts_val: float
    clip_length: float = 1.0
    train_path: str | None = None
    eval_path: str | None = None
    test_path: str | None = None
    description: str = ""


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    DATASETS.add(spec.name, spec, domain=spec.domain)
    return spec


register_dataset(
    DatasetSpec(
        name="clotho-moment",
        domain="audio",
        max_ts_val=150,
        train_path="data/clotho_moment/clotho_moment_train_release.jsonl",
        eval_path="data/clotho_moment/clotho_moment_val_release.jsonl",
        test_path="data/clotho_moment/clotho_moment_test_release.jsonl",
        description="Clotho-Moment: simulated 60 s recordings, one window per query",
    )
)
register_dataset(
    DatasetSpec(
        name="unav100-subset",
        domain="audio",
        max_ts_val=150,
        test_path="data/unav100-subset/unav100-subset_test_release.jsonl",
        description="UnAV-100 subset: real audio-visual events, evaluation only",
    )
)
register_dataset(
    DatasetSpec(
        name="tut2017",
        domain="audio",
        max_ts_val=150,
        test_path="data/tut2017/tut2017_test_release.jsonl",
        description="TUT Sound Events 2017: street recordings, evaluation only",
    )
)
register_dataset(
    DatasetSpec(
        name="castella",
        domain="audio",
        max_ts_val=300,
        train_path="data/castella/castella_train_release.jsonl",
        eval_path="data/castella/castella_val_release.jsonl",
        test_path="data/castella/castella_test_release.jsonl",
        description="CASTELLA: real long recordings, several windows per query",
    )
)
register_dataset(
    DatasetSpec(
        name="custom",
        domain="audio",
        max_ts_val=150,
        description="any Lighthouse-format jsonl + feature folder (paths from the config)",
    )
)

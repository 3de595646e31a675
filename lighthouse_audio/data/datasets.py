"""Dataset plugins: what the engine needs to know about each benchmark beyond its YAML file.

A dataset is data, not code: its domain (which decides, in ``registry.valid_pairs``, the features
it pairs with) and Lighthouse's post-processing clamp. Annotation paths and lengths live in
``configs/dataset/<name>.yml``, as in Lighthouse.

>>> DATASETS.get("castella").max_ts_val
300
"""

from __future__ import annotations

from dataclasses import dataclass

from lighthouse_audio.registry import DATASETS

__all__ = ["DatasetSpec"]


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark.

    Args:
        name: registry key = ``configs/dataset/<name>.yml`` = the config's ``dset_name``.
        domain: the kind of features it pairs with ("audio").
        max_ts_val: Lighthouse's fixed post-processing clamp in seconds (not the duration).
        description: one line for ``lighthouse list``.
        features: feature names it may use, when narrower than its domain (None: all).
        min_w_l, max_w_l: the window-length bounds Lighthouse records in its post-processor for
            this dataset. Its post-processing never reads them; they are kept so the recorded
            settings match Lighthouse's (CASTELLA's differ from the 150 s datasets').
    """

    name: str
    domain: str
    max_ts_val: float
    description: str = ""
    features: tuple[str, ...] | None = None
    min_w_l: float = 2
    max_w_l: float = 60


for _spec in (
    DatasetSpec("clotho-moment", "audio", 150, "simulated 60 s recordings, one window a query"),
    DatasetSpec("unav100-subset", "audio", 150, "UnAV-100 subset: real events, evaluation only"),
    DatasetSpec(
        "tut2017", "audio", 150, "TUT Sound Events 2017 street recordings, evaluation only"
    ),
    DatasetSpec(
        "castella",
        "audio",
        300,
        "CASTELLA: real long recordings, several windows a query",
        min_w_l=1,
        max_w_l=300,
    ),
    DatasetSpec("custom", "audio", 150, "any Lighthouse-format jsonl + feature folder"),
):
    DATASETS.register(_spec)

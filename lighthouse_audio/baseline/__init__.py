"""The AMR paper's zero-shot sliding-window baseline (Munakata et al., ICASSP 2025).

Each window's audio embedding is compared with the query's pooled text embedding in a joint
audio-text space (:mod:`lighthouse_audio.joint`); the similarity curve is thresholded,
median-filtered, and each run of positive windows becomes a moment scored by its mean similarity.
The threshold and filter length are tuned on a validation split by grid search.

- ``moments``: similarity curve -> ranked moments (pure numpy/scipy);
- ``features``: frame layout and raw (un-normalised) feature files;
- ``similarity``: the joint space and the per-query similarity curves of a split;
- ``predict``: curves -> Lighthouse prediction lines;
- ``tune``: grid search on a validation split;
- ``model``: the ``sliding_window`` baseline plugin (``registry.BASELINES``) and its run config.

Importing the package registers the plugin.
"""

from lighthouse_audio.baseline import model

__all__ = ["model"]

"""Joint spaces trained by ``lighthouse align``: where they live and how a feature finds its own.

A trained space only fits the encoder weights its heads were trained on, so the file is named
after them, ``{cache}/joint/{feature}-{weights_id}.pt`` (``{cache}`` is ``$LIGHTHOUSE_AUDIO_CACHE``,
else ``$XDG_CACHE_HOME/lighthouse-audio``, else ``~/.cache/lighthouse-audio``), and its ``meta``
records ``weights_id``: loading refuses a file made for other weights.

>>> default_joint_space_path("toy", "v1/2").name
'toy-v1_2.pt'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lighthouse_audio.joint.space import JointSpace, JointSpaceError, load_joint_space

__all__ = ["TrainedJointSpace", "default_joint_space_path", "path_stem"]


def path_stem(feature: str, weights_id: str) -> str:
    """``{feature}-{weights_id}``, file-name safe (a plugin's id may hold ``/`` or spaces)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{feature}-{weights_id}")


def default_joint_space_path(feature: str, weights_id: str) -> Path:
    """Where ``lighthouse align`` writes, and a feature's factory looks, by default."""
    from lighthouse_audio.paths import default_cache_dir

    return default_cache_dir() / "joint" / f"{path_stem(feature, weights_id)}.pt"


class TrainedJointSpace:
    """The ``FeatureSpec.joint_space`` factory of a feature whose heads ``lighthouse align`` trains.

    ``weights_id(**encoder_options)`` must return what the feature's encoder, built with the same
    options, reports as ``weights_id()``, preferably without loading the networks. Calling the
    factory, ``factory(path=None, **encoder_options)``, loads ``path`` (default: the file for the
    installed weights) and refuses a file made for another feature or other weights.
    ``lighthouse align`` trains only features with no joint space or one of these.
    """

    def __init__(self, feature: str, weights_id: Callable[..., str]) -> None:
        self.feature = feature
        self.weights_id = weights_id

    def default_path(self, **encoder_options: Any) -> Path:
        return default_joint_space_path(self.feature, self.weights_id(**encoder_options))

    def __call__(self, path: str | os.PathLike | None = None, **encoder_options: Any) -> JointSpace:
        installed = self.weights_id(**encoder_options)
        if path is None:
            path = default_joint_space_path(self.feature, installed)
            if not path.is_file():
                raise JointSpaceError(
                    f"{path}: no joint space for {self.feature} weights {installed}; make one "
                    f"with `lighthouse align --feature {self.feature} --sounds DIR`"
                )
        space = load_joint_space(path, feature=self.feature)
        trained_on = space.meta.get("weights_id")
        if trained_on != installed:
            raise JointSpaceError(
                f"{path}: heads trained on {self.feature} weights {trained_on}, but the installed "
                f"weights are {installed}; rerun `lighthouse align --feature {self.feature}`"
            )
        return space

    def __repr__(self) -> str:
        return f"TrainedJointSpace({self.feature!r})"

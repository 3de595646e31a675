"""``lighthouse align``: train a joint audio-text space for a feature that has none.

Features whose audio and text towers were trained apart (``aisfx-minilm``) get two small
projection heads, trained contrastively on captioned clips over the *stored* feature form, so
that zero-shot methods (the sliding-window baseline, SED) can compare a query with each window.
The result is a :class:`~lighthouse_audio.joint.space.JointSpace` file that the feature's
``joint_space`` factory loads (:mod:`lighthouse_audio.joint.trained`).
"""

from lighthouse_audio.align.align_feature import AlignResult, align_feature

__all__ = ["AlignResult", "align_feature"]

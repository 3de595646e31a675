"""Shared audio-text spaces over stored features (see :mod:`lighthouse_audio.joint.space`)."""

from lighthouse_audio.joint.space import (
    JointSpace,
    JointSpaceError,
    load_joint_space,
    save_joint_space,
)

__all__ = ["JointSpace", "JointSpaceError", "load_joint_space", "save_joint_space"]

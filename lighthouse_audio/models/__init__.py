"""Model plugins. Each module registers one ``build(opt) -> ModelBundle`` in ``MODELS``."""

from lighthouse_audio.models import (
    moment_detr,  # noqa: F401 - registers "moment_detr"
    qd_detr,  # noqa: F401 - registers "qd_detr"
)

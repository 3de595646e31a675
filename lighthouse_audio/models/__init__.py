"""Model plugins. Each module registers one ``build(opt) -> ModelBundle`` in ``MODELS``."""

from lighthouse_audio.models import qd_detr  # noqa: F401 - registers "qd_detr"

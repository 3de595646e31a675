"""Model plugins. Each module registers one ``build(opt) -> ModelBundle`` in ``MODELS``."""

from lighthouse_audio.models import (
    cg_detr,  # noqa: F401 - registers "cg_detr"
    eatr,  # noqa: F401 - registers "eatr"
    moment_detr,  # noqa: F401 - registers "moment_detr"
    qd_detr,  # noqa: F401 - registers "qd_detr"
    taskweave,  # noqa: F401 - registers "taskweave_mr2hd", "taskweave_hd2mr"
    tr_detr,  # noqa: F401 - registers "tr_detr"
    uvcom,  # noqa: F401 - registers "uvcom"
)

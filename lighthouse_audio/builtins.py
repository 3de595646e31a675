"""Importing this module registers every built-in plugin (models, datasets, features)."""

import lighthouse_audio.baseline.model  # noqa: F401 - registers "sliding_window"
import lighthouse_audio.datasets  # noqa: F401
import lighthouse_audio.encoders.aisfx_minilm  # noqa: F401
import lighthouse_audio.encoders.hf_pair  # noqa: F401
import lighthouse_audio.encoders.laion_clap  # noqa: F401
import lighthouse_audio.features  # noqa: F401
import lighthouse_audio.models  # noqa: F401

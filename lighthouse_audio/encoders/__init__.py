"""Audio-text encoders: turn recordings and queries into the features models train on.

Importing this package registers every built-in feature (``registry.FEATURES``): each encoder
module declares its ``FeatureSpec`` once. Their heavy dependencies (transformers, aisfx, ...) are
imported only when an encoder is built.
"""

from lighthouse_audio.encoders import aisfx_minilm, clap, hf_pair, laion_clap, m2d_clap

__all__ = ["aisfx_minilm", "clap", "hf_pair", "laion_clap", "m2d_clap"]

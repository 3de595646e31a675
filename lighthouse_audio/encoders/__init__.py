"""Audio-text encoders: turn recordings and queries into the features models train on.

Each encoder module registers a ``FeatureSpec`` with an ``encoder`` factory in ``FEATURES``.
Their heavy dependencies (transformers, aisfx, ...) are imported only when an encoder is built.
"""

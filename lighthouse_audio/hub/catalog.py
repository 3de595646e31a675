"""What can be named instead of a path: released checkpoints and encoder weights.

Each entry says where the file lives (a release URL, or a file in a Hugging Face hub repository),
what it is for, and its sha256 when the publisher gives one. ``lighthouse models`` lists them;
``load_model("clap_qd_detr_clotho-moment")`` downloads one into the cache on first use. Other
packages add entries through the ``lighthouse_audio.pretrained`` entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass

from lighthouse_audio.registry import Registry

PRETRAINED = Registry("pretrained file", entry_point_group="lighthouse_audio.pretrained")


@dataclass(frozen=True)
class Artifact:
    """One downloadable file.

    Args:
        name: what users type (``lighthouse models`` lists it).
        kind: ``checkpoint`` (a model to predict with) or ``weights`` (an encoder's).
        filename: the file's name in the cache.
        description: one line for ``lighthouse models``.
        url: a direct download address (release files, Zenodo), or
        hf_repo / hf_filename: a file in a Hugging Face hub repository (downloaded with
            huggingface_hub, which keeps its own cache).
        sha256: the publisher's checksum, if known; otherwise the first download's is recorded
            and every later use is checked against it.
        feature: the feature a checkpoint was trained on (its encoder is needed to predict).
        member: for a zip at ``url`` (``filename`` is then the zip's name in the cache): the
            one file inside it that the name stands for, ``FOLDER/FILE``; it is unpacked to
            ``<cache>/hub/files/FOLDER/FILE`` (the zip is removed), and ``sha256`` is its own.
    """

    name: str
    kind: str
    filename: str
    description: str
    url: str | None = None
    hf_repo: str | None = None
    hf_filename: str | None = None
    sha256: str | None = None
    feature: str | None = None
    license: str = ""
    member: str | None = None

    @property
    def source(self) -> str:
        if self.hf_repo:
            return f"https://huggingface.co/{self.hf_repo}/resolve/main/{self.hf_filename}"
        return str(self.url)


register_artifact = PRETRAINED.register


register_artifact(
    Artifact(
        name="clap_qd_detr_clotho-moment",
        kind="checkpoint",
        filename="clap_qd_detr_clotho-moment.ckpt",
        description="Lighthouse's AM-DETR (QD-DETR, MS-CLAP features) trained on Clotho-Moment",
        url="https://zenodo.org/records/13961029/files/clap_qd_detr_clotho-moment.ckpt?download=1",
        feature="clap",
        license="Apache-2.0 (Lighthouse)",
    )
)
register_artifact(
    Artifact(
        name="clap_qd_detr_castella",
        kind="checkpoint",
        filename="clap_qd_detr_finetuned.ckpt",
        description="Lighthouse's AM-DETR (MS-CLAP features), Clotho-Moment then CASTELLA "
        "(the DCASE 2026 Task 6 baseline)",
        url="https://zenodo.org/records/17422909/files/clap_qd_detr_finetuned.ckpt?download=1",
        feature="clap",
        license="Apache-2.0 (Lighthouse)",
    )
)
register_artifact(
    Artifact(
        name="msclap-2023",
        kind="weights",
        filename="CLAP_weights_2023.pth",
        description="MS-CLAP 2023 weights (HTSAT audio, GPT-2 text): the `clap` feature's encoder",
        hf_repo="microsoft/msclap",
        hf_filename="CLAP_weights_2023.pth",
        feature="clap",
        license="MIT (microsoft/CLAP)",
    )
)
for _name in ("vocab.json", "merges.txt"):
    register_artifact(
        Artifact(
            name=f"gpt2-{_name.split('.')[0]}",
            kind="weights",
            filename=_name,
            description=f"GPT-2 tokenizer file {_name} (MS-CLAP 2023's text tokenizer)",
            hf_repo="openai-community/gpt2",
            hf_filename=_name,
            feature="clap",
            license="MIT (OpenAI GPT-2)",
        )
    )
register_artifact(
    Artifact(
        name="m2d-clap-2025",
        kind="weights",
        filename="m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025.zip",
        description="M2D-CLAP 2025 (ViT-B audio, BERT text; nttcslab/m2d release v0.5.0): the "
        "`m2d-clap` feature's encoder",
        url="https://github.com/nttcslab/m2d/releases/download/v0.5.0/"
        "m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025.zip",
        # The folder name is the model's configuration, so it is kept. No published checksum:
        # the first use's is recorded (a third party reports sha256 2385216...85c8a1 for the
        # .pth, not confirmed here).
        member="m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025/checkpoint-30.pth",
        feature="m2d-clap",
        license="see https://github.com/nttcslab/m2d/blob/master/LICENSE.pdf",
    )
)
register_artifact(
    Artifact(
        name="bert-base-uncased-vocab",
        kind="weights",
        filename="bert-base-uncased-vocab.txt",
        description="BERT's uncased WordPiece vocabulary (M2D-CLAP 2025's text tokenizer)",
        hf_repo="google-bert/bert-base-uncased",
        hf_filename="vocab.txt",
        feature="m2d-clap",
        license="Apache-2.0 (Google BERT)",
    )
)

"""Packaging for lighthouse-audio. torch must be installed first, pinned (see README).

The YAML tree lives at the top of the repository (``configs/``, as in Lighthouse) and is shipped
inside the package as ``lighthouse_audio/configs``, so an installed copy finds it without the
source tree (``config.config_root``).
"""

from pathlib import Path

from setuptools import find_packages, setup

CONFIG_LAYERS = sorted(p.name for p in (Path(__file__).parent / "configs").iterdir() if p.is_dir())
CONFIG_PACKAGES = ["lighthouse_audio.configs"] + [
    f"lighthouse_audio.configs.{layer}" for layer in CONFIG_LAYERS
]

setup(
    name="lighthouse-audio",
    version="0.1.0",
    description="Language-based audio moment retrieval: a Lighthouse-compatible AM-DETR engine",
    python_requires=">=3.11",
    packages=find_packages(include=["lighthouse_audio", "lighthouse_audio.*"]) + CONFIG_PACKAGES,
    package_dir={"lighthouse_audio.configs": "configs"},
    package_data={
        "lighthouse_audio.configs": ["*.yml"],
        **{package: ["*.yml"] for package in CONFIG_PACKAGES[1:]},
        "lighthouse_audio.demo": ["*.json", "*.jsonl"],
        "lighthouse_audio.report": ["*.json"],
    },
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6",
        "easydict>=1.10",
        "tqdm>=4.60",
        "soundfile>=0.12",
        "soxr>=0.3",
        "transformers>=5.0",
        "matplotlib>=3.7",
        "huggingface_hub>=0.23",
    ],
    extras_require={
        "web": ["gradio>=5.0"],
        "dev": [
            "pytest>=7",
            "ruff>=0.4",
            "hypothesis>=6.100",
            "gradio>=5.0",
            "gradio_client>=1.0",
            "selenium>=4.10",
        ],
    },
    entry_points={"console_scripts": ["lighthouse = lighthouse_audio.cli.main:main"]},
)

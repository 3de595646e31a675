"""Packaging for lighthouse-audio. torch must be installed first, pinned (see README)."""

from setuptools import find_packages, setup

setup(
    name="lighthouse-audio",
    version="0.1.0",
    description="Language-based audio moment retrieval: a Lighthouse-compatible AM-DETR engine",
    python_requires=">=3.11",
    packages=find_packages(include=["lighthouse_audio", "lighthouse_audio.*"]),
    include_package_data=True,
    package_data={
        "lighthouse_audio": ["configs/**/*.yml", "configs/*.yml", "report/paper_results.json"]
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
        "dev": ["pytest>=7", "ruff>=0.4", "gradio>=5.0", "gradio_client>=1.0", "selenium>=4.10"],
    },
    entry_points={"console_scripts": ["lighthouse = lighthouse_audio.cli.main:main"]},
)

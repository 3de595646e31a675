"""``lighthouse list``: what is registered, and which dataset/feature pairs are valid."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list registered models, datasets and features")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import lighthouse_audio.builtins  # noqa: F401
    from lighthouse_audio.registry import DATASETS, FEATURES, MODELS, valid_pairs

    for registry in (MODELS, DATASETS, FEATURES):
        print(f"{registry.kind}s:")
        for entry in registry.entries():
            domain = entry.meta.get("domain")
            suffix = f"  [{domain}]" if domain else ""
            if entry.meta.get("untrained"):
                suffix += f"  (not trained; {entry.meta['untrained']})"
            print(f"  {entry.name}{suffix}")
    print("valid dataset/feature pairs:")
    for dataset, feature in valid_pairs():
        print(f"  {dataset} + {feature}")
    return 0

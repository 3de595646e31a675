"""``lighthouse list``: what is registered, and which dataset/feature pairs are valid."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list registered models, datasets and features")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.registry import BASELINES, DATASETS, FEATURES, MODELS, valid_pairs

    print("models:")
    for name in MODELS.names():
        print(f"  {name}")
    print("baselines:")
    for baseline in BASELINES:
        print(f"  {baseline.name}  (not trained; use {baseline.tuned_by})")
    for registry in (DATASETS, FEATURES):
        print(f"{registry.kind}s:")
        for plugin in registry:
            print(f"  {plugin.name}  [{plugin.domain}]")
    print("valid dataset/feature pairs:")
    for dataset, feature in valid_pairs():
        print(f"  {dataset} + {feature}")
    return 0

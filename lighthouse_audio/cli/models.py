"""``lighthouse models``: released checkpoints and encoder weights that can be named.

lighthouse models                 # what can be named, and whether it is in the cache
lighthouse models --fetch NAME    # download it now (e.g. before going offline)
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the checkpoints and encoder weights that can be named (downloaded on use)",
        description="Names work wherever a checkpoint or weights path does (--checkpoint, "
        "--weights, QDDETRPredictor). A name is downloaded into the cache on first use "
        "(resumable, sha256 recorded and checked on every later use); with HF_HUB_OFFLINE=1 "
        "or LIGHTHOUSE_AUDIO_OFFLINE=1 nothing is downloaded and the error says where to put "
        "the file. Any hub file works too: hf://OWNER/REPO/FILE[@REVISION].",
    )
    parser.add_argument("--fetch", metavar="NAME", action="append", default=[],
                        help="download NAME now (repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def _where(artifact) -> str:
    """The cached path, or 'not downloaded' (never touches the network)."""
    from lighthouse_audio.hub.fetch import local_path

    placed = local_path(artifact)
    if placed.is_file():
        return str(placed)
    if artifact.hf_repo:
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(artifact.hf_repo, artifact.hf_filename)
        except Exception:  # noqa: BLE001 - an unreadable cache is a miss
            hit = None
        if isinstance(hit, str):
            return hit
    return "not downloaded"


def run(args: argparse.Namespace) -> int:
    from lighthouse_audio.hub import PRETRAINED, fetch, is_offline

    if args.fetch:
        for name in args.fetch:
            print(f"{name}: {fetch(name, progress=not args.no_progress)}")
        return 0
    for kind, title in (("checkpoint", "checkpoints"), ("weights", "encoder weights")):
        print(f"{title}:")
        for artifact in PRETRAINED:
            if artifact.kind != kind:
                continue
            feature = f"  [feature: {artifact.feature}]" if artifact.feature else ""
            print(f"  {artifact.name}{feature}")
            print(f"      {artifact.description}")
            print(f"      from  {artifact.source}")
            print(f"      cache {_where(artifact)}")
    if is_offline():
        print("downloads are off (offline mode)")
    return 0

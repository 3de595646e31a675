"""What a query may be: one clear line for an empty or runaway query, before any work is done."""

from __future__ import annotations

from collections.abc import Sequence

MAX_QUERY_WORDS = 200  # a description of one sound; models read the first 32 tokens anyway


def check_queries(queries: Sequence[str]) -> list[str]:
    """The queries, unchanged (the encoder sees them exactly as ``lighthouse extract`` would),
    or a ``ValueError`` naming the first bad one."""
    if not queries:
        raise ValueError("no query given: describe the sound to look for")
    checked = []
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise ValueError(f"query {i + 1} is a {type(query).__name__}, not text")
        words = len(query.split())
        if not words:
            raise ValueError(f"query {i + 1} is empty: describe the sound to look for")
        if words > MAX_QUERY_WORDS:
            raise ValueError(
                f"query {i + 1} has {words} words; describe one sound in at most "
                f"{MAX_QUERY_WORDS} (the model reads only its first tokens)"
            )
        checked.append(query)
    return checked

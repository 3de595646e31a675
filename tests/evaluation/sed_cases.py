"""Shared inputs of the SED tests: the TUT2017 fixture pair and hand-made jsonl lines."""

from tests.conftest import SHARED, fixture_files

TUT_GT = SHARED / "data" / "annotations" / "tut2017_test_release.jsonl"
TUT_PREDS = next(iter(fixture_files("sed_preds_tut2017_seed*.jsonl")), None)


def ref_line(windows, duration=10, vid="a", query="dog") -> dict:
    return {"query": query, "vid": vid, "duration": duration, "relevant_windows": windows}


def pred_line(windows, vid="a", query="dog") -> dict:
    return {"query": query, "vid": vid, "pred_relevant_windows": windows}

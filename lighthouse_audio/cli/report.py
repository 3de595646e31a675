"""``lighthouse report``: Table I / Table II (Markdown, CSV) and a bar chart from finished runs.

Inputs are run folders, ``METHOD/DATASET=metrics.json`` files of ``lighthouse eval`` and
``[METHOD=]sed.json`` files of ``lighthouse sed-eval`` (``lighthouse_audio/report/sources.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="paper-style result tables (Markdown, CSV) and a bar chart from runs or metrics",
        description=(
            "Table I (R1@0.5, R1@0.7, mAP@0.5, mAP@0.75, mAP avg per dataset) from run folders "
            "or METHOD/DATASET=metrics.json; Table II (SED P/R/F1, given and tuned threshold) "
            "from [METHOD=]sed.json (lighthouse sed-eval --save). Run folders are only read."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="RUN_OR_METRICS", help="see above")
    parser.add_argument("--out", type=Path, required=True, help="report folder (created)")
    parser.add_argument("--title", default="Audio moment retrieval results", help="report title")
    parser.add_argument("--force", action="store_true", help="replace existing report files")
    parser.add_argument(
        "--paper-results",
        type=Path,
        help="reference numbers to show as 'paper (reported)' rows (default: the packaged file)",
    )
    parser.add_argument("--no-paper", action="store_true", help="leave out the paper's rows")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lighthouse_audio.report.paper import PAPER_RESULTS, load_paper_results
    from lighthouse_audio.report.sources import load_sources
    from lighthouse_audio.report.writer import check_out_dir, write_report

    mr_entries, sed_entries = load_sources(args.inputs)
    check_out_dir(args.out, [Path(e.run_dir) for e in mr_entries if e.run_dir], args.force)
    paper_source = ""
    if not args.no_paper:
        paper_path = args.paper_results or PAPER_RESULTS
        paper_mr, paper_sed = load_paper_results(paper_path)
        # Reference rows only for the tables this report has, on the datasets it covers.
        datasets = {e.dataset for e in mr_entries}
        paper_mr = [e for e in paper_mr if e.dataset in datasets]
        paper_sed = paper_sed if sed_entries else []
        if paper_mr or paper_sed:
            paper_source = json.loads(paper_path.read_text(encoding="utf-8")).get("source", "")
        mr_entries, sed_entries = paper_mr + mr_entries, paper_sed + sed_entries
    for path in write_report(args.out, mr_entries, sed_entries, args.title, paper_source):
        print(path)
    return 0

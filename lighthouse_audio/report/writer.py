"""Write the report folder: Markdown and CSV tables, the bar chart, and a ``report.md`` index.

Nothing is ever lost: existing report files are only replaced with ``force``, every file is
written through a temporary name and renamed, and the folder may not be (or be inside) a run
folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lighthouse_audio.file_io import write_bytes
from lighthouse_audio.report.figure import bar_chart_png
from lighthouse_audio.report.sources import MREntry, SEDEntry
from lighthouse_audio.report.tables import table1_rows, table2_rows, to_csv, to_markdown

REPORT_FILES = ("report.md", "table1.md", "table1.csv", "table2.md", "table2.csv", "figure.png")


def check_out_dir(out_dir: Path, run_dirs: Sequence[Path], force: bool) -> None:
    """Refuse a run folder (or a folder inside one), and existing report files unless ``force``."""
    resolved = out_dir.resolve()
    for run_dir in run_dirs:
        run = run_dir.resolve()
        if resolved == run or run in resolved.parents:
            raise ValueError(f"--out {out_dir} is inside the run folder {run_dir}; pick another")
    if (out_dir / "config.yaml").exists():
        raise ValueError(f"--out {out_dir} looks like a run folder (has config.yaml)")
    existing = [name for name in REPORT_FILES if (out_dir / name).exists()]
    if existing and not force:
        raise ValueError(
            f"{out_dir / existing[0]} exists ({len(existing)} report file(s) in {out_dir}); "
            "use --force to replace them or choose another --out"
        )


def write_report(
    out_dir: Path,
    mr_entries: Sequence[MREntry],
    sed_entries: Sequence[SEDEntry],
    title: str = "Audio moment retrieval results",
    paper_source: str = "",
) -> list[Path]:
    """Write the tables that have entries, the chart and ``report.md``; returns the paths.

    Call ``check_out_dir`` first; this replaces the report files it writes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    sections = [f"# {title}\n"]
    if mr_entries:
        header, rows = table1_rows(mr_entries)
        files["table1.md"] = to_markdown(header, rows).encode()
        files["table1.csv"] = to_csv(header, rows).encode()
        files["figure.png"] = bar_chart_png(header, rows, title)
        sections.append("## Table I: moment retrieval\n\n" + files["table1.md"].decode())
        sections.append("![mAP avg and R1@0.7](figure.png)\n")
        sections.append(
            "Sources:\n\n"
            + "".join(
                f"- {e.dataset} ({e.split}), {e.method}: {e.source}\n" for e in mr_entries
            )  # fmt: skip
        )
    if sed_entries:
        header, rows = table2_rows(sed_entries)
        files["table2.md"] = to_markdown(header, rows).encode()
        files["table2.csv"] = to_csv(header, rows).encode()
        sections.append(
            "## Table II: zero-shot SED (micro, frame-based)\n\n" + files["table2.md"].decode()
        )
        sections.append(
            "Sources:\n\n" + "".join(f"- {e.method}: {e.source}\n" for e in sed_entries)
        )
    if paper_source:
        sections.append(f'Rows marked "paper (reported)": {paper_source}\n')
    files["report.md"] = "\n".join(sections).encode()
    written = []
    for name, data in files.items():
        write_bytes(out_dir / name, data)
        written.append(out_dir / name)
    return written

"""Bar chart of Table I: mAP avg and R1@0.7, grouped by dataset split, one bar per row.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no display), like the demo's
picture; paper rows are hatched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

FIGURE_METRICS = ("mAP avg", "R1@0.7")


def bar_chart_png(
    header: Sequence[str], rows: Sequence[Sequence[str | float | None]], title: str
) -> bytes:
    """PNG bytes of the chart of ``tables.table1_rows``'s output (missing cells are skipped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = []
    for name in header[4:]:
        group = name.rsplit(" ", 2)[0] if name.endswith("mAP avg") else None
        if group and group not in groups:
            groups.append(group)
    labels = [" / ".join(str(c) for c in row[:3] if c) + f" [{row[3]}]" for row in rows]

    fig = Figure(figsize=(max(6.0, 1.6 * len(groups) * max(1, len(rows)) ** 0.5 + 3), 6.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(FIGURE_METRICS), 1, squeeze=False)[:, 0]
    width = 0.8 / max(1, len(rows))
    for ax, metric in zip(axes, FIGURE_METRICS, strict=True):
        for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
            xs, heights = [], []
            for g, group in enumerate(groups):
                value = row[header.index(f"{group} {metric}")]
                if value is not None:
                    xs.append(g - 0.4 + width * (r + 0.5))
                    heights.append(float(value))
            paper = row[3] == "paper (reported)"
            ax.bar(xs, heights, width, label=label, hatch="//" if paper else None,
                   color=f"C{r % 10}", edgecolor="black", linewidth=0.5)  # fmt: skip
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title(title, fontsize=11, loc="left")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.set_layout_engine("constrained")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()

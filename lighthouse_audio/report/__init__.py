"""``lighthouse report``: the paper's Table I (moment retrieval) and Table II (zero-shot SED).

- ``sources``: reads run folders and metrics json files into ``MREntry`` / ``SEDEntry``.
- ``tables``: builds the two tables and writes them as Markdown and CSV.
- ``figure``: the bar chart of mAP avg and R1@0.7 per method and dataset.
- ``paper``: the published reference numbers (``paper_results.json``), labelled "paper (reported)".
- ``writer``: puts it all in an output folder without ever overwriting silently.
"""

from lighthouse_audio.report.sources import MREntry, SEDEntry, load_sources
from lighthouse_audio.report.writer import write_report

__all__ = ["MREntry", "SEDEntry", "load_sources", "write_report"]

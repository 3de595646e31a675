"""plot_prediction draws what it is given: a PNG of the right size, spans of long recordings."""

import numpy as np
import pytest
from PIL import Image

from lighthouse_audio.prediction.plot import plot_prediction
from lighthouse_audio.testing.dummies import write_tone

RESULTS = [
    {"query": "a tone", "pred_relevant_windows": [[10.0, 14.0, 0.9], [40.0, 42.0, 0.4]],
     "pred_saliency_scores": list(np.linspace(-1, 1, 121))},
    {"query": "a second query with a long description that is shortened in the picture",
     "pred_relevant_windows": [[100.0, 110.0, 0.7]], "pred_saliency_scores": [0.0] * 121},
]  # fmt: skip


@pytest.mark.parametrize("span", [(0.0, None), (30.0, 60.0)])
def test_picture_is_written_atomically_with_a_row_per_query(tmp_path, span):
    write_tone(tmp_path / "rec.wav", 120.0)
    out = plot_prediction(tmp_path / "rec.wav", RESULTS, tmp_path / "pics" / "rec.png",
                          start=span[0], end=span[1], top_k=2)  # fmt: skip
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (1200, 530)
    assert sorted(p.name for p in out.parent.iterdir()) == ["rec.png"]  # no temporary left
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 20  # a drawing, not a blank canvas


def test_more_queries_make_a_taller_picture(tmp_path):
    write_tone(tmp_path / "rec.wav", 20.0)
    one = Image.open(plot_prediction(tmp_path / "rec.wav", RESULTS[:1], tmp_path / "a.png"))
    many = Image.open(plot_prediction(tmp_path / "rec.wav", RESULTS * 3, tmp_path / "b.png"))
    assert many.size[1] > one.size[1]

"""benchmarks/docs_figures.py: figure layout, scores and the gallery page (the training runs themselves are what the
script makes; here a stand-in replaces them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import docs_figures  # noqa: E402


def test_rows_are_laid_out_with_gaps_and_scaled(tmp_path: Path) -> None:
    images = [[np.full((3, 4), 10 * (2 * r + c), np.uint8) for c in range(2)] for r in range(2)]
    docs_figures.save_rows(images, tmp_path / "f.png")
    figure = np.asarray(Image.open(tmp_path / "f.png"))
    scale = docs_figures.FIGURE_SCALE
    assert figure.shape == ((2 * 3 + 2) * scale, (2 * 4 + 2) * scale)  # two rows of 3 px, two columns of 4, gaps 2
    assert figure[0, 0] == 0 and figure[0, (4 + 2) * scale] == 10 and figure[(3 + 2) * scale, 0] == 20
    assert figure[3 * scale, 0] == 255 and figure[0, 4 * scale] == 255  # white gaps


def test_mean_abs_error_in_pixel_units(tmp_path: Path) -> None:
    Image.fromarray(np.full((2, 2), 100, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[0, 0], [255, 255]], np.uint8)).save(tmp_path / "b.png")
    targets = {"a.png": np.full((2, 2), 151.0), "b.png": np.zeros((2, 2))}
    # a: |100 - 151| / 255 = 0.2 everywhere; b: half the pixels off by 255 -> 0.5. Mean over images: 0.35.
    assert docs_figures.mean_abs_error(tmp_path, targets) == pytest.approx(0.35)


def test_steps_must_name_a_family() -> None:
    assert docs_figures.parse_steps(["stylegan2=1000"]) == {"stylegan2": 1000}
    for bad in ("stylegan3=10", "dcgan=0", "dcgan"):
        with pytest.raises(SystemExit, match="FAMILY=N"):
            docs_figures.parse_steps([bad])


def test_only_remakes_the_chosen_families_and_keeps_the_others(tmp_path: Path) -> None:
    def fake_make(key, steps, work, figures, previous):
        assert previous is None
        (figures / f"{key}.png").write_bytes(b"png")
        return {"family": key, "experiment": docs_figures.FAMILIES[key].experiment, "title": key.upper(),
                "figure": f"{key}.png", "train_command": f"gan-lightning train {key}", "figure_command": "sample",
                "steps": steps, "train_seconds": 7, "train_scores": "scores at batch 5 (...): fid 3.5",
                "date": "today", "hardware": "a CPU", "figure_kb": 0.0, "scores": {"mean_abs_error": 0.125}}

    docs = tmp_path / "docs"
    assert docs_figures.main(["--only", "dcgan", "pix2pix", "--steps", "pix2pix=9", "--docs", str(docs)],
                             fake_make) == 0
    assert docs_figures.main(["--only", "dcgan", "--docs", str(docs)], fake_make) == 0
    records = json.loads((docs / "figures" / "gallery.json").read_text())
    assert sorted(records) == ["dcgan", "pix2pix"] and records["pix2pix"]["steps"] == 9
    page = (docs / "gallery.md").read_text()
    assert page.count("![") == 2 and page.count("Not made yet.") == len(docs_figures.FAMILIES) - 2
    assert "`trainer.max_steps=9`" in page and "at batch 5 (...): fid 3.5; mean_abs_error 0.125" in page

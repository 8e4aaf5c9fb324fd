"""Web images are downscaled bicubic, as the reference's download script (PIL's bicubic resize to a
longest side of 256), not with img2dataset's default area interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.demo.localserver import QuietHandler, serve_directory
from pipeline.images.fetch import FetchSettings, fetch_images
from pipeline.images.table import read_table

pytest.importorskip("img2dataset")
cv2 = pytest.importorskip("cv2")


def test_downscaling_is_bicubic(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    # Fine grey detail (seeded noise, smoothed so JPEG keeps it) at twice the target size: there bicubic
    # and area downscaling differ far more than the JPEG encoding does.
    grey = np.random.default_rng(0).integers(0, 256, size=(128, 128), dtype=np.uint8)
    grey = cv2.resize(grey, (512, 512), interpolation=cv2.INTER_CUBIC)
    pixels = np.stack([grey] * 3, axis=-1)
    Image.fromarray(pixels).save(site / "noise.png")
    with serve_directory(site, QuietHandler) as base:
        report = fetch_images([f"{base}/noise.png"], tmp_path / "images", FetchSettings(timeout_s=5, threads=1))
    assert report.success == 1
    row = read_table(tmp_path / "images").row(0, named=True)
    got = np.asarray(Image.open(tmp_path / "images" / row["path"]).convert("RGB"), dtype=np.float64)
    bgr = pixels[:, :, ::-1]  # img2dataset resizes OpenCV's BGR arrays
    errors = {}
    for name, flag in (("bicubic", cv2.INTER_CUBIC), ("area", cv2.INTER_AREA)):
        expected = cv2.resize(bgr, (256, 256), interpolation=flag)[:, :, ::-1].astype(np.float64)
        errors[name] = float(np.abs(got - expected).mean())
    assert errors["bicubic"] < errors["area"] / 2, errors

"""img2dataset against a loopback server: the paper's geometry, failures by reason, no refetch on a rerun."""

from __future__ import annotations

import pytest
from PIL import Image

from pipeline.images.fetch import FetchSettings, fetch_images, format_report, read_url_list
from pipeline.images.table import read_table

pytest.importorskip("img2dataset")
CASES = ["wide.jpg", "tall.png", "small.jpg", "square.jpg", "missing.jpg", "page.jpg", "truncated.jpg", "slow.jpg",
         "redirect.jpg"]
SETTINGS = FetchSettings(timeout_s=2, threads=4)


def test_fetch_sizes_failures_and_rerun(image_server, tmp_path):
    urls = [f"{image_server}/{name}" for name in CASES]
    out = tmp_path / "images"
    report = fetch_images(urls + urls[:2], out, SETTINGS)  # duplicates are fetched once
    assert (report.requested, report.success, report.failed, report.fetched) == (9, 5, 4, 9)
    assert report.reasons == {"decode_error": 2, "http_404": 1, "timeout": 1}
    table = read_table(out)
    by_name = {row["url"].rsplit("/", 1)[1]: row for row in table.iter_rows(named=True)}
    for name, size in {"wide.jpg": (256, 256), "tall.png": (256, 256), "square.jpg": (256, 256),
                       "small.jpg": (100, 60), "redirect.jpg": (256, 256)}.items():
        with Image.open(out / by_name[name]["path"]) as img:
            assert img.size == size  # longest side 256 padded square; smaller images untouched
    with Image.open(out / by_name["wide.jpg"]["path"]) as img:
        assert img.convert("RGB").getpixel((128, 2)) == pytest.approx((255, 255, 255), abs=3)  # white border
        assert img.convert("RGB").getpixel((128, 128))[0] > 150  # the picture itself
    assert by_name["missing.jpg"]["reason"] == "http_404" and "404" in by_name["missing.jpg"]["error"]
    assert by_name["slow.jpg"]["reason"] == "timeout"
    assert {by_name[n]["reason"] for n in ("page.jpg", "truncated.jpg")} == {"decode_error"}
    assert "failed http_404: 1" in format_report(report)

    again = fetch_images(urls, out, SETTINGS)
    assert (again.fetched, again.already_done, again.success, again.failed) == (0, 9, 5, 4)
    assert read_table(out).equals(table)

    more = fetch_images(urls + [f"{image_server}/wide.jpg?v=2"], out, SETTINGS)
    assert (more.fetched, more.success) == (1, 6)  # only the new URL


def test_url_lists(tmp_path):
    (tmp_path / "a.txt").write_text("http://x/1.jpg\n\nhttp://x/2.jpg\n")
    assert read_url_list(tmp_path / "a.txt") == ["http://x/1.jpg", "http://x/2.jpg"]
    (tmp_path / "b.json").write_text('[{"url": "http://x/3.jpg", "caption": "c"}, {"caption": "no url"}]')
    assert read_url_list(tmp_path / "b.json") == ["http://x/3.jpg"]
    with pytest.raises(ValueError, match="unknown URL list format"):
        (tmp_path / "c.xml").write_text("")
        read_url_list(tmp_path / "c.xml")


def test_cli_exits_0_with_failures_and_prints_reasons(image_server, tmp_path, capsys):
    from mblip.cli import main

    urls = tmp_path / "urls.txt"
    urls.write_text(f"{image_server}/square.jpg\n{image_server}/missing.jpg\n")
    assert main(["fetch-images", str(urls), "--out", str(tmp_path / "img"), "--timeout", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 URLs: 1 available, 1 failed; 2 fetched this run" in out and "failed http_404: 1" in out
    assert main(["fetch-images", str(urls), "--out", str(tmp_path / "img")]) == 0
    assert "0 fetched this run, 2 settled earlier" in capsys.readouterr().out

"""img2dataset against a loopback server: the paper's geometry, failures by reason, no refetch on a rerun;
only http(s) URLs fetched; image bombs, big responses and dripping servers refused within the caps."""

from __future__ import annotations

import json
import time

import polars as pl
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


PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAAAABJRU5ErkJggg=="


def test_only_http_urls_are_fetched_in_every_list_format(image_server, tmp_path):
    secret = tmp_path / "private"
    secret.mkdir()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(secret / "photo.jpg")
    hostile = {f"file://{secret}/photo.jpg": "unsupported_scheme", "ftp://127.0.0.1/photo.jpg": "unsupported_scheme",
               f"data:image/png;base64,{PNG_1PX}": "unsupported_scheme", f"{secret}/photo.jpg": "invalid_url",
               "http:///photo.jpg": "invalid_url"}
    redirects = [f"{image_server}/to-file.jpg", f"{image_server}/to-ftp.jpg"]
    lists = {".txt": lambda p, urls: p.write_text("\n".join(urls) + "\n"),
             ".csv": lambda p, urls: pl.DataFrame({"url": urls}).write_csv(p),
             ".parquet": lambda p, urls: pl.DataFrame({"url": urls}).write_parquet(p),
             ".json": lambda p, urls: p.write_text(json.dumps([{"url": u, "caption": "a red bike"} for u in urls]))}
    for suffix, write in lists.items():
        out = tmp_path / f"images{suffix.replace('.', '-')}"
        fetched = [f"{image_server}/square.jpg", *redirects] if suffix == ".txt" else []  # one img2dataset run
        write(tmp_path / f"urls{suffix}", [*fetched, *hostile])
        report = fetch_images(read_url_list(tmp_path / f"urls{suffix}"), out, SETTINGS)
        assert (report.refused, report.fetched, report.success) == (5, len(fetched), int(bool(fetched))), suffix
        table = {row["url"]: row for row in read_table(out).iter_rows(named=True)}
        assert {url: table[url]["reason"] for url in hostile} == hostile
        assert report.reasons["unsupported_scheme"] >= 3 and report.reasons["invalid_url"] == 2
        handed = [u for p in (out / "_lists").glob("*.parquet") for u in pl.read_parquet(p)["url"].to_list()]
        assert sorted(handed) == sorted(fetched)  # only http(s) URLs reach img2dataset
        assert len(list(out.rglob("*.jpg"))) == len(fetched[:1])  # the square; never the private photo
    table = {row["url"]: row for row in read_table(tmp_path / "images-txt").iter_rows(named=True)}
    assert [table[url]["status"] for url in redirects] == ["failed", "failed"]  # a redirect out of http(s) too
    assert {table[url]["reason"] for url in redirects} == {"unsupported_scheme"}


def test_image_bombs_big_responses_and_drips_are_refused_in_time(image_server, tmp_path):
    names = ["bomb.png", "large.png", "big.jpg", "big-undeclared.jpg", "drip.jpg", "drip-headers.jpg", "square.jpg"]
    settings = FetchSettings(timeout_s=10, deadline_s=3, max_bytes=100_000, max_pixels=10_000_000, threads=8)
    started = time.monotonic()
    report = fetch_images([f"{image_server}/{name}" for name in names], tmp_path / "images", settings)
    elapsed = time.monotonic() - started
    table = read_table(tmp_path / "images")
    reasons = {row["url"].rsplit("/", 1)[1]: row["reason"] for row in table.iter_rows(named=True)}
    assert reasons == {"bomb.png": "too_large", "large.png": "too_large", "big.jpg": "too_large",
                       "big-undeclared.jpg": "too_large", "drip.jpg": "timeout", "drip-headers.jpg": "timeout",
                       "square.jpg": None}
    assert report.success == 1
    # the drips would hold the run for DRIP_BYTES x DRIP_EVERY_S = 60 s; the deadline ends them after 3 s
    assert elapsed < 30, elapsed


def test_a_url_list_that_is_not_utf8_names_the_file(tmp_path):
    for name, content in (("urls.txt", b"http://x/\xe9.jpg\n"), ("urls.csv", b"url\nhttp://x/\xe9.jpg\n")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"{tmp_path / name}: byte 0xE9 at offset .* is not valid UTF-8"):
            read_url_list(tmp_path / name)


def test_the_cli_sets_the_caps(image_server, tmp_path, capsys):
    from mblip.cli import main

    urls = tmp_path / "urls.txt"
    urls.write_text(f"{image_server}/large.png\nfile:///etc/passwd\n")
    assert main(["fetch-images", str(urls), "--out", str(tmp_path / "img"), "--max-pixels", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "1 refused (only http and https are fetched)" in out
    assert "failed too_large: 1" in out and "failed unsupported_scheme: 1" in out

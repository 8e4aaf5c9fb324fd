"""The data browser's site without a browser: untrusted text escaped, the seeded sample (stated, stable,
drawn as documented), thumbnails from embedded bytes and from files, the card's link, refusals, the command."""

import io
import json
from html.parser import HTMLParser

import polars as pl
import pytest

from mblip.cli import main
from pipeline.browse.sample import read_sampled_rows, sample_key, sample_language
from pipeline.browse.site import build_site
from pipeline.card.metadata import CARD_FILE
from pipeline.verify import verify_output

LINK = "[browse/index.html](browse/index.html)"


class ParsedPage(HTMLParser):
    """A page as a browser's parser reads it: start tags with their attributes, and the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.data_rows: list[dict] = []  # per data row: its attributes, its images' attributes, its text
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and "row" in (attrs.get("class") or "").split():
            self.data_rows.append({"attrs": attrs, "images": [], "text": []})
        elif tag == "img" and self.data_rows:
            self.data_rows[-1]["images"].append(attrs)

    def handle_data(self, data):
        self.text.append(data)
        if self.data_rows:
            self.data_rows[-1]["text"].append(data)

    def rows(self) -> list[dict]:
        return [row["attrs"] for row in self.data_rows]


def parse(path) -> ParsedPage:
    return ParsedPage(path.read_text(encoding="utf-8"))


def shard_rows(out, lang: str, task: str) -> pl.DataFrame:
    frames = [pl.read_parquet(p) for p in sorted(out.glob(f"*/{lang}/*.parquet"))]
    return pl.concat(frames, how="diagonal_relaxed").filter(pl.col("task") == task)


def test_untrusted_text_is_shown_as_text_never_as_markup(chunk_output):
    site = build_site(chunk_output.out, sample=0).site_dir
    text, scripts, handlers, images = "", set(), [], []
    for path in sorted(site.rglob("*.html")):
        page = parse(path)
        text += "\n".join(page.text)
        scripts |= {a.get("src") for t, a in page.tags if t == "script"}
        handlers += [(path.name, t, k) for t, a in page.tags for k in a if k.startswith("on")]
        images += [a["src"] for t, a in page.tags if t == "img"]
    assert chunk_output.HOSTILE_TEXT in text and chunk_output.HOSTILE_BT in text  # shown, as text
    assert scripts == {"browse.js", "../browse.js"}  # the site's own script only
    assert handlers == [] and "x" not in images
    page = parse(site / "de" / "caption.html")
    # the hostile reason is one intact value of the reason filter and of its row's data attribute
    assert chunk_output.HOSTILE_REASON in [a.get("value") for t, a in page.tags if t == "option"]
    assert chunk_output.HOSTILE_REASON in [row["data-reason"] for row in page.rows()]


def test_the_sample_is_seeded_stable_stated_and_drawn_by_key(chunk_output, tmp_path):
    population = shard_rows(chunk_output.out, "de", "caption")
    kept = population.filter(pl.col("status") == "kept").height
    a = build_site(chunk_output.out, tmp_path / "a", sample=5, seed=3)
    build_site(chunk_output.out, tmp_path / "b", sample=5, seed=3)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)

    page = parse(tmp_path / "a" / "de" / "caption.html")
    shown = [row["data-id"] for row in page.rows()]
    # the documented rule: the rows with the smallest hash of (seed, task, example_id), in that order
    assert shown == sorted(population["example_id"], key=lambda e: sample_key(3, "caption", e))[:5]
    note = " ".join(" ".join(page.text).split())
    assert (f"Showing 5 of {population.height} rows ({kept} kept, {population.height - kept} rejected): a seeded "
            "random sample (seed 3) of at most 5 rows") in note
    assert a.rows_shown == 5 * a.pages and a.rows == 120

    other = parse(build_site(chunk_output.out, tmp_path / "c", sample=5, seed=4).site_dir / "de" / "caption.html")
    assert {row["data-id"] for row in other.rows()} != set(shown)
    every = parse(build_site(chunk_output.out, tmp_path / "d", sample=0).site_dir / "de" / "caption.html")
    assert sorted(row["data-id"] for row in every.rows()) == sorted(population["example_id"])
    record = json.loads((tmp_path / "a" / "site.json").read_text())
    (entry,) = [p for p in record["pages"] if p["lang"] == "de" and p["task"] == "caption"]
    assert entry["status"] == {"kept": kept, "rejected": population.height - kept} and entry["shown"] == 5
    statuses = [row["data-status"] for row in page.rows()]
    assert entry["shown_status"] == {status: statuses.count(status) for status in set(statuses)}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def test_every_row_shows_its_thumbnail_or_why_not(chunk_output):
    report = build_site(chunk_output.out, sample=0)
    site = report.site_dir
    with_image, without = set(), []
    for path in sorted(site.glob("*/*.html")):
        for row in parse(path).data_rows:
            for image in row["images"]:
                width, height = _jpeg_size((path.parent / image["src"]).read_bytes())
                assert max(width, height) == 192 and (width, height) == (int(image["width"]), int(image["height"]))
                with_image.add(row["attrs"]["data-status"])
            if not row["images"]:
                without.append(" ".join(row["text"]))
    # kept rows' images come from the shards' embedded bytes, rejected rows' from the image root: both shown
    assert with_image == {"kept", "rejected"}
    # the one missing file: no thumbnail, and its row says which file
    (missing,) = without
    assert f"no image: cannot read {chunk_output.record.image_roots['vqav2']}/{chunk_output.MISSING_IMAGE}" in missing
    assert report.image_problems == 1
    # one thumbnail per distinct image, however many rows show it
    rows = pl.concat([pl.read_parquet(p) for p in sorted(chunk_output.out.glob("*/*/*.parquet"))],
                     how="diagonal_relaxed")
    distinct = set(rows["image_path"]) - {chunk_output.MISSING_IMAGE}
    assert len(list(site.glob("thumbs/*/*.jpg"))) == len(distinct) == report.thumbnails


def _without_browse_section(card: str) -> str:
    head, _, rest = card.partition("## Browse the rows\n")
    return head + rest[rest.index("## "):] if rest else card


def test_the_card_links_the_site_while_it_shows_these_rows(chunk_output, tmp_path):
    out = chunk_output.out
    before = (out / CARD_FILE).read_text(encoding="utf-8")
    assert LINK not in before
    assert build_site(out, tmp_path / "elsewhere").card_linked is False  # a site outside OUT/browse: no link
    assert (out / CARD_FILE).read_text(encoding="utf-8") == before

    report = build_site(out, sample=7, seed=2)
    card = (out / CARD_FILE).read_text(encoding="utf-8")
    assert report.card_linked and LINK in card and "(seed 2) of at most 7 rows" in card
    assert _without_browse_section(card) == before  # the same card, rendered again from the output's artifacts
    assert verify_output(out).ok, verify_output(out).problems  # the manifest certifies the new card

    manifest = json.loads((out / "manifest.json").read_text())
    assert chunk_output.write() == manifest  # an unchanged rerun keeps the link: nothing rewritten
    assert (out / CARD_FILE).read_text(encoding="utf-8") == card

    frame = pl.read_parquet(chunk_output.chunks[0])
    frame.with_columns(text_tgt=pl.col("text_tgt") + " (edited)").write_parquet(chunk_output.chunks[0])
    chunk_output.write()  # the rows changed: the site shows old rows, so the card no longer links it
    assert LINK not in (out / CARD_FILE).read_text(encoding="utf-8") and (out / "browse" / "index.html").is_file()
    assert verify_output(out).ok


def test_refuses_a_folder_that_is_not_a_site_and_an_output_that_is_not_finished(chunk_output, tmp_path):
    out = chunk_output.out
    with pytest.raises(ValueError, match="the output's own files"):
        build_site(out, out / "data" / "site")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a site written by `mblip browse`"):
        build_site(out, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        build_site(tmp_path / "no-output")
    with pytest.raises(ValueError, match="no rows in xx; it has de, fr"):
        build_site(out, languages=("xx",))
    with pytest.raises(ValueError, match="--sample"):
        build_site(out, sample=-1)


def test_the_browse_command(chunk_output, capsys):
    assert main(["browse", str(chunk_output.out), "--sample", "3", "--languages", "de", "--thumb-px", "64"]) == 0
    printed = capsys.readouterr().out
    site = chunk_output.out / "browse"
    assert printed.startswith(f"{site / 'index.html'}: 2 pages, 6 of 60 rows shown")
    assert f"open {(site / 'index.html').resolve().as_uri()}" in printed and "links to it" in printed
    assert sorted(p.relative_to(site).as_posix() for p in site.glob("*/*.html")) == ["de/caption.html", "de/vqa.html"]
    assert max(_jpeg_size(p.read_bytes())[0] for p in site.glob("thumbs/*/*.jpg")) == 64
    assert main(["browse", str(chunk_output.out / "missing")]) == 2
    assert "manifest.json: missing" in capsys.readouterr().err


def test_a_thumbnail_of_an_image_over_a_cap_is_refused_before_decoding(monkeypatch):
    from PIL import Image

    from pipeline.browse.thumbs import make_thumbnail
    from pipeline.images.guard import ImageTooLarge

    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    with pytest.raises(ImageTooLarge, match=r"image too large: 40x30 = 1,200 pixels, over the cap of 1,000"):
        make_thumbnail(png.getvalue(), 16, max_pixels=1000)
    jpeg, width, height = make_thumbnail(png.getvalue(), 16, max_pixels=0)  # 0: no cap
    assert (width, height) == (16, 12) and _jpeg_size(jpeg) == (16, 12)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # PIL's own limit: refused above twice it
    with pytest.raises(ImageTooLarge, match=r"image too large: .*decompression bomb"):
        make_thumbnail(png.getvalue(), 16, max_pixels=0)


def test_every_row_is_read_without_a_filter_and_the_same_rows_come_back(chunk_output, monkeypatch):
    import pyarrow.parquet as pq

    paths = sorted(chunk_output.out.glob("*/de/*.parquet"))
    everything = sample_language(paths, 0, seed=3)
    whole = sample_language(paths, 10_000, seed=3)  # a sample larger than the language: every row, drawn
    assert {t: p.chosen for t, p in everything.items()} == {t: p.chosen for t, p in whole.items()}
    read_table, filters = pq.read_table, []

    def recording(*args, **kwargs):
        filters.append(kwargs.get("filters"))
        return read_table(*args, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    unfiltered = read_sampled_rows(paths, everything, 0)
    assert filters == [None] * len(paths)
    filters.clear()
    filtered = read_sampled_rows(paths, whole, 10_000)
    assert len(filters) == len(paths) and all(filters)
    assert unfiltered == filtered
    assert sum(map(len, unfiltered.values())) == sum(p.rows for p in everything.values())

"""Images carried with the rows: ``output.images: embed`` writes each kept row's image bytes into its shard.

The ``image`` column is the ``datasets.Image`` storage type, ``struct<bytes: binary, path: string>`` (``path``
= the row's ``image_path``), and the card declares it (``dataset_info.features``: ``dtype: image``), so
``datasets.load_dataset(OUT)`` yields PIL images and the output is one self-contained folder.

A COCO image has 5 captions and several questions, so rows share images. Parquet cannot point one row at
another's value, but its dictionary encoding stores each distinct value of a column chunk once and the rows
as small indices: the image bytes are written with dictionary encoding and a dictionary page limit large
enough never to fall back to plain encoding, so each distinct image is stored once per row group
(``output.row_group_rows``; equal to ``shard_rows`` = once per shard). Memory: one shard's rows with their
distinct images (keep ``shard_rows`` in the thousands when embedding). The image files are read once per
shard through ``pipeline.io.open_location`` (an image root may be a URL).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.io import PARQUET_COMPRESSION, _write_atomic, join_location, open_location

IMAGE_COLUMN = "image"
IMAGES_PATHS, IMAGES_EMBED = "paths", "embed"
DICTIONARY_PAGE_LIMIT = 1 << 31  # bytes: never fall back to plain encoding within a row group (see above)


def image_struct_type():
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def read_shard_images(frame: pl.DataFrame, image_roots: dict[str, str]) -> list[dict | None]:
    """The ``image`` value of each row: ``{"bytes", "path"}``, each distinct file read once; None for a row
    without an image path. A file that cannot be read is an error naming the row, the source and the file."""
    cache: dict[str, bytes] = {}
    values: list[dict | None] = []
    for example_id, source, rel in frame.select("example_id", "source", "image_path").iter_rows():
        if not rel:
            values.append(None)
            continue
        root = image_roots.get(source)
        location = str(join_location(root, rel)) if root else rel
        if location not in cache:
            try:
                with open_location(location, "rb") as handle:
                    cache[location] = handle.read()
            except OSError as e:
                raise OSError(f"output.images: embed: row {example_id} (source {source}): cannot read its image "
                              f"{location}: {e}; fix the image root or set output.images: paths") from e
        values.append({"bytes": cache[location], "path": rel})
    return values


def write_embedded_shard(frame: pl.LazyFrame, path: str | Path, image_roots: dict[str, str],
                         row_group_rows: int) -> Path:
    """Write ``frame`` (one shard's rows) with its ``image`` column to ``path``, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = frame.collect()
    table = rows.to_arrow()
    table = table.append_column(IMAGE_COLUMN, pa.array(read_shard_images(rows, image_roots), image_struct_type()))

    def write(tmp):
        pq.write_table(table, tmp, compression=PARQUET_COMPRESSION, row_group_size=row_group_rows,
                       use_dictionary=True, dictionary_pagesize_limit=DICTIONARY_PAGE_LIMIT,
                       write_statistics=list(rows.columns))  # no min/max statistics of image bytes

    return _write_atomic(path, write)

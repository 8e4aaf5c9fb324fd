"""Training rows from WebDataset tar shards (``mblip export --format webdataset``), local or at fsspec URLs.

Each sample of a tar is ``{key}.json`` (the row's columns, ``pipeline.export_webdataset.WDS_COLUMNS``) and the
image under its extension (``{key}.jpg``); ``iter_tar_rows`` yields the JSON as the row, with the image's bytes
under ``image_bytes``, reading the tar as a stream (the ``webdataset`` library's tar iterator and grouping), so
a shard on object storage is read once, front to back, never downloaded whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.io import open_location

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")


def iter_tar_rows(path: Path | str) -> Iterator[dict[str, Any]]:
    """The rows of one tar shard, in order: the sample's JSON plus ``image_bytes``."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    with open_location(path, "rb") as handle:  # read as a stream (tarfile "r|*")
        files = ({**member, "__url__": str(path)} for member in tar_file_iterator(handle))
        for sample in group_by_keys(files):
            if "json" not in sample:
                raise ValueError(f"{path}: sample {sample.get('__key__')!r} has no .json (a webdataset export of "
                                 "`mblip export --format webdataset`?)")
            row = json.loads(sample["json"])
            image = next((sample[ext] for ext in IMAGE_EXTENSIONS if ext in sample), None)
            if image is None:
                raise ValueError(f"{path}: sample {sample['__key__']!r} has no image ({', '.join(IMAGE_EXTENSIONS)})")
            yield {**row, "image_bytes": image}

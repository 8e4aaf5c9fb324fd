"""What every source config has, whatever its type; each reader module adds the config class of its type.

A source config (``sources:`` in the run config) names its ``type`` and the fields of that type only:
``CocoCaptionsSource`` in ``pipeline/ingest/coco.py``, ``ImagenetSource`` in ``pipeline/ingest/imagenet.py``,
and so on, all built on ``SourceBase``. ``pipeline/ingest/registry.py`` joins them into the union the run
config parses by ``type``. A field that the type does not define is an error naming the field.

Each config opens its own reader (``open_reader``) and says what identifies the data it reads
(``ingest_params``: with the files' sizes and modification times it keys a finished ingest).
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from pydantic import field_serializer, field_validator

from pipeline.frozen import Frozen
from pipeline.io import is_url

# Until each source type had its own config class, one class held the fields of every type, and a
# source's config hash and ingest identity were computed over all of them. These are those fields, each
# with the value a source that does not use it had (JSON values). ``legacy_values`` lays a source out
# this way, so the same YAML keeps its config hash (manifest, card) and its finished ingests; a config
# file written in this layout (an older ``config.resolved.yaml``) still loads (``registry.drop_legacy_fields``).
LEGACY_FIELDS: dict = {
    "type": None, "name": None, "annotations": None, "questions": None, "path": None,
    "sampling": {"spacy_model": "en_core_web_sm", "min_captions": 10, "max_captions": 30, "seed": 0, "n_process": -1},
    "matching": {"model": "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "device": "auto", "batch_size": 256,
                 "pool_offset": 1000, "pool_size": 600_000, "k": 300, "exact_limit": 1_000_000, "seed": 0},
    "splits": ["train", "restval"], "images": None, "check_images": True, "classes": None, "labels": None,
    "synsets": None, "passes": 8, "seed": 0, "languages": [], "tasks": [], "translate": False, "max_sentences": 3,
    "columns": {}, "format": None, "language": "detect", "retranslate": False,
}


# The file and folder fields of the source types (``registry.PATH_FIELDS``, checked by a test): each may be a URL.
URL_FIELDS = ("annotations", "classes", "images", "labels", "path", "questions", "synsets")


class SourceBase(Frozen):
    """One English source in its published format (the fields every type has)."""

    type: str  # each subclass narrows it to its own literal
    name: str | None = None  # defaults to the type; must be unique within a run
    # image root; rows store image paths relative to it (imagenet: the train folder of synsets; web_*: the
    # `mblip fetch-images` --out folder)
    images: Path
    # Rows whose image file is missing under `images` are quarantined (image_missing). false: skip the
    # check, for images fetched after ingest (then rerun with `mblip regenerate --sources NAME`).
    check_images: bool = True

    # A file or folder field may hold any fsspec URL instead (``s3://bucket/captions.json``): kept as the
    # string (``Path`` would turn ``s3://b`` into ``s3:/b``); the ingest stage reads such files through a
    # local copy (``pipeline.ingest.remote``). ``URL_FIELDS`` names every ``Path`` field of every type.
    @field_validator(*URL_FIELDS, mode="wrap", check_fields=False)
    @classmethod
    def _keep_urls(cls, value, handler, info):
        return value if is_url(value) else handler(value)

    @field_serializer(*URL_FIELDS, mode="wrap", check_fields=False)
    def _dump_urls(self, value, handler, info):
        return value if is_url(value) else handler(value)

    @property
    def source_name(self) -> str:
        return self.name or self.type

    @property
    def fixed_language(self) -> bool:
        """True when the rows come in their own language (``preset_lang``): they cannot fan out into all."""
        return False

    @property
    def images_root(self) -> str:
        """The folder every row's ``image_path`` is relative to (this source's image root in the manifest)."""
        return str(self.images)

    @property
    def image_root(self) -> str | None:
        """The folder under which every row's image must exist (None: not checked at ingest)."""
        return self.images_root if self.check_images else None

    def open_reader(self, work_dir: str | Path):
        """The reader of this source (``work_dir``: the run's work folder, for readers that keep files there)."""
        raise NotImplementedError

    def ingest_params(self, work_dir: str | Path) -> dict:
        """Plain values (paths as strings) that identify what the reader reads: with the files' sizes and
        modification times they key a finished ingest (``pipeline.ingest.stage.source_fingerprint``).

        By default every value of ``legacy_values`` that is set; types whose reader reads only named files
        list just those."""
        return {k: v for k, v in self.legacy_values().items()
                if k not in ("type", "name") and v is not None and v != [] and v != {}}

    def legacy_values(self) -> dict:
        """This source's values (JSON) laid out over ``LEGACY_FIELDS``: what its config hash covers."""
        return {**LEGACY_FIELDS, **self.model_dump(mode="json")}


def is_path_field(cls, name: str) -> bool:
    """Whether field ``name`` of a source config class names a file or folder (``Path``, ``Path | None``)."""
    field = cls.model_fields.get(name)
    return field is not None and (field.annotation is Path or Path in get_args(field.annotation))

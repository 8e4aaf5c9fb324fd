"""The released mBLIP training file: a JSON list of ``{"context", "label", "image_id"}`` (e.g.
``task_mix_v2_mt.json``), already translated; ``image_id`` is a path under an image root.

Read as ready (prompt, target) rows (task ``instruct``, the context as ``context_en``, the label as
``text_en``) so the file can be inspected, filtered, re-translated or extended with this pipeline.
The file does not record languages: ``language`` names one for every row, or ``detect`` (default)
takes py3langid's best project language for the label and context together. Rows keep their text
(``preset_lang``); with ``retranslate`` the rows detected as English are instead assigned a language
and translated like any English source (rows in other languages have no English to start from).

The release's ``image_id`` paths lie under three roots (web CapFilt images, COCO/Flickr, ImageNet train:
the reference's trainer took a list of roots and used the first holding the file). ``images`` is one
folder, a list of folders tried in that order, or a mapping ``{prefix: folder}`` (an ``image_id``
starting with the prefix lies under that folder; the longest prefix wins, ``""`` matches any). Rows
store ``image_path`` relative to the folders' common parent, which is the source's image root in the
manifest, so the trainer and ``mblip export`` find every image as ``root / image_path``. With a list, an
image found under none of the folders is quarantined with the folders tried.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

from pipeline.filters.langid import langid_label

from pipeline.ingest.base import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    check_file,
    relative_source_file,
    require_text,
    safe_image_path,
)
from pipeline.ingest.coco import iter_json_items
from pipeline.ingest.source import SourceBase
from pipeline.languages import SOURCE_LANGUAGE, get_language, load_languages
from pipeline.schema import TASK_INSTRUCT

DETECT = "detect"


class ImageRoots:
    """The folder(s) a released file's ``image_id`` paths lie under (see the module docstring)."""

    def __init__(self, images: str | Path | tuple | list | dict):
        if isinstance(images, dict):
            self.prefixes = sorted(((str(k), Path(v)) for k, v in images.items()), key=lambda kv: -len(kv[0]))
            self.roots = [root for _, root in self.prefixes]
        else:
            self.prefixes = None
            self.roots = [Path(r) for r in images] if isinstance(images, (tuple, list)) else [Path(images)]
        if not self.roots:
            raise ValueError("mblip_released images: give at least one image folder")
        self.single = len(self.roots) == 1 and not self.prefixes
        absolute = [str(r.resolve()) for r in self.roots]
        self.base = self.roots[0] if self.single else Path(os.path.commonpath(absolute))
        self._rel = {r: PurePosixPath(Path(a).relative_to(self.base).as_posix()) for r, a in zip(self.roots, absolute)}

    def resolve(self, image: str) -> str:
        """``image`` (a safe relative path) relative to ``base``; a RecordError when no folder holds it."""
        if self.single:
            return image
        if self.prefixes is not None:
            for prefix, root in self.prefixes:
                if image.startswith(prefix):
                    return str(self._rel[root] / image)
            raise RecordError("image_id", f"{image!r} starts with none of the prefixes of `images` "
                                          f"({', '.join(repr(p) for p, _ in self.prefixes)}); add one, or \"\" for any")
        for root in self.roots:
            if (root / image).is_file():
                return str(self._rel[root] / image)
        raise RecordError("image_id", f"image_missing: {image!r} is under none of the image folders "
                                      f"({', '.join(str(r) for r in self.roots)})")


@lru_cache(maxsize=1)
def _identifier():
    """A py3langid identifier restricted to the project languages it covers (label -> project code)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    to_code = {langid_label(lang.code): lang.code for lang in load_languages() if langid_label(lang.code)}
    identifier.set_languages(sorted(to_code))
    return identifier, to_code


def detect_language(text: str) -> str:
    identifier, to_code = _identifier()
    label, _ = identifier.classify(text)
    return to_code[label]


class ReleasedMblipReader:
    def __init__(
        self, path: str | Path, name: str = "mblip_released", language: str = DETECT, retranslate: bool = False,
        images: str | Path | tuple | list | dict | None = None,
    ):
        self.path = check_file(path)
        self.name = name
        self.language = language if language == DETECT else get_language(language).code
        self.retranslate = retranslate
        self.roots = ImageRoots(images) if images is not None else None

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)
        items = iter_json_items(self.path, "item", hint="expected a JSON list of {context, label, image_id}")
        for index, record in enumerate(items):
            try:
                context = require_text(record, "context")
                label = require_text(record, "label")
                image = safe_image_path(require_text(record, "image_id"), "image_id")
                if self.roots is not None:
                    image = self.roots.resolve(image)
            except RecordError as err:
                builder.quarantine(index, record, index, err)
            else:
                lang = detect_language(f"{label} {context}") if self.language == DETECT else self.language
                preset = None if self.retranslate and lang == SOURCE_LANGUAGE else lang
                # The file has no ids: the position is the record id (keep the file append-only).
                builder.add_row(
                    str(index),
                    task=TASK_INSTRUCT,
                    image_id=image,
                    image_path=image,
                    text_en=label,
                    context_en=context,
                    preset_lang=preset,
                )
            if builder.full():
                yield builder.flush()
        yield from builder.drain()


class ReleasedMblipSource(SourceBase):
    """``type: mblip_released``: the released mBLIP training file (``task_mix_v2_mt.json``)."""

    type: Literal["mblip_released"] = "mblip_released"
    path: Path
    # The folder(s) the file's image_id paths lie under: one folder; a list tried in order (web CapFilt
    # images, COCO/Flickr, ImageNet train: the release needs all three); or {prefix: folder}, the longest
    # matching prefix of an image_id naming its folder ("" = any).
    images: Path | tuple[Path, ...] | dict[str, Path]
    language: str = DETECT  # the rows' language, or detect it per row (py3langid)
    retranslate: bool = False  # translate the English rows instead of keeping them

    @property
    def fixed_language(self) -> bool:
        return True

    @property
    def images_root(self) -> str:
        """The folders' common parent: every row's ``image_path`` is relative to it."""
        return str(ImageRoots(self.images).base)

    def open_reader(self, work_dir: str | Path) -> ReleasedMblipReader:
        return ReleasedMblipReader(self.path, name=self.source_name, language=self.language,
                                   retranslate=self.retranslate, images=self.images)

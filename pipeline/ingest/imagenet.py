"""ImageNet classification and "does the image show X?" examples with class names per language.

Inputs: the ImageNet train folder (one sub-folder per synset, ``n01440764/n01440764_10026.JPEG``;
class index = position of the synset in sorted order, or in a ``synsets`` file, one wnid a line),
English class names (a JSON list or a text file, one name a line, in class-index order, e.g. the 1000
OpenAI CLIP names) and a Babel-ImageNet label file (``babel_imagenet-298.json``: ``{LANG: [[class
indices], [names]]}``). English comes from the class-name list (the reference replaced the file's
``EN`` entry with the OpenAI names too).

Label keys are mapped to project languages as the reference does (``data/imagenet/generate_train.py``):
each project code is looked up upper-cased (``de`` -> ``DE``), and where mC4 keeps a legacy code the file
uses the ISO 639-1 one: Hebrew ``iw`` -> ``HE`` and Filipino ``fil`` -> ``TL`` (``IW``/``FIL`` win when
present). The file holds 298 languages, most of them (legacy and Wikipedia codes among them) outside the
project's 96: those keys are reported in the reader's statistics and the card (``LABEL_STATS``), never
quarantined row by row.

As in mBLIP (Geigle et al. 2024, Sec. 3.1; the reference's "8iter"), every language emits one example
per class it covers in each of ``passes`` passes (8 in the paper), for each of the two tasks. The
rows are already in their language (``preset_lang``): nothing is translated. Differences from the
reference, on purpose: everything is seeded; the two tasks draw from disjoint halves of each class's
images (the reference's decide pass reused the images classification had used); a negative is never
the true class nor a class with the same name in that language (the reference could ask "is this a
dog?" about a dog and answer "No"). Decide examples are half positive, a quarter a random other class
and a quarter the next class in the list with a different name, as in the reference.

Record unit: one (task, language, class, pass) example; a class without images or a bad label entry is
quarantined.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline.ingest.base import BatchBuilder, ReadBatch, RecordError, SourceError, check_file, relative_source_file
from pipeline.ingest.source import SourceBase
from pipeline.languages import SOURCE_LANGUAGE, get_language, load_languages
from pipeline.schema import TASK_CLASSIFY, TASK_DECIDE

PASSES = 8  # the paper's number of passes over the class list
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
IMAGENET_TASKS = (TASK_CLASSIFY, TASK_DECIDE)
# Project codes that mC4 spells with a legacy code: the label file's keys for them, after the upper-cased code
LEGACY_KEYS = {"iw": ("HE",), "fil": ("TL",)}
# 2: label keys mapped as the reference (upper case, HE/TL): an ingest by an earlier reader is read again
READER_VERSION = 2
LABEL_STATS = "babel_imagenet"  # the reader statistics key (pipeline/card/readers.py renders it)


def map_label_keys(keys) -> tuple[dict[str, str], list[str]]:
    """The label file's keys mapped as the reference: (project code -> key, keys used by no project language).

    Keys compare upper-cased (the file's are upper case: ``FR``, ``HE``); a project language takes its
    upper-cased code, else its legacy key (``LEGACY_KEYS``).
    """
    by_upper: dict[str, str] = {}
    for key in keys:
        by_upper.setdefault(str(key).upper(), key)
    chosen: dict[str, str] = {}
    for language in load_languages():
        for candidate in (language.code.upper(), *LEGACY_KEYS.get(language.code, ())):
            if candidate in by_upper:
                chosen[language.code] = by_upper[candidate]
                break
    used = set(chosen.values())
    return chosen, [key for key in keys if key not in used]


def read_class_names(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SourceError(f"{path}: expected a JSON list of class names")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


class ImagenetReader:
    def __init__(
        self,
        images: str | Path,
        classes: str | Path,
        labels: str | Path | None = None,
        name: str = "imagenet",
        synsets: str | Path | None = None,
        passes: int = PASSES,
        seed: int = 0,
        languages: tuple[str, ...] = (),
        tasks: tuple[str, ...] = IMAGENET_TASKS,
    ):
        self.images = Path(images)
        if not self.images.is_dir():
            raise SourceError(f"{self.images}: ImageNet image folder not found")
        self.classes_file = check_file(classes)
        self.labels_file = check_file(labels) if labels else None
        self.synsets_file = check_file(synsets) if synsets else None
        self.name = name
        if passes < 1:
            raise ValueError(f"imagenet passes must be >= 1 (the paper used {PASSES}); got {passes}")
        self.passes = passes
        self.seed = seed
        self.languages = tuple(languages)  # empty = English and every project language of the label file
        unknown = sorted(set(tasks) - set(IMAGENET_TASKS))
        if unknown or not tasks:
            raise ValueError(f"imagenet tasks must be among {list(IMAGENET_TASKS)}; got {list(tasks)}")
        self.tasks = tuple(tasks)
        self.stats: dict = {}  # the label file's keys: mapped, unmapped (``LABEL_STATS``), after reading

    def _synsets(self, n_classes: int) -> list[str]:
        if self.synsets_file:
            wnids = read_class_names(self.synsets_file)
        else:
            wnids = sorted(p.name for p in self.images.iterdir() if p.is_dir())
        if len(wnids) != n_classes:
            raise SourceError(
                f"{self.synsets_file or self.images}: {len(wnids)} synsets but {n_classes} class names "
                f"in {self.classes_file}; pass a synsets file in class-index order"
            )
        return wnids

    def _label_sets(self, n_classes: int, builder: BatchBuilder) -> dict[str, list[tuple[int, str]]]:
        """Language code -> [(class index, name)] in file order; bad entries are quarantined, keys of no
        project language reported in ``self.stats``."""
        english = read_class_names(self.classes_file)
        sets: dict[str, list[tuple[int, str]]] = {SOURCE_LANGUAGE: list(enumerate(english))}
        wanted = {get_language(code).code for code in self.languages}
        if self.labels_file is None:
            return {lang: items for lang, items in sets.items() if not wanted or lang in wanted}
        try:
            data = json.loads(self.labels_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SourceError(f"{self.labels_file}: not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise SourceError(f"{self.labels_file}: expected {{LANG: [[class indices], [names]]}}")
        chosen, unmapped = map_label_keys(list(data))
        self.stats = {LABEL_STATS: {
            "keys": len(data), "mapped": dict(sorted(chosen.items())), "unmapped": sorted(unmapped),
            "not_selected": sorted(code for code in chosen if wanted and code not in wanted),
            "english": chosen.get(SOURCE_LANGUAGE),  # replaced by the English class names, as the reference
        }}
        source_file = relative_source_file(self.labels_file, None)
        for code, key in sorted(chosen.items()):
            if code == SOURCE_LANGUAGE or (wanted and code not in wanted):
                continue  # English comes from the class-name list
            items = self._entries(key, data[key], n_classes, builder, source_file)
            if items is not None:
                sets[code] = items
        return {lang: items for lang, items in sorted(sets.items()) if not wanted or lang in wanted}

    def _entries(self, key: str, entry, n_classes: int, builder: BatchBuilder,
                 source_file: str) -> list[tuple[int, str]] | None:
        """One language's [(class index, name)]; bad entries quarantined (None: the whole entry is bad)."""
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, list) for x in entry)
                and len(entry[0]) == len(entry[1])):
            builder.quarantine(-1, entry, key, RecordError(key, "expected [[class indices], [names]] of equal length"),
                               source_file=source_file)
            return None
        items = []
        for k, (index, label) in enumerate(zip(*entry)):
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_classes:
                err = RecordError(f"{key}[0][{k}]", f"class index {index!r} not in 0..{n_classes - 1}")
            elif not isinstance(label, str) or not label.strip():
                err = RecordError(f"{key}[1][{k}]", "empty class name")
            else:
                items.append((index, " ".join(label.split())))
                continue
            builder.quarantine(k, [index, label], f"{key}:{index}", err, source_file=source_file)
        return items

    def _images(self, wnid: str) -> tuple[list[str], list[str]]:
        """Disjoint image lists (classify, decide) of one synset: alternate files in sorted order."""
        folder = self.images / wnid
        files = (
            sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        )
        return [f"{wnid}/{f}" for f in files[0::2]], [f"{wnid}/{f}" for f in files[1::2]]

    def _negative(self, rng: random.Random, items: list[tuple[int, str]], position: int) -> str | None:
        true_index, true_name = items[position]

        def ok(item):  # never the true class, never a class with the same name in this language
            return item[0] != true_index and item[1].casefold() != true_name.casefold()

        if rng.random() < 0.5:
            candidates = [it for it in items if ok(it)]
            return rng.choice(candidates)[1] if candidates else None
        for step in range(1, len(items)):
            item = items[(position + step) % len(items)]
            if ok(item):
                return item[1]
        return None

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.classes_file, None), batch_size)
        n_classes = len(read_class_names(self.classes_file))
        wnids = self._synsets(n_classes)
        label_sets = self._label_sets(n_classes, builder)
        pools = {c: self._images(wnids[c]) for c in range(n_classes)}
        pointers: dict[tuple[str, int], int] = {}
        for p in range(self.passes):
            for lang, items in label_sets.items():
                for position, (c, label) in enumerate(items):
                    for task in self.tasks:
                        rid = f"{task}:{lang}:{c}:{p}"
                        pool = pools[c][0 if task == TASK_CLASSIFY else 1]
                        if not pool:
                            builder.quarantine(
                                c,
                                {"class": c, "synset": wnids[c], "lang": lang},
                                rid,
                                RecordError(
                                    "images",
                                    f"no {task} image in {wnids[c]}/ under the images folder "
                                    "(classify and decide use alternate files: a class needs 2)",
                                ),
                            )
                            continue
                        k = pointers.get((task, c), 0)
                        pointers[(task, c)] = k + 1
                        image = pool[k % len(pool)]  # the next unused image; wraps when a class runs out
                        values = dict(
                            task=task,
                            image_id=image.rsplit("/", 1)[1].rsplit(".", 1)[0],
                            image_path=image,
                            preset_lang=lang,
                            answers_en=[label],
                        )
                        if task == TASK_CLASSIFY:
                            builder.add_row(rid, text_en=label, answer_en=None, **values)
                        else:
                            rng = random.Random(f"{self.seed}:{rid}")
                            negative = None if rng.random() < 0.5 else self._negative(rng, items, position)
                            builder.add_row(
                                rid, text_en=negative or label, answer_en="no" if negative else "yes", **values
                            )
                        if builder.full():
                            yield builder.flush()
        yield from builder.drain()


class ImagenetSource(SourceBase):
    """``type: imagenet``: the train folder of synsets (``images``) and the class-name files."""

    type: Literal["imagenet"] = "imagenet"
    # English class names (JSON list or one a line, class-index order), the Babel-ImageNet label file
    # ({lang: [[class indices], [names]]}; None = English only), optional synset list.
    classes: Path
    labels: Path | None = None
    synsets: Path | None = None
    passes: int = Field(PASSES, ge=1)  # examples per covered class and language (paper: 8)
    seed: int = 0  # negatives and image order
    languages: tuple[str, ...] = ()  # languages of the label file to use; empty = all
    tasks: tuple[str, ...] = ()  # classify and/or decide; empty = both

    @property
    def fixed_language(self) -> bool:
        return True

    def ingest_params(self, work_dir: str | Path) -> dict:
        return {**super().ingest_params(work_dir), "reader_version": READER_VERSION}

    def open_reader(self, work_dir: str | Path) -> ImagenetReader:
        return ImagenetReader(self.images, self.classes, self.labels, name=self.source_name, synsets=self.synsets,
                              passes=self.passes, seed=self.seed, languages=tuple(self.languages),
                              tasks=tuple(self.tasks) or IMAGENET_TASKS)

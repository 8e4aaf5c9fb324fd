"""ImageNet classification and "does the image show X?" examples with class names per language.

Inputs: the ImageNet train folder (one sub-folder per synset, ``n01440764/n01440764_10026.JPEG``;
class index = position of the synset in sorted order, or in a ``synsets`` file, one wnid a line),
English class names (a JSON list or a text file, one name a line, in class-index order, e.g. the 1000
OpenAI CLIP names) and a Babel-ImageNet label file (``babel_imagenet-298.json``: ``{lang: [[class
indices], [names]]}``). Languages are project or NLLB codes; English comes from the class-name list.

As in mBLIP (Geigle et al. 2024, Sec. 3.1; the reference's "8iter"), every language emits one example
per class it covers in each of ``passes`` passes (8 in the paper), for each of the two tasks. The
rows are already in their language (``preset_lang``): nothing is translated. Differences from the
reference, on purpose: everything is seeded; the two tasks draw from disjoint halves of each class's
images (the reference's decide pass reused the images classification had used); a negative is never
the true class nor a class with the same name in that language (the reference could ask "is this a
dog?" about a dog and answer "No"). Decide examples are half positive, a quarter a random other class
and a quarter the next class in the list with a different name, as in the reference.

Record unit: one (task, language, class, pass) example; a class without images, a bad label entry or
a language that is not a project language is quarantined.
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
from pipeline.languages import SOURCE_LANGUAGE, UnknownLanguageError, get_language
from pipeline.schema import TASK_CLASSIFY, TASK_DECIDE

PASSES = 8  # the paper's number of passes over the class list
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
IMAGENET_TASKS = (TASK_CLASSIFY, TASK_DECIDE)


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
        """Language code -> [(class index, name)] in file order; bad entries are quarantined."""
        english = read_class_names(self.classes_file)
        sets: dict[str, list[tuple[int, str]]] = {SOURCE_LANGUAGE: list(enumerate(english))}
        if self.labels_file is not None:
            try:
                data = json.loads(self.labels_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise SourceError(f"{self.labels_file}: not valid JSON ({e})") from e
            if not isinstance(data, dict):
                raise SourceError(f"{self.labels_file}: expected {{language: [[class indices], [names]]}}")
            source_file = relative_source_file(self.labels_file, None)
            for lang, entry in data.items():
                try:
                    code = get_language(lang).code
                except UnknownLanguageError:
                    builder.quarantine(
                        -1,
                        {"language": lang},
                        lang,
                        RecordError("language", "not a project language"),
                        source_file=source_file,
                    )
                    continue
                if code == SOURCE_LANGUAGE:
                    continue  # English comes from the class-name list
                if not (
                    isinstance(entry, list)
                    and len(entry) == 2
                    and all(isinstance(x, list) for x in entry)
                    and len(entry[0]) == len(entry[1])
                ):
                    builder.quarantine(
                        -1,
                        entry,
                        lang,
                        RecordError(lang, "expected [[class indices], [names]] of equal length"),
                        source_file=source_file,
                    )
                    continue
                items = []
                for k, (index, label) in enumerate(zip(*entry)):
                    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_classes:
                        err = RecordError(f"{lang}[0][{k}]", f"class index {index!r} not in 0..{n_classes - 1}")
                    elif not isinstance(label, str) or not label.strip():
                        err = RecordError(f"{lang}[1][{k}]", "empty class name")
                    else:
                        items.append((index, " ".join(label.split())))
                        continue
                    builder.quarantine(k, [index, label], f"{lang}:{index}", err, source_file=source_file)
                sets[code] = items
        wanted = {get_language(code).code for code in self.languages}
        return {lang: items for lang, items in sorted(sets.items()) if not wanted or lang in wanted}

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

    def open_reader(self, work_dir: str | Path) -> ImagenetReader:
        return ImagenetReader(self.images, self.classes, self.labels, name=self.source_name, synsets=self.synsets,
                              passes=self.passes, seed=self.seed, languages=tuple(self.languages),
                              tasks=tuple(self.tasks) or IMAGENET_TASKS)

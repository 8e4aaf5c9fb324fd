"""CHAIR: object hallucination in generated captions (Rohrbach et al. 2018, "Object Hallucination in Image
Captioning", EMNLP), on COCO images.

An image's ground-truth objects are the COCO categories of its instance annotations plus the objects its
reference captions mention; a generated caption mentions objects through the synonym list of the paper's
released code (``coco_synonyms.json``: 80 categories, each with the words and phrases that count for it). A
mention whose category is not among the image's objects is a hallucination:

- CHAIRs = captions with at least one hallucinated object / captions,
- CHAIRi = hallucinated object mentions / all object mentions (each mention counts, repeats included).

How a caption becomes mentions, following the released code (``utils/chair.py``): lowercase, split into
words, singularise each word, merge two-word phrases (``DOUBLE_WORDS``: "hot dog", "teddy bear", ...; "baby"
or "adult" before an animal word and "passenger" before "jet"/"train" mean that animal or vehicle, so
"baby elephant" is no person; "bow tie" is a tie, "toilet seat" a toilet), drop "seat" from a caption that
also says "toilet", then keep the words and phrases of the synonym list, each standing for its category.

The released code singularised with pattern.en and split words with NLTK; neither is a dependency here, so
``tokenize`` and ``singularize`` below are this project's (the differences are listed in
docs/evaluation.md). ``CocoObjects.load(tokenize=..., singularize=...)`` takes other functions, e.g.
``nltk.word_tokenize`` and ``pattern.en.singularize`` to reproduce the released code exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

SYNONYMS_FILE = "coco_synonyms.json"

# Two words that name one object (the released code's list; "home plate" is kept whole so that "plate" alone
# cannot fire).
DOUBLE_WORDS = (
    "motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal", "stop light",
    "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball", "baseball bat", "baseball glove",
    "tennis racket", "wine glass", "hot dog", "cell phone", "mobile phone", "teddy bear", "hair drier",
    "potted plant", "bow tie", "laptop computer", "stove top oven", "home plate",
)  # fmt: skip
# "baby"/"adult" before these is the animal, not a person ("baby" and "adult" are synonyms of person).
ANIMAL_WORDS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub")
# "passenger" before these is the vehicle ("passenger" is a synonym of person).
VEHICLE_WORDS = ("jet", "train")

# Irregular plurals (as word endings: "women" -> "woman", "policemen" -> "policeman").
IRREGULAR_PLURALS = {"men": "man", "people": "person", "children": "child", "geese": "goose", "mice": "mouse",
                     "teeth": "tooth", "feet": "foot"}
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Lowercased words: runs of letters and digits, hyphenated words kept whole ("hot-dog" is one word, as
    NLTK's tokenizer keeps it); an apostrophe splits ("dog's" -> "dog", "s")."""
    return _WORD.findall(caption.lower())


def singular_candidates(word: str) -> Iterable[str]:
    """``word`` and the singulars English plural rules allow for it, most specific first."""
    yield word
    for plural, singular in IRREGULAR_PLURALS.items():
        if word.endswith(plural):
            yield word[: -len(plural)] + singular
    if word.endswith("ies"):
        yield word[:-3] + "y"  # ponies -> pony
    if word.endswith("ves"):
        yield word[:-3] + "f"  # calves -> calf
        yield word[:-3] + "fe"  # knives -> knife
    if word.endswith("es"):
        yield word[:-2]  # buses -> bus, sandwiches -> sandwich, glasses -> glass
    if word.endswith("s"):
        yield word[:-1]  # dogs -> dog, ties -> tie, suitcases -> suitcase


@dataclass
class CocoObjects:
    """The synonym list and phrase rules: which words of a caption are COCO objects, and which category each is."""

    synonyms: dict[str, str]  # word or phrase -> its category (the first entry of its line)
    phrases: dict[str, str]  # two words -> the word or phrase they count as
    known: frozenset[str] = field(default_factory=frozenset)  # every word a singular may land on
    tokenize: Callable[[str], list[str]] = tokenize
    singularize: Callable[[str], str] | None = None  # None: ``singular`` below

    @classmethod
    def load(cls, tokenize: Callable[[str], list[str]] = tokenize,
             singularize: Callable[[str], str] | None = None) -> CocoObjects:
        return cls(*_vocabulary(), tokenize=tokenize, singularize=singularize)

    def singular(self, word: str) -> str:
        """The first of ``singular_candidates`` that is a word of the vocabulary, else ``word`` unchanged."""
        if self.singularize is not None:
            return self.singularize(word)
        return next((w for w in singular_candidates(word) if w in self.known), word)

    def mentions(self, caption: str) -> list[tuple[str, str]]:
        """(word or phrase, category) for every object the caption mentions, in order, repeats included."""
        words = [self.singular(w) for w in self.tokenize(caption)]
        merged, i = [], 0
        while i < len(words):
            pair = " ".join(words[i : i + 2])
            if i + 1 < len(words) and pair in self.phrases:
                merged.append(self.phrases[pair])
                i += 2
            else:
                merged.append(words[i])
                i += 1
        if "toilet" in merged and "seat" in merged:  # "the seat of the toilet" is no chair
            merged = [w for w in merged if w != "seat"]
        return [(w, self.synonyms[w]) for w in merged if w in self.synonyms]

    def is_category(self, name: str) -> bool:
        """Whether ``name`` is one of the 80 category names (the first entry of a line), as COCO's files name them."""
        return self.synonyms.get(name) == name

    def category(self, name: str) -> str:
        """The category of a COCO instance category name (KeyError for a name that is none of the 80)."""
        if not self.is_category(name):
            raise KeyError(name)
        return name

    def ground_truth(self, categories: Iterable[str], captions: Iterable[str]) -> set[str]:
        """An image's objects: its instance annotations' categories and what its reference captions mention."""
        objects = {self.category(name) for name in categories}
        for caption in captions:
            objects.update(category for _, category in self.mentions(caption))
        return objects


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    text = resources.files("model.evaluate").joinpath(SYNONYMS_FILE).read_text(encoding="utf-8")
    synonyms: dict[str, str] = {}
    for line in json.loads(text)["lines"]:
        entries = line.strip().split(", ")  # as the released code splits (entries keep stray spaces)
        for entry in entries:
            synonyms[entry] = entries[0]
    phrases = {phrase: phrase for phrase in DOUBLE_WORDS}
    for animal in ANIMAL_WORDS:
        phrases[f"baby {animal}"] = phrases[f"adult {animal}"] = animal
    for vehicle in VEHICLE_WORDS:
        phrases[f"passenger {vehicle}"] = vehicle
    phrases["bow tie"] = "tie"
    phrases["toilet seat"] = "toilet"
    known = frozenset(word for text in (*synonyms, *phrases) for word in text.split())
    return synonyms, phrases, known


def chair_scores(objects: CocoObjects, predictions: Sequence[str],
                 ground_truth: Sequence[Iterable[str]]) -> tuple[dict, list[dict]]:
    """CHAIRs and CHAIRi in % (lower is better) of captions against each image's ground-truth categories.

    Returns the summary (``score`` = CHAIRs, ``chair_i``, the counts) and, per caption, the categories it
    mentions and those of them that are hallucinated."""
    per_item, mentions, hallucinated_mentions, hallucinated_captions = [], 0, 0, 0
    for caption, truth in zip(predictions, ground_truth):
        truth = set(truth)
        found = objects.mentions(caption)
        wrong = [category for _, category in found if category not in truth]
        mentions += len(found)
        hallucinated_mentions += len(wrong)
        hallucinated_captions += bool(wrong)
        per_item.append({"hallucinated": wrong, "mentioned": [category for _, category in found]})
    n = len(per_item)
    summary = {
        "score": 100.0 * hallucinated_captions / n if n else float("nan"),
        "n": n,
        "chair_s": 100.0 * hallucinated_captions / n if n else float("nan"),
        "chair_i": 100.0 * hallucinated_mentions / mentions if mentions else float("nan"),
        "mentions": mentions,
        "hallucinated_mentions": hallucinated_mentions,
        "hallucinated_captions": hallucinated_captions,
    }
    return summary, per_item

"""Synthetic English inputs for the benchmarks: caption-length sentences and a VQAv2-like stream.

VQAv2 questions and answers repeat heavily ("What color is the ...?", "yes", "2"): a handful of
question patterns over a few hundred objects, drawn with a Zipf-like law, reproduces that repetition
without any download. Deterministic for a given seed.
"""

from __future__ import annotations

import random

OBJECTS = (
    "man", "woman", "dog", "cat", "car", "bus", "train", "plane", "boat", "horse", "table", "chair",
    "bed", "clock", "sign", "shirt", "umbrella", "kite", "pizza", "cake", "bench", "bird", "truck",
    "giraffe", "elephant", "zebra", "sheep", "cow", "laptop", "phone", "book", "vase", "bowl", "cup",
    "bicycle", "motorcycle", "skateboard", "surfboard", "tennis racket", "frisbee", "banana", "sandwich",
    "wall", "floor", "sky", "grass", "street", "building", "tree", "window", "door", "fence", "plate",
)
ADJECTIVES = ("red", "white", "black", "small", "large", "old", "wooden", "blue", "green", "tall", "young")
PLACES = (
    "on a busy street", "next to a building", "in a grassy field", "on a wooden table", "near the water",
    "in a small kitchen", "under a blue sky", "at the beach", "in front of a house", "on the sidewalk",
)
VERBS = ("standing", "sitting", "walking", "parked", "lying", "playing", "waiting", "resting")
QUESTION_PATTERNS = (
    "What color is the {o}?", "How many {o}s are there?", "Is there a {o} in the picture?",
    "What is the {o} doing?", "Where is the {o}?", "Is the {o} {a}?", "What is on the {o}?",
    "What is next to the {o}?", "Is this {o} {a}?", "What kind of {o} is this?",
)
COMMON_QUESTIONS = (
    "What room is this?", "Is it sunny?", "What sport is being played?", "Is this photo taken indoors?",
    "What time of day is it?", "Are there any people?", "What is the weather like?", "Is it raining?",
)
ANSWERS_BY_PATTERN = {
    0: ADJECTIVES[:3] + ("brown", "gray", "yellow"),
    1: ("1", "2", "3", "4", "0", "5", "10"),
    2: ("yes", "no"), 5: ("yes", "no"), 8: ("yes", "no"),
}
OTHER_ANSWERS = ("table", "kitchen", "tennis", "left", "right", "nothing", "eating", "baseball", "sitting", "grass")


def caption_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` caption-length sentences (10-16 words), mostly distinct."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, o, v, p = rng.choice(ADJECTIVES), rng.choice(OBJECTS), rng.choice(VERBS), rng.choice(PLACES)
        a2, o2 = rng.choice(ADJECTIVES), rng.choice(OBJECTS)
        out.append(f"A {a} {o} {v} {p} with a {a2} {o2} in the background.")
    return out


def vqa_stream(n: int, seed: int = 0, exponent: float = 1.1) -> list[tuple[str, str]]:
    """``n`` (question, answer) pairs with VQAv2-like repetition: a Zipf law over distinct questions."""
    import bisect
    import itertools

    rng = random.Random(seed)
    pool: list[tuple[str, int]] = [(q, -1) for q in COMMON_QUESTIONS]
    for i, pattern in enumerate(QUESTION_PATTERNS):
        for o in OBJECTS:
            for a in ADJECTIVES if "{a}" in pattern else ("",):
                pool.append((pattern.format(o=o, a=a), i))
    random.Random(seed + 1).shuffle(pool)
    cumulative = list(itertools.accumulate(1.0 / (rank ** exponent) for rank in range(1, len(pool) + 1)))
    total = cumulative[-1]
    out = []
    for _ in range(n):
        question, pattern = pool[bisect.bisect_left(cumulative, rng.random() * total)]
        answers = ANSWERS_BY_PATTERN.get(pattern, OTHER_ANSWERS)
        out.append((question, rng.choice(answers)))
    return out


def varied_caption(rng: random.Random) -> str:
    """One caption of COCO-like length: 6 to 20 words, most of them 8 to 13 (COCO's mean is about 10.5)."""
    a, o, v, p = rng.choice(ADJECTIVES), rng.choice(OBJECTS), rng.choice(VERBS), rng.choice(PLACES)
    a2, o2 = rng.choice(ADJECTIVES), rng.choice(OBJECTS)
    shape = rng.random()
    if shape < 0.15:
        return f"A {o} {v} {p}."
    if shape < 0.55:
        return f"A {a} {o} {v} {p}."
    if shape < 0.85:
        return f"A {a} {o} {v} {p} with a {a2} {o2}."
    return f"A {a} {o} and a {a2} {o2} {v} {p} in the background."


def chunk_strings(n: int = 2000, seed: int = 0, question_share: float = 0.35) -> list[str]:
    """``n`` distinct English strings as one chunk's translation call sees them after deduplication: COCO-like
    captions (``varied_caption``) and VQAv2-like questions (3 to 10 words), in a seeded order."""
    rng = random.Random(seed)
    questions = list(dict.fromkeys(q for q, _ in vqa_stream(20 * n, seed=seed)))
    rng.shuffle(questions)
    questions = questions[: int(n * question_share)]
    seen, captions = set(questions), []
    while len(captions) < n - len(questions):
        caption = varied_caption(rng)
        if caption not in seen:
            seen.add(caption)
            captions.append(caption)
    out = captions + questions
    rng.shuffle(out)
    return out

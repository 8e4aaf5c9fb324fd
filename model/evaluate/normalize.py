"""Answer normalisation of the official VQA evaluation (as used by LAVIS and the mBLIP reference), and the
string matches the benchmarks score with.

``vqa_clean`` applies, in order: newlines/tabs to spaces and strip; punctuation; lowercase; number words
to digits; articles dropped; the VQA contractions table. Punctuation follows the official rules
exactly: each mark of ``PUNCTUATION`` is deleted when it touches a space somewhere in the answer, or
when the answer contains a digit,digit number anywhere; otherwise it becomes a space. Apostrophe and
colon are kept. A period not followed by a digit is removed; like the official code (which passes
``re.UNICODE`` as the ``count`` argument of ``re.sub``) at most 32 periods are removed.
"""

from __future__ import annotations

import re

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = frozenset({"a", "an", "the"})
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_OFFICIAL_PERIOD_COUNT = 32  # re.UNICODE passed as re.sub's count in the official evaluation
# The official VQA contractions table (keys with capitals never match after lowercasing; kept as is).
CONTRACTIONS = dict(
    pair.split("=", 1)
    for pair in (
        "aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've "
        "couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've "
        "hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's "
        "howd=how'd howll=how'll hows=how's Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd "
        "itd've=it'd've it'dve=it'd've itll=it'll let's=let's maam=ma'am mightnt=mightn't "
        "mightnt've=mightn't've mightn'tve=mightn't've mightve=might've mustnt=mustn't mustve=must've "
        "neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at "
        "'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've "
        "shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd "
        "somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's "
        "someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll "
        "someones=someone's somethingd=something'd somethingd've=something'd've "
        "something'dve=something'd've somethingll=something'll thats=that's thered=there'd "
        "thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd "
        "theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas "
        "wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll "
        "whatre=what're whats=what's whatve=what've whens=when's whered=where'd wheres=where's "
        "whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's "
        "whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't "
        "wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll "
        "yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've "
        "you'dve=you'd've youll=you'll youre=you're youve=you've"
    ).split()
)


def strip_punctuation(text: str) -> str:
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        # The test looks at the original text, the replacement works on the running output (as official).
        if delete_all or f"{mark} " in text or f" {mark}" in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def normalize_words(text: str) -> str:
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def vqa_clean(answer: str) -> str:
    """The official VQA answer normalisation (see the module docstring)."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return normalize_words(strip_punctuation(text))


def vqa_match(prediction: str, label: str) -> bool:
    """mBLIP's xGQA/XVNLI/MaRVL score: cleaned prediction == lowercased label."""
    return vqa_clean(prediction) == label.strip().lower()


def relaxed_vqa_match(prediction: str, label: str) -> bool:
    """The relaxed variant: the cleaned prediction starts or ends with the lowercased label."""
    cleaned, target = vqa_clean(prediction), label.strip().lower()
    return cleaned.startswith(target) or cleaned.endswith(target)


def maxm_match(prediction: str, answers: tuple[str, ...] | list[str]) -> bool:
    """MaXM: the lowercased, stripped prediction equals one of the processed answers (no VQA cleaning)."""
    return prediction.strip().lower() in {a.strip().lower() for a in answers}


def vqa_accuracy(prediction: str, answers: list[str] | tuple[str, ...]) -> float:
    """The official VQA accuracy of one prediction against the human answers (VQAv2: 10), in [0, 1].

    For each human left out in turn, min(#other humans who gave the prediction / 3, 1); the mean over the
    left-out humans. As the official evaluation (``vqaEval.py``): the prediction is ``vqa_clean``-ed; the
    human answers get only the punctuation step (``strip_punctuation``), and only when they are not all the
    same string (identical answers are compared as they are in the file)."""
    if not answers:
        raise ValueError("VQA accuracy needs at least one human answer")
    predicted = vqa_clean(prediction)
    humans = list(answers)
    if len(set(humans)) > 1:
        humans = [strip_punctuation(answer) for answer in humans]
    scores = []
    for left_out in range(len(humans)):
        matching = sum(1 for j, answer in enumerate(humans) if j != left_out and answer == predicted)
        scores.append(min(1.0, matching / 3))
    return sum(scores) / len(scores)


def pope_answer(prediction: str) -> str:
    """yes/no read from free text as the POPE evaluation does: the first sentence, commas removed, is "no"
    when "no" or "not" is among its words (compared case-insensitively here), "yes" otherwise."""
    words = prediction.split(".")[0].replace(",", "").lower().split()
    return "no" if "no" in words or "not" in words else "yes"

"""Output-vocabulary restriction for NLLB: build the ``vmap.txt`` that CTranslate2's ``use_vmap`` reads.

NLLB-200's output projection has 256,206 entries, about half of each greedy decoding step on the 600M
model; a batch into one language only ever uses a small part of them. CTranslate2 restricts the
decoder to the candidates of a vocabulary map (``vmap.txt`` in the model directory, read at load
time; ``translate_batch(..., use_vmap=True)``). Format, one rule per line::

    src_1 src_2 ... src_N<TAB>tgt_1 tgt_2 ... tgt_K

A rule adds its targets when its source n-gram occurs in the batch's source tokens; an empty source
n-gram lists tokens that are always candidates (``<unk>``, ``<s>``, ``</s>`` are added by CT2).

``build_vmap`` makes the always-candidates line from target-language text (every piece the model's
sentencepiece produces on it, at least ``min_count`` times, plus the language codes so the forced
target prefix stays decodable) and, with ``copy_source``, one identity rule per vocabulary entry, so a
source piece (a name, a number) can always be copied into the output. Identity rules make the candidate
set depend on the sources of each call, and CTranslate2 4.8.5 then mixes up candidate ids between the
batches of one call (``IndexError: vector::_M_range_check``, or garbage outputs: 1,011 of 1,014 shipped-model
outputs changed); with the always-candidates line alone (``--no-copy-source``) the candidate set is fixed and
9 of 3,042 held-out outputs changed (``mblip bench translate --vmap --data MULTI30K``). Whether it pays off
is measured (``mblip bench translate --vmap``); ``translation.use_vmap`` stays off. A map holding the whole
vocabulary gives exactly the unrestricted outputs (tested).

``python -m pipeline.nllb.vmap MODEL_DIR TEXT_FILE... [--min-count N] [--no-copy-source]`` writes
``MODEL_DIR/vmap.txt`` (text files: one sentence per line, plain or ``.gz``, in the target languages).
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pipeline.nllb.convert import SPM_FILENAME
from pipeline.nllb.engine import LANG_CODE, clean_source, read_vocabulary

VMAP_FILENAME = "vmap.txt"


def target_pieces(model_dir: str | Path, texts: Iterable[str], min_count: int = 1, batch: int = 10_000) -> list[str]:
    """Sentencepiece pieces of ``texts`` seen at least ``min_count`` times, most frequent first."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(Path(model_dir) / SPM_FILENAME))
    counts: Counter[str] = Counter()
    buffer: list[str] = []
    for text in texts:
        buffer.append(clean_source(text))
        if len(buffer) >= batch:
            counts.update(p for pieces in sp.encode(buffer, out_type=str) for p in pieces)
            buffer = []
    if buffer:
        counts.update(p for pieces in sp.encode(buffer, out_type=str) for p in pieces)
    return [p for p, n in counts.most_common() if n >= min_count]


def vmap_lines(vocabulary: list[str], always: Iterable[str], copy_source: bool = True) -> list[str]:
    """The lines of a vocabulary map: the always-candidates line, then identity rules."""
    known = set(vocabulary)
    entries = [t for t in dict.fromkeys(always) if t in known and t and " " not in t]
    lines = ["\t" + " ".join(entries)]
    if copy_source:
        lines += [f"{t}\t{t}" for t in vocabulary if t and " " not in t and "\t" not in t]
    return lines


def write_vmap(model_dir: str | Path, lines: list[str]) -> Path:
    """Write ``model_dir/vmap.txt`` atomically (CT2 reads it when the model is loaded)."""
    model_dir = Path(model_dir)
    fd, tmp = tempfile.mkstemp(prefix=f".{VMAP_FILENAME}.", dir=model_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, model_dir / VMAP_FILENAME)
    return model_dir / VMAP_FILENAME


def build_vmap(model_dir: str | Path, texts: Iterable[str], min_count: int = 1, copy_source: bool = True,
               extra: Iterable[str] = ()) -> Path:
    """Build and write the vocabulary map of ``model_dir`` from target-language ``texts``.

    ``extra``: more always-candidate tokens (e.g. a whole vocabulary, for the identity check).
    """
    vocabulary = read_vocabulary(model_dir)
    languages = [t for t in vocabulary if LANG_CODE.fullmatch(t)]
    pieces = target_pieces(model_dir, texts, min_count)
    return write_vmap(model_dir, vmap_lines(vocabulary, [*languages, *pieces, *extra], copy_source))


def _read_lines(paths: Iterable[str | Path]) -> Iterable[str]:
    for path in paths:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="build MODEL_DIR/vmap.txt from target-language text")
    p.add_argument("model_dir", type=Path, help="converted NLLB directory")
    p.add_argument("texts", nargs="+", type=Path, help="target-language text files (one sentence per line, .gz ok)")
    p.add_argument("--min-count", type=int, default=1, help="keep pieces seen at least this often")
    p.add_argument("--no-copy-source", action="store_true", help="no identity rules (source pieces not copyable)")
    args = p.parse_args(argv)
    for path in args.texts:
        if not path.is_file():
            raise SystemExit(f"{path}: no such text file")
    out = build_vmap(args.model_dir, _read_lines(args.texts), args.min_count, not args.no_copy_source)
    first = out.read_text(encoding="utf-8").split("\n", 1)[0]
    print(f"{out}: {len(first.split())} always-candidate entries of {len(read_vocabulary(args.model_dir))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

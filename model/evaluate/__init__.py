"""Evaluation on the mBLIP paper's multilingual benchmarks (Geigle et al. 2024, arXiv 2307.06930, Sec. 5), the
English baselines (COCO Karpathy test, VQAv2 val) and CHAIR object hallucination.

Readers for each benchmark's official published files (``readers``), the paper's prompts (``prompts``),
answer normalisation and scores (``normalize``, ``captioning``, ``chair``, ``metrics``), batched generation
from an exported model or a training checkpoint (``generation``), the run that ties them together
(``runner``), and the table beside the paper's numbers from the user's file (``paper``, ``report``).
Nothing here imports Prefect; ``flows/evaluate.py`` wires it.
"""

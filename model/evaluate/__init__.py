"""Evaluation on the mBLIP paper's multilingual benchmarks (Geigle et al. 2024, arXiv 2307.06930, Sec. 5).

Readers for each benchmark's official published files (``readers``), the paper's prompts (``prompts``),
answer normalisation and scores (``normalize``, ``captioning``, ``metrics``), batched generation from an
exported model or a training checkpoint (``generation``), and the run that ties them together
(``runner``). Nothing here imports Prefect; ``flows/evaluate.py`` wires it.
"""

"""Task fine-tuning recipes: a re-aligned checkpoint fine-tuned on one task's English training data (GQA, SNLI-VE,
NLVR2, Flickr30k), then evaluated zero-shot cross-lingually on the matching benchmark (xGQA, XVNLI, MaRVL,
xFlickrCO).

``readers.py`` reads the published training files into trainer rows; ``prepare.py`` writes them in the data
pipeline's output layout (Parquet shards, quarantine, manifest last) so the unchanged trainer streams them;
``config.py`` parses a recipe config (``configs/finetune/*.yaml``) into the recipe's settings and a
``TrainConfig``; ``run.py`` is ``mblip finetune``: prepare, train (``model.launch``), evaluate
(``model.evaluate.runner``); ``samples.py`` writes tiny training files in each published format (tests).
"""

"""mblip-pipeline: English captions and VQA into a multilingual training set for mBLIP-style re-alignment.

Stages in this package are plain functions over bounded polars frames; they never import Prefect.
Orchestration lives in ``flows/``, the trainer in ``model/``.
"""

__version__ = "0.1.0"

"""mBLIP-style re-alignment of a BLIP-2 vision encoder to a multilingual LLM.

Read in this order: ``config`` (typed YAML config), ``build`` (model assembly, LoRA, trainable set),
``data`` (manifest -> prompt/target batches), ``train`` (loop and checkpoints), ``export`` (merged
plain-transformers model), ``infer`` (caption / ask). Helpers: ``templates``, ``architectures``
(recorded shapes for offline ``model-info``), ``launch`` (one process or ``accelerate launch``),
``tiny`` and ``demo`` (local tiny checkpoints and demo data), ``eval_demo`` and ``gpu_check``.
No Prefect here: ``flows/train.py`` wires these functions.
"""

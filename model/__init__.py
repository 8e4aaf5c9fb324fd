"""mBLIP-style re-alignment of a BLIP-2 vision encoder to a multilingual LLM.

Read in this order: ``config`` (typed YAML config), ``build`` (model assembly, LoRA, trainable set),
``data`` (manifest -> prompt/target examples, no torch), ``loader`` (examples -> tokenised batches in a
torch DataLoader; ``stream`` interleaves the shards), ``train`` (the recipe: setup model, setup data,
loss step, loop, save), ``checkpoint`` (the checkpoint format: save, load, list, resume checks, the
model of a checkpoint), ``export`` (merged plain-transformers model), ``infer`` (caption / ask).
Helpers: ``templates``, ``architectures`` (recorded shapes for offline ``model-info``), ``task_loss``
(loss per task), ``launch`` (one process, or ``accelerate launch`` of ``launcher/train_worker.py``),
``evaluate`` (the paper's benchmarks and validation during training), ``tiny`` (tiny random BLIP-2, mT5
and BLOOM checkpoints built locally in seconds), ``demo`` (an English demo training output, the tiny
end-to-end evaluation, sample files for the benchmarks).
No Prefect here: ``flows/train.py`` wires these functions.
"""

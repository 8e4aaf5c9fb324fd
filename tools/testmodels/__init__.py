"""Tiny random-weight models shaped like the real ones (NLLB, BLIP-2 + mT5/BLOOM, CLIP), built locally in seconds."""

"""The shipped Multi30k translator: its trainer, model card, CT2 recovery and xGQA question pairs."""

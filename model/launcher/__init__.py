"""Holds only ``train_worker.py``, the script ``accelerate launch`` runs in each training process.

A script's folder becomes ``sys.path[0]`` of its process: this folder holds nothing else, so no module
of the project can be imported under a wrong top-level name, and the current directory is never searched
(a user's ``model.py`` or ``model/`` there cannot shadow the trainer, as it would with ``--module``).
"""

"""One training process: ``python model/launcher/train_worker.py CONFIG [--manifest DIR] ...``.

``model/launch.py`` runs this file by its path under ``accelerate launch`` (see ``model/launcher``).
"""

from model.train import main

if __name__ == "__main__":
    main()

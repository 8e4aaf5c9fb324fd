"""``python -m mblip ...``, the same as the ``mblip`` script."""

import sys

from mblip.cli import main

sys.exit(main())

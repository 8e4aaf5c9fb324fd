"""The ``mblip`` command line. It sits above the packages it drives (``pipeline``, ``flows``, ``model``);
none of them imports it."""

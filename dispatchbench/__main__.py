"""``python -m dispatchbench``: the command line, with the working folder taken off the module path.

``python -m`` puts the working folder first on ``sys.path``, so a ``pandas.py`` or ``pyomo.py``
lying there would be imported instead of the library (the ``dispatchbench`` console script and
``python -P -m dispatchbench`` do not do this). It is removed here, before the command imports
anything. What this cannot help: a ``dispatchbench.py`` or ``dispatchbench/`` in the working
folder is found by ``python -m`` before this file runs — use the console script or ``-P``.
"""

import os
import sys

if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]  # what `python -m` put there; a PYTHONPATH the user set is left alone

from .cli import main  # noqa: E402 (after the path is cleaned, on purpose)

main()

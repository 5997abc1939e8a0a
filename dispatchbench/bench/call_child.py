"""A function call in a fresh interpreter: ``python -P -m dispatchbench.bench.call_child``.

``reproduce`` trains its models through ``Executor.call_all``, several at once, each in a
process of its own. They start like a cell's child (:mod:`cell_child`: ``subprocess`` with
``-P``, stdout kept for the answer and pointed at stderr for everything else) rather than from a
``multiprocessing`` pool, whose children start as ``python -c`` with the working folder first
on their module path. The call and its result are pickles passed between two processes of this
package — a module-level function of dispatchbench named by reference — exactly what the
process pool this replaces exchanged.
"""

from __future__ import annotations

import os
import pickle
import sys

from dispatchbench.bench.cell_child import claim_stdout


def main() -> None:
    channel = claim_stdout()
    fn, args = pickle.loads(sys.stdin.buffer.read())
    try:
        result = (True, fn(*args))
    except Exception as exc:  # the caller receives it as the call's error
        result = (False, exc)
    try:
        data = pickle.dumps(result)
    except Exception as exc:  # an unpicklable result or exception: say what it was
        data = pickle.dumps((False, RuntimeError(f"the call's result could not be sent back ({exc})")))
    view = memoryview(data)
    while view:
        view = view[os.write(channel, view) :]


if __name__ == "__main__":
    main()

"""Child process that runs NOMAD's suggest/observe for :mod:`olmp.dfo.solvers.mads`.

NOMAD 4.6 aborts the whole process on some internal errors (an uncaught C++ exception), so
the MADS adapter keeps it out of the caller's process. This file is run by path (``python
.../_nomad_worker.py``), so it imports nothing from olmp: only the standard library and
``PyNomad``.

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout (the
original stdout: file descriptor 1 is pointed at stderr first, so that whatever NOMAD
prints cannot corrupt the replies). Requests:

* ``{"op": "seed", "seed": n}`` -> ``{"rng": state}``: NOMAD's generator state for seed n.
* ``{"op": "suggest", "params": [...], "rng": state}`` -> ``{"points": [...], "rng": state}``
* ``{"op": "observe", "params": [...], "points": [...], "outputs": [...], "cache": path}``
  -> ``{"updated": [...]}`` (the parameter lines NOMAD returns).

The process ends at the end of stdin.
"""

from __future__ import annotations

import json
import os
import sys


def _text(lines: list) -> list[str]:
    return [line.decode() if isinstance(line, bytes) else str(line) for line in lines or []]


def serve(reply_fd: int) -> None:
    import PyNomad

    replies = os.fdopen(reply_fd, "w")
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "seed":
            PyNomad.setSeed(int(request["seed"]))
            reply = {"rng": PyNomad.getRNGState()}
        elif op == "suggest":
            PyNomad.setRNGState(request["rng"])
            points = PyNomad.suggest(request["params"])
            reply = {"points": points, "rng": PyNomad.getRNGState()}
        elif op == "observe":
            updated = PyNomad.observe(
                request["params"], request["points"], request["outputs"], request["cache"]
            )
            reply = {"updated": _text(updated)}
        else:
            reply = {"error": f"unknown request {op!r}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # NOMAD's own output goes to stderr, never into the replies
    serve(reply_fd)

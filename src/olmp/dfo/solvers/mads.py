"""Mesh Adaptive Direct Search through NOMAD 4 (``PyNomadBBO``), ask/tell.

PyNomadBBO is an optional extra (LGPL-3.0): ``pip install 'olmp[mads]'``. Its module
``PyNomad`` is imported when a :class:`MADS` is built, never at ``import olmp``.

NOMAD 4.6 offers ask/tell as ``PyNomad.suggest(params)`` / ``PyNomad.observe(params,
points, outputs, cache_file)``: each suggestion is one MADS iteration (search and poll
points together, ``MEGA_SEARCH_POLL``; poll directions ``ORTHO 2N``), built from the
evaluations in a cache file, and ``observe`` writes new evaluations to that file and returns
the updated frame size and barrier threshold. The adapter keeps that state (a cache file in
a private temporary folder, the frame size, the barrier) and needs no thread.

NOMAD runs in a child process (``_nomad_worker.py``, talking JSON over a pipe), because
NOMAD 4.6 aborts the whole process on some internal errors (uncaught C++ exceptions such as
"trial point should be in cache", seen on a plain 2-D sphere once the mesh was fine). When
the child dies, the adapter starts a new one and restarts MADS from the best point; this is
counted in :attr:`MADS.n_crashes`, and five crashes in a row raise ``RuntimeError`` with
NOMAD's last message.

* The first ask returns ``x0`` alone (NOMAD refuses ``X0`` with ``suggest``). After that,
  each NOMAD suggestion (typically ``2 * dim`` to ``3 * dim`` points) is handed out at most
  ``popsize`` rows at a time, so batches vary in size (``variable_batch``); the rows told
  are observed when the whole suggestion has been handed out. Rows not told are dropped.
* ``sigma0`` is the initial frame size (NOMAD's ``INITIAL_FRAME_SIZE``), per coordinate.
* Constraints are native: they become NOMAD ``PB`` outputs (progressive barrier). The first
  tell fixes how many there are. Violations below ``1e-5`` are passed as ``1e-5`` (NOMAD
  aborted on tiny ones; see :data:`MIN_VIOLATION`).
* Integer variables are native (``BB_INPUT_TYPE I``); categorical ones are passed as
  integers too, i.e. as if their choices were ordered.
* After an observe, the frame is NOMAD's, but at most the frame the observed points came
  from (2.5 times it if they improved on the best point): NOMAD's suggest mode handed back
  much larger frames, also after failed iterations, whose suggestions were then empty.
* When NOMAD suggests nothing new (every poll point is already in the cache: a failed
  iteration that ``suggest`` alone cannot record), the adapter first drops the barrier
  threshold NOMAD returned (``H_MAX_0``; with only infeasible points there may be no poll
  centre under it), then halves the frame size as MADS would after a failed iteration.
  When the frame has shrunk below ``1e-9`` of the box (and to 1 for every integer
  variable), MADS restarts from the best point with the initial frame size and an empty
  cache; :attr:`MADS.n_restarts` counts them. If even a fresh start suggests nothing (seen
  in small integer spaces whose only cached point is infeasible), the adapter hands out
  Gaussian points of its own around the best one (step: the initial frame), counted in
  :attr:`MADS.n_fallbacks`, and NOMAD observes them like its own.
* NOMAD's random generator is global to the process; the adapter keeps this solver's state
  and restores the caller's around every call, so runs are reproducible from ``seed``.
* Fitness ``+inf`` (failed evaluations included) is passed as a finite stand-in, ``worst +
  1 + |worst|`` of the finite values told so far, and every fitness and constraint value is
  capped at ``+-1e12`` (:data:`NOMAD_CAP`): NOMAD 4.6 aborted the process on runs told
  ``inf`` or values of 1e19 and more.

Limits: every ``suggest`` re-reads the whole cache file, so the cost per iteration grows
with the evaluations of the run (about 10 ms per evaluation in 10 dimensions here), and
NOMAD 4.6 becomes very slow beyond about 20 variables (in 40 dimensions one iteration took
seconds). The guards above (finite capped values, a barrier threshold above 0, violations of
at least ``1e-5``, restarts before the frame reaches round-off, ``ORTHO 2N``) each avoided an
abort we met. :meth:`MADS.close` (or garbage collection) ends the child process and deletes
the temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from olmp.dfo.solvers.base import Solver, clip_into_box
from olmp.errors import OlmpError

#: The frame size below which (relative to the box width) MADS is restarted.
MIN_RELATIVE_FRAME = 1e-9
#: Largest magnitude passed to NOMAD. NOMAD 4.6 aborted the process (an uncaught "trial
#: point should be in cache") on runs whose failed evaluations were told as ``inf`` or as
#: values of 1e19 and more; with everything capped at 1e12 it did not.
NOMAD_CAP = 1e12
#: Smallest barrier threshold passed to NOMAD (it rejects 0 and values within 1e-13 of 0).
MIN_H_MAX = 1e-10
#: Smallest violation passed to NOMAD; smaller ones are raised to it (so a violated
#: constraint stays violated). NOMAD squares violations into its infeasibility h, and
#: observe aborted the process when that fell within its 1e-13 tolerance of 0.
MIN_VIOLATION = 1e-5
#: Most a frame may grow in one observe (one step of NOMAD's 1-2-5 sizes), and only after a
#: success. NOMAD's observe handed back frames many times larger than the one the points
#: came from, also after failures, and the next suggestion was then often empty (all its
#: points cached).
MAX_FRAME_GROWTH = 2.5
#: NOMAD crashes in a row after which the adapter gives up.
MAX_CRASHES_IN_A_ROW = 5
#: NOMAD's seed is a C int.
_SEED_MODULUS = 2**31 - 1
_WORKER = Path(__file__).with_name("_nomad_worker.py")


class _NomadCrashed(Exception):
    """The NOMAD child process died; the message is the last line it wrote."""


class _NomadProcess:
    """The child process running NOMAD (see ``_nomad_worker.py``), started on demand."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.process is None or self.process.poll() is not None:
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, str(_WORKER)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except OSError:  # the pipe broke: the child is gone
            line = ""
        if not line:
            self.process.wait()
            _close_pipes(self.process)
            self.process = None
            raise _NomadCrashed(self._last_words())
        return json.loads(line)

    def _last_words(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1].strip() if lines else "no message"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        _close_pipes(process)


def _close_pipes(process: subprocess.Popen[str]) -> None:
    """Close the pipes of a finished child (left open, each is a ResourceWarning)."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a broken pipe's buffer cannot be flushed
                pipe.close()


def _clean_up(nomad: _NomadProcess, folder: Path) -> None:
    nomad.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _numbers(values: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in values)


class MADS(Solver):
    """Mesh Adaptive Direct Search (NOMAD 4 through PyNomadBBO) behind ask/tell.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver`. ``popsize`` is the most rows one ask
            returns (default 10); ``sigma0`` the initial frame size.
    """

    name = "mads"
    summary = "Mesh Adaptive Direct Search, NOMAD 4 (PyNomadBBO)"
    supports = "real, int (native; cat as int); batch <= popsize; constraints: native (PB)"
    backend = "PyNomad"
    backend_package = "PyNomadBBO (LGPL-3.0)"
    extra = "mads"
    variable_batch = True
    native_kinds = frozenset({"real", "integer"})
    native_constraints = True

    def _setup(self) -> None:
        # The backend was imported only to fail early: NOMAD runs in a child process.
        self._folder = Path(tempfile.mkdtemp(prefix="olmp-mads-"))
        if re.search(r"\s", str(self._folder)):
            shutil.rmtree(self._folder, ignore_errors=True)
            raise OlmpError(
                f"the temporary folder {str(self._folder)!r} has a space in its path, which "
                "NOMAD cannot read; point TMPDIR at a folder without spaces"
            )
        self._nomad = _NomadProcess(self._folder / "nomad-stderr.txt")
        self._cleanup = weakref.finalize(self, _clean_up, self._nomad, self._folder)
        self._cache = self._folder / "cache.txt"
        self._initial_frame = self._legal_frame(self.sigma0)
        self._frame = self._initial_frame.copy()
        self._used_frame = self._frame.copy()  # the frame of the latest points suggested
        self._best_at_suggest = (math.inf, math.inf)  # (violation, fitness) back then
        self._barrier: str | None = None  # NOMAD's "H_MAX_0 ..." line after an observe
        #: Times MADS was restarted from the best point (see the module docstring).
        self.n_restarts = 0
        #: Points the adapter made up because NOMAD suggested none even after a restart.
        self.n_fallbacks = 0
        #: Times the NOMAD child process died (see the module docstring).
        self.n_crashes = 0
        self._crashed = False
        self._queue: list[np.ndarray] = [self.x0.copy()]  # suggested, not handed out
        self._handed: list[np.ndarray] = []  # handed out by the last ask, not told
        self._told: list[tuple[list[float], list[float]]] = []  # not observed yet
        self._worst_finite = -math.inf
        try:
            seeded = self._nomad.call({"op": "seed", "seed": self.seed % _SEED_MODULUS})
        except _NomadCrashed as crash:
            self.close()
            raise RuntimeError(f"the NOMAD child process did not start: {crash}") from None
        self._rng_state: str = seeded["rng"]

    def close(self) -> None:
        """End the NOMAD child process and delete the temporary folder (its cache file)."""
        self._cleanup()

    # -- calls into NOMAD (in the child process) ----------------------------------------

    def _suggest_points(self) -> list[list[float]]:
        reply = self._nomad.call(
            {"op": "suggest", "params": self._params(), "rng": self._rng_state}
        )
        self._rng_state = reply["rng"]
        return reply["points"]

    def _observe(self, points: list[list[float]], outputs: list[list[float]]) -> None:
        request = {
            "op": "observe",
            "params": self._params(),
            "points": points,
            "outputs": outputs,
            "cache": str(self._cache),
        }
        for text in self._nomad.call(request)["updated"]:
            if text.upper().startswith("INITIAL_FRAME_SIZE"):
                frame = self._parse_frame(text)
                if frame is not None:
                    # MADS's rule, which NOMAD's suggest mode does not keep: the frame the
                    # points came from grows (by at most MAX_FRAME_GROWTH) only when they
                    # improved on the best point.
                    best = (self._best_violation, self._best_f)
                    growth = MAX_FRAME_GROWTH if best < self._best_at_suggest else 1.0
                    self._frame = np.minimum(frame, growth * self._used_frame)
            elif text.upper().startswith("H_MAX_0"):
                self._barrier = self._parse_barrier(text)

    # -- parameters ------------------------------------------------------------------------

    def _legal_frame(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` with integer variables' entries at least 1 (NOMAD requires it)."""
        return np.where(self._integral, np.maximum(np.round(frame), 1.0), frame)

    def _parse_frame(self, line: str) -> np.ndarray | None:
        inside = line[line.find("(") + 1 : line.rfind(")")].split()
        try:
            frame = np.array([float(v) for v in inside])
        except ValueError:
            return None
        ok = frame.shape == (self.dim,) and np.all(np.isfinite(frame) & (frame > 0))
        return frame if ok else None

    @staticmethod
    def _parse_barrier(line: str) -> str | None:
        """The ``H_MAX_0`` line to pass on, or ``None`` (NOMAD's default, ``inf``).

        NOMAD returns values down to 0 but aborts the process when given back 0 or a value
        within its tolerance of 0 ("H_MAX_0 must be positive"), so small values are raised
        to :data:`MIN_H_MAX`.
        """
        parts = line.split()
        try:
            h_max = float(parts[1])
        except (IndexError, ValueError):
            return None
        return f"H_MAX_0 {max(h_max, MIN_H_MAX)!r}" if 0 <= h_max < math.inf else None

    def _params(self) -> list[str]:
        m = self.n_constraints or 0
        types = " ".join("R" if kind == "real" else "I" for kind in self.kinds)
        lines = [
            f"DIMENSION {self.dim}",
            f"LOWER_BOUND ( {_numbers(self.lower)} )",
            f"UPPER_BOUND ( {_numbers(self.upper)} )",
            f"BB_INPUT_TYPE ( {types} )",
            "BB_OUTPUT_TYPE OBJ" + " PB" * m,
            f"CACHE_FILE {self._cache}",
            "MEGA_SEARCH_POLL yes",
            # Not NOMAD's default ORTHO N+1 QUAD, whose quadratic-model direction made
            # suggest abort with constraints ("Array is not defined"). The default reached
            # lower values on smooth functions, at about twice the time per suggestion.
            "DIRECTION_TYPE ORTHO 2N",
            "DISPLAY_DEGREE 0",
            # Set, so that NOMAD does not print that it set it (all-integer problems).
            "MAX_EVAL 1000000000",
            f"INITIAL_FRAME_SIZE ( {_numbers(self._frame)} )",
        ]
        if self._barrier is not None:
            lines.append(self._barrier)
        return lines

    # -- ask / tell ------------------------------------------------------------------------

    def _next_suggestion(self) -> list[np.ndarray]:
        """NOMAD's next points, starting a new child process and MADS run after a crash."""
        in_a_row = 0
        while True:
            try:
                if self._crashed:
                    self._restart()
                    self._crashed = False
                return self._suggest_or_restart()
            except _NomadCrashed as crash:
                self.n_crashes += 1
                in_a_row += 1
                self._told = []  # lost with the child (the best point is kept here)
                self._crashed = True
                if in_a_row >= MAX_CRASHES_IN_A_ROW:
                    raise RuntimeError(
                        f"NOMAD aborted {in_a_row} times in a row; its last message: {crash}"
                    ) from None

    def _suggest_or_restart(self) -> list[np.ndarray]:
        """Observe what was told, then get NOMAD's next points (shrinking or restarting)."""
        if self._told:
            points, outputs = zip(*self._told, strict=True)
            self._told = []
            self._observe(list(points), list(outputs))
        restarts = 0
        while True:
            # Checked before suggesting: NOMAD aborts when its points collapse onto each
            # other in floating point (frames around 1e-14 of the box).
            small = self._frame < MIN_RELATIVE_FRAME * (self.upper - self.lower)
            if np.all(np.where(self._integral, self._frame <= 1.0, small)):
                if restarts == 2:  # a fresh start had nothing to suggest either
                    return self._fallback_points()
                restarts += 1
                self._restart()
            points = self._suggest_points()
            if points:
                self._used_frame = self._frame.copy()
                self._best_at_suggest = (self._best_violation, self._best_f)
                return [np.asarray(p, dtype=float) for p in points]
            if self._barrier is not None:
                # With only infeasible points cached, NOMAD can have no poll centre under
                # the barrier it returned; try again with the barrier at its default.
                self._barrier = None
            else:
                self._frame = self._legal_frame(0.5 * self._frame)

    def _fallback_points(self) -> list[np.ndarray]:
        """Points of our own around the best one, for when NOMAD suggests none at all."""
        assert self._best_x is not None
        count = max(1, min(self.popsize, 2 * self.dim))
        self.n_fallbacks += count
        steps = self._initial_frame * self.rng.standard_normal((count, self.dim))
        points = self._round(clip_into_box(self._best_x + steps, self.lower, self.upper))
        return list(points)

    def _restart(self) -> None:
        """Start MADS afresh from the best point: empty cache, initial frame size."""
        self.n_restarts += 1
        self._cache.unlink(missing_ok=True)
        self._frame = self._initial_frame.copy()
        self._used_frame = self._frame.copy()
        self._barrier = None
        assert self._best_x is not None  # a restart follows at least one observe
        outputs = [self._stand_in(self._best_f)]
        if self._best_constraints is not None:
            outputs += self._nomad_constraints(self._best_constraints)
        self._observe([self._best_x.tolist()], [outputs])

    def _stand_in(self, value: float) -> float:
        """``value`` as NOMAD can take it: finite and within ``NOMAD_CAP``."""
        if not math.isfinite(value):
            worst = self._worst_finite
            value = worst + 1.0 + abs(worst) if math.isfinite(worst) else NOMAD_CAP
        return float(np.clip(value, -NOMAD_CAP, NOMAD_CAP))

    @staticmethod
    def _nomad_constraints(values: np.ndarray) -> list[float]:
        """Constraint values as NOMAD can take them (see :data:`MIN_VIOLATION`)."""
        violated = (values > 0) & (values < MIN_VIOLATION)
        values = np.where(violated, MIN_VIOLATION, values)
        return np.clip(values, -NOMAD_CAP, NOMAD_CAP).tolist()

    def _ask(self) -> np.ndarray:
        if not self._queue:
            nothing_observed = not self._told and not self._cache.exists()
            self._queue = [self.x0.copy()] if nothing_observed else self._next_suggestion()
        self._handed = self._queue[: self.popsize]
        self._queue = self._queue[self.popsize :]
        return np.array(self._handed)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        self._tell_constrained(candidates, fitness, None)

    def _tell_constrained(
        self, candidates: np.ndarray, fitness: np.ndarray, constraints: np.ndarray | None
    ) -> None:
        finite = fitness[np.isfinite(fitness)]
        if finite.size:
            self._worst_finite = max(self._worst_finite, float(finite.max()))
        for i, value in enumerate(fitness):
            outputs = [self._stand_in(float(value))]
            if constraints is not None:
                outputs += self._nomad_constraints(constraints[i])
            # NOMAD's own point, which the cache knows, not the (clipped) row.
            self._told.append((self._handed[i].tolist(), outputs))
        self._handed = []

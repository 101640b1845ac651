"""BOBYQA (Powell 2009) through Py-BOBYQA, turned into ask/tell with a worker thread.

Py-BOBYQA is licensed **GPL-3.0-or-later**, unlike olmp (Apache-2.0). It is therefore only
an optional extra, ``pip install 'olmp[bobyqa]'``, imported when the user builds a
:class:`BOBYQA`, never at ``import olmp``; whoever installs it accepts its licence.

Py-BOBYQA only offers a callback loop, ``pybobyqa.solve(objfun, x0, bounds=..., ...)``;
:mod:`olmp.dfo.solvers.threaded` turns it into ask/tell (one point per ask, stand-ins for
failed evaluations, restarts from the best point). Besides:

* Constraints are folded into fitness as a penalty (see :mod:`olmp.dfo.solvers.base`);
  integer and categorical variables are only rounded, which makes the function piecewise
  constant for a model-based method.
* Py-BOBYQA works in the box scaled to the unit cube (``scaling_within_bounds``) with
  coordinate initial directions, so runs are deterministic: ``seed`` changes nothing. The
  initial trust-region radius ``rhobeg`` is the mean of ``sigma0 / (upper - lower)``,
  capped at 0.49; Py-BOBYQA moves ``x0`` inwards when it is closer than ``rhobeg`` to a
  bound. Each restart doubles ``rhobeg`` (up to 0.25).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option
from olmp.dfo.solvers.checks import real
from olmp.dfo.solvers.threaded import MODEL_OPTION, CallbackSolver, interpolation_points
from olmp.errors import OlmpError

#: Largest initial trust-region radius in the unit cube (Py-BOBYQA needs < 0.5).
MAX_RHOBEG = 0.49
#: Largest radius a restart grows to.
MAX_RESTART_RHOBEG = 0.25


class BOBYQA(CallbackSolver):
    """BOBYQA (Py-BOBYQA, GPL-3.0+) behind ask/tell through a worker thread.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver`; the population size is always 1 and
            ``seed`` is unused (BOBYQA is deterministic here).
        max_evaluations: ``maxfun`` of each Py-BOBYQA run (see the module docstring).
        rhoend: Trust-region radius (in the unit cube) at which a run ends; default 1e-8.
    """

    name = "bobyqa"
    summary = "BOBYQA, bound-constrained quadratic-model trust region (Py-BOBYQA)"
    supports = "real (int/cat rounded); 1 per ask (thread); constraints: penalty; GPL"
    backend = "pybobyqa"
    backend_package = "Py-BOBYQA (GPL-3.0-or-later)"
    extra = "bobyqa"
    options: ClassVar[dict[str, Option]] = {
        **CallbackSolver.options,
        "rhoend": Option(1e-8, real(0.0, open_low=True), "final trust-region radius"),
        "model": MODEL_OPTION,
    }

    def _setup(self) -> None:
        super()._setup()
        self.rhobeg = float(min(np.mean(self.sigma0 / (self.upper - self.lower)), MAX_RHOBEG))
        if not self.rhoend < self.rhobeg:
            raise OlmpError(
                f"rhoend must be a number in (0, rhobeg={self.rhobeg:g}), got {self.rhoend!r}"
            )

    def _run_options(self, restart: int) -> dict[str, Any]:
        rhobeg = self.rhobeg
        if restart:
            rhobeg = max(min(self.rhobeg * 2.0**restart, MAX_RESTART_RHOBEG), self.rhobeg)
        npt = interpolation_points(self.model, self.dim)
        return {
            "bounds": (self.lower.copy(), self.upper.copy()),
            "npt": npt,
            "rhobeg": rhobeg,
            "rhoend": min(self.rhoend, 0.5 * rhobeg),
            # Never below npt + 1 (Py-BOBYQA warns); the caller stops asking when it is done.
            "maxfun": max(self.budget(), npt + 1),
            "scaling_within_bounds": True,
            "do_logging": False,
            "print_progress": False,
        }

    def _solve_function(self) -> Any:
        solve = self._backend.solve
        return lambda objective, x0, options: solve(objective, x0, **options)

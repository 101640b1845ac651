"""The derivative-free engine: spaces, problems, studies, executors and solvers.

>>> from olmp.dfo import Categorical, Integer, Problem, Real, Space, Study
>>> space = Space([Real("lr", 1e-3, 1.0, log=True), Integer("n", 1, 4),
...                Categorical("kind", ["a", "b"])])
>>> def objective(p):
...     return (p["lr"] - 0.1) ** 2 + (p["n"] - 3) ** 2 + (p["kind"] != "b")
>>> study = Study(Problem(space, objective), "random", seed=0, max_evaluations=200)
>>> best = study.optimize()
>>> best.params["n"], best.params["kind"]
(3, 'b')

* :mod:`olmp.dfo.space`: named real / log-real / integer / categorical / conditional
  variables, sampling, validation, JSON, and the unit-box transform box solvers see.
* :mod:`olmp.dfo.problem`: the objective, constraints (feasible when ``<= 0``),
  fidelities with their relative cost, failures recorded with their message.
* :mod:`olmp.dfo.study`: ask / tell by trial id in any order, budgets, stop on a target,
  callbacks, atomic record, exact resume, warm start; :mod:`olmp.dfo.record` reads its
  file back and checks it belongs to the study resuming it.
* :mod:`olmp.dfo.executors`: in-process, or a pool of worker processes (``n_jobs``).
* :mod:`olmp.dfo.solvers`: the solvers, one registry, :func:`register_solver`;
  :mod:`olmp.dfo.sampler` runs them on a space.
"""

from olmp.dfo.executors import Executor, InProcess, ProcessPool
from olmp.dfo.problem import Problem, Result
from olmp.dfo.sampler import Sampler
from olmp.dfo.solvers import SOLVERS, Option, Solver, register_solver
from olmp.dfo.space import Categorical, Integer, Real, Space
from olmp.dfo.study import Study
from olmp.dfo.trial import Trial

__all__ = [
    "SOLVERS",
    "Categorical",
    "Executor",
    "InProcess",
    "Integer",
    "Option",
    "Problem",
    "ProcessPool",
    "Real",
    "Result",
    "Sampler",
    "Solver",
    "Space",
    "Study",
    "Trial",
    "register_solver",
]

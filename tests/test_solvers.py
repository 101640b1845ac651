"""Tests of the derivative-free solvers (olmp.solvers): interface, bounds, determinism,
budget handling, input validation, NCS mechanics, and NCS against the random-search baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from olmp.errors import OlmpError
from olmp.solvers import SOLVERS, Solver, make_solver
from olmp.solvers.cmaes import CMAES
from olmp.solvers.ncs import NCS, normalised_diversity, normalised_fitness
from olmp.solvers.random_search import RandomSearch

DIM = 10
NAMES = sorted(SOLVERS)

# A box of unequal widths with an off-centre optimum, so that per-coordinate steps and the
# default x0 (the centre) are both exercised.
_rng = np.random.default_rng(123)
LOWER = np.full(DIM, -1.0)
UPPER = np.linspace(1.0, 3.0, DIM)
OPTIMUM = LOWER + (UPPER - LOWER) * _rng.uniform(0.15, 0.45, DIM)
ROTATION, _ = np.linalg.qr(_rng.standard_normal((DIM, DIM)))
AXIS_WEIGHTS = 10.0 ** (3.0 * np.arange(DIM) / (DIM - 1))  # condition number 1e3


def sphere(x: np.ndarray, optimum: np.ndarray = OPTIMUM) -> np.ndarray:
    return np.sum((x - optimum) ** 2, axis=1)


def ellipsoid(x: np.ndarray, optimum: np.ndarray = OPTIMUM) -> np.ndarray:
    """Rotated ellipsoid, condition number 1e3."""
    z = (x - optimum) @ ROTATION.T
    return (z * z) @ AXIS_WEIGHTS


def rastrigin(x: np.ndarray, optimum: np.ndarray = OPTIMUM) -> np.ndarray:
    z = 2.0 * (x - optimum)  # about 2-4 local minima per coordinate across the box
    return 10.0 * DIM + np.sum(z * z - 10.0 * np.cos(2.0 * np.pi * z), axis=1)


FUNCTIONS = [sphere, ellipsoid, rastrigin]


class Recorder:
    """Wraps a batch objective and keeps every batch it was asked to evaluate."""

    def __init__(self, f):
        self.f = f
        self.batches: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x.copy())
        return self.f(x)

    @property
    def rows(self) -> np.ndarray:
        return np.vstack(self.batches)


# -- registry -----------------------------------------------------------------------------


def test_registry_names_match_classes():
    assert dict(SOLVERS) == {"ncs": NCS, "cmaes": CMAES, "random": RandomSearch}
    for name, cls in SOLVERS.items():
        assert cls.name == name
        solver = make_solver(name, LOWER, UPPER, seed=3)
        assert isinstance(solver, cls) and isinstance(solver, Solver)
        assert solver.seed == 3


def test_unknown_solver_lists_the_choices():
    with pytest.raises(OlmpError, match=r"unknown solver 'nsc'; choose one of: cmaes, ncs, random"):
        make_solver("nsc", LOWER, UPPER)


# -- bounds -------------------------------------------------------------------------------

# A tight box whose sphere optimum lies beyond the upper face in even coordinates, exactly
# on the lower face in coordinate 1, and inside elsewhere.
TIGHT_LOWER = np.zeros(DIM)
TIGHT_UPPER = np.where(np.arange(DIM) % 2 == 0, 0.2, 0.5)
TIGHT_OPTIMUM = np.where(np.arange(DIM) % 2 == 0, 0.5, 0.1)
TIGHT_OPTIMUM[1] = 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_candidates_always_inside_the_bounds(name, function):
    objective = Recorder(lambda x: function(x, TIGHT_OPTIMUM))
    # A large sigma0 makes most raw samples leave the box.
    solver = make_solver(name, TIGHT_LOWER, TIGHT_UPPER, sigma0=0.5, seed=1)
    solver.minimize(objective, 400)
    rows = objective.rows
    assert rows.shape == (400, DIM)
    assert np.all(rows >= TIGHT_LOWER) and np.all(rows <= TIGHT_UPPER)
    # The bounds were really tested: candidates got onto (or within 1e-3 of) the upper face.
    assert np.min(TIGHT_UPPER[::2] - rows[:, ::2]) < 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_boundary_optimum_is_reached(name):
    solver = make_solver(name, TIGHT_LOWER, TIGHT_UPPER, seed=0)
    best_x, best_f = solver.minimize(lambda x: sphere(x, TIGHT_OPTIMUM), 1500)
    constrained_optimum = np.clip(TIGHT_OPTIMUM, TIGHT_LOWER, TIGHT_UPPER)
    floor = sphere(constrained_optimum[None], TIGHT_OPTIMUM)[0]
    x0_value = sphere(solver.x0[None], TIGHT_OPTIMUM)[0]
    assert best_f - floor < 0.1 * (x0_value - floor)
    assert np.all(np.abs(best_x[::2] - 0.2) < 0.03)  # pressed against the upper face


# -- determinism --------------------------------------------------------------------------


def _asked_sequence(name: str, seed: int, rounds: int = 4) -> list[np.ndarray]:
    solver = make_solver(name, LOWER, UPPER, seed=seed)
    asked = []
    for _ in range(rounds):
        x = solver.ask()
        asked.append(x)
        solver.tell(x, rastrigin(x))
    return asked


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sequence_other_seed_other_sequence(name):
    first = _asked_sequence(name, seed=5)
    again = _asked_sequence(name, seed=5)
    other = _asked_sequence(name, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[-1], other[-1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("name", NAMES)
def test_global_numpy_random_state_is_left_alone(name):
    np.random.seed(42)
    before = np.random.get_state()[1].copy()
    solver = make_solver(name, LOWER, UPPER, seed=0)
    solver.minimize(sphere, 60)
    assert np.array_equal(np.random.get_state()[1], before)
    # ... and unrelated use of the global generator does not change the solver's results.
    np.random.seed(7)
    np.random.standard_normal(100)
    again = make_solver(name, LOWER, UPPER, seed=0)
    assert again.minimize(sphere, 60)[1] == solver.best_f


# -- optimisation quality ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_clear_improvement_on_the_sphere(name):
    solver = make_solver(name, LOWER, UPPER, seed=0)
    start = sphere(solver.x0[None])[0]
    _, best_f = solver.minimize(sphere, 1000)
    assert best_f < 0.25 * start


def test_cmaes_converges_on_the_sphere():
    # CMA-ES adapts its step freely, so it must get much closer than the fixed-step searches.
    solver = make_solver("cmaes", LOWER, UPPER, seed=0)
    assert solver.minimize(sphere, 1000)[1] < 1e-3 * sphere(solver.x0[None])[0]


# Medians measured when these tests were written (budget 20000, seeds 0-4), for the report:
# sphere   NCS 0.015  random 0.25;  ellipsoid NCS 1.5  random 14.7;
# rastrigin NCS 23    random 40.
COMPARISON_BUDGET = 20_000
COMPARISON_SEEDS = range(5)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_ncs_beats_random_search_at_equal_budget(function):
    # NCS adapts its steps by at most a factor r = 0.99 per epoch of N = 10 generations, so
    # it needs a budget of many epochs (here 200) before it can beat a fixed-step search
    # that spends every sample around a single incumbent.
    def median_best(name: str) -> float:
        return float(
            np.median(
                [
                    make_solver(name, LOWER, UPPER, seed=s).minimize(function, COMPARISON_BUDGET)[1]
                    for s in COMPARISON_SEEDS
                ]
            )
        )

    ncs, random = median_best("ncs"), median_best("random")
    assert ncs < 0.75 * random, (ncs, random)


# -- NCS mechanics -------------------------------------------------------------------------


def test_ncs_really_replaces_parents():
    solver = NCS(LOWER, UPPER, seed=0)
    start = solver.parents
    solver.minimize(sphere, 2000)
    children_told = 2000 - solver.popsize
    assert solver.n_replacements > 0.05 * children_told
    moved = np.any(solver.parents != start, axis=1)
    assert moved.all()
    # Replacement followed fitness: the parents got better, not just different.
    assert np.median(sphere(solver.parents)) < 0.5 * np.median(sphere(start))


def test_ncs_accepts_a_child_that_is_the_new_best():
    solver = NCS([0.0, 0.0], [1.0, 1.0], seed=0, popsize=4)
    x = solver.ask()
    solver.tell(x, np.array([5.0, 6.0, 7.0, 8.0]))
    children = solver.ask()
    # Child 2 is the best ever (F' = 0); the others are far worse than their parents.
    solver.tell(children, np.array([100.0, 100.0, 1.0, 100.0]))
    assert np.array_equal(solver.parents[2], children[2])
    assert solver.n_replacements >= 1


def test_ncs_one_fifth_rule_grows_steps_when_children_keep_winning():
    solver = NCS(LOWER, UPPER, seed=0, epoch=3)
    x = solver.ask()
    solver.tell(x, np.zeros(len(x)))
    for generation in range(1, 4):
        x = solver.ask()
        # Every child is the new best (F' = 0), so every child replaces its parent.
        solver.tell(x, np.full(len(x), -(10.0**generation)))
    assert solver.n_replacements == 3 * solver.popsize
    np.testing.assert_allclose(solver.sigmas, np.tile(solver.sigma0 / 0.99, (solver.popsize, 1)))


def test_ncs_one_fifth_rule_shrinks_steps_and_failed_children_never_replace():
    solver = NCS(LOWER, UPPER, seed=0)  # epoch defaults to popsize = 10
    x = solver.ask()
    solver.tell(x, sphere(x))
    start = solver.parents
    for _ in range(solver.epoch):
        x = solver.ask()
        solver.tell(x, np.full(len(x), np.nan))  # failed evaluations
    assert solver.n_replacements == 0
    assert np.array_equal(solver.parents, start)
    np.testing.assert_allclose(solver.sigmas, np.tile(solver.sigma0 * 0.99, (solver.popsize, 1)))


def test_ncs_lambda_sigma_is_annealed_over_the_run():
    solver = NCS(LOWER, UPPER, max_evaluations=40)
    assert solver.current_lambda_sigma() == pytest.approx(0.1)
    for _ in range(2):
        x = solver.ask()
        solver.tell(x, sphere(x))
    assert solver.current_lambda_sigma() == pytest.approx(0.05)
    # Without max_evaluations, minimize's budget is the run length ...
    planned = NCS(LOWER, UPPER)
    planned.minimize(sphere, 30)
    assert planned.current_lambda_sigma() == pytest.approx(0.0)
    # ... and plain ask/tell does not anneal.
    unplanned = NCS(LOWER, UPPER)
    x = unplanned.ask()
    unplanned.tell(x, sphere(x))
    assert unplanned.current_lambda_sigma() == pytest.approx(0.1)


def test_ncs_normalisation_edge_cases():
    f = normalised_fitness(
        np.array([3.0, 1.0, 1.0, np.inf, 2.0, np.inf]),
        np.array([1.0, 3.0, 1.0, 2.0, np.inf, np.inf]),
        1.0,
    )
    np.testing.assert_allclose(f, [0.0, 1.0, 0.5, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(normalised_fitness(np.array([4.0]), np.array([2.0]), 0.0), [1 / 3])
    c = normalised_diversity(np.array([0.0, 1.0, 0.0, 3.0]), np.array([0.0, 1.0, 2.0, 1.0]))
    np.testing.assert_allclose(c, [0.5, 0.5, 1.0, 0.25])


# -- budget and partial populations --------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("budget", [1, 7, 37])
def test_minimize_spends_exactly_its_budget(name, budget):
    objective = Recorder(sphere)
    solver = make_solver(name, LOWER, UPPER, seed=0)
    best_x, best_f = solver.minimize(objective, budget)
    assert solver.popsize == 10  # also pycma's default in 10 dimensions
    assert len(objective.rows) == budget == solver.n_evaluations
    assert len(objective.batches) == math.ceil(budget / solver.popsize)
    assert best_f == pytest.approx(float(sphere(objective.rows).min()))
    assert np.array_equal(best_x, objective.rows[np.argmin(sphere(objective.rows))])


def test_cmaes_learns_only_from_complete_populations():
    solver = CMAES(LOWER, UPPER, seed=0)
    solver.minimize(sphere, 37)
    assert solver.n_updates == 3
    x = solver.ask()  # the solver keeps working after a partial tell
    solver.tell(x, sphere(x))
    assert solver.n_updates == 4


def test_cmaes_initial_steps_follow_each_coordinate_width():
    solver = CMAES([0.0, 0.0], [1.0, 100.0], popsize=200, seed=0)
    spread = solver.ask().std(axis=0)
    assert 50 < spread[1] / spread[0] < 200


def test_minimize_can_be_called_again_and_keeps_the_best():
    solver = make_solver("random", LOWER, UPPER, seed=0)
    _, first = solver.minimize(sphere, 30)
    _, second = solver.minimize(sphere, 30)
    assert solver.n_evaluations == 60
    assert second <= first


# -- fitness values that are not ordinary numbers -------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_fitness_count_as_worst(name):
    solver = make_solver(name, LOWER, UPPER, seed=0)
    finite_told = []
    for _ in range(3):
        x = solver.ask()
        f = sphere(x)
        f[::2] = np.nan
        f[1::4] = np.inf
        solver.tell(x, f)
        finite_told.extend(f[np.isfinite(f)])
    assert solver.best_f == min(finite_told)
    assert solver.n_evaluations == 30


def test_all_failed_evaluations_leave_best_f_infinite():
    solver = make_solver("ncs", LOWER, UPPER)
    x = solver.ask()
    solver.tell(x, np.full(len(x), np.nan))
    assert solver.best_f == math.inf
    assert solver.best_x is not None and solver.best_x.shape == (DIM,)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": [0.0, 0.0], "upper": [1.0]}, r"same length, got 2 and 1"),
        ({"lower": [0.0, 1.0], "upper": [1.0, 1.0]}, r"coordinate 1 has lower=1\.0 >= upper=1\.0"),
        ({"upper": [1.0, math.inf]}, r"upper must be finite; upper\[1\] is inf"),
        ({"lower": [[0.0, 0.0]]}, r"lower must be a non-empty 1-D sequence"),
        ({"lower": ["a", "b"]}, r"lower must be a sequence of numbers, got \['a', 'b'\]"),
        ({"x0": [0.5, 2.0]}, r"x0\[1\]=2\.0 is outside \[0\.0, 1\.0\]"),
        ({"x0": [0.5]}, r"x0 must have 2 values"),
        ({"sigma0": -1.0}, r"sigma0\[0\] is -1\.0"),
        ({"sigma0": [0.1, 0.0]}, r"sigma0\[1\] is 0\.0"),
        ({"sigma0": [0.1, 0.1, 0.1]}, r"sigma0 must be a positive number or 2 positive numbers"),
        ({"popsize": 0}, r"popsize of RandomSearch must be an integer >= 1, got 0"),
        ({"popsize": 2.5}, r"popsize of RandomSearch must be an integer >= 1, got 2\.5"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_constructor_arguments_name_the_bad_value(kwargs, message):
    arguments = {"lower": [0.0, 0.0], "upper": [1.0, 1.0], **kwargs}
    lower, upper = arguments.pop("lower"), arguments.pop("upper")
    with pytest.raises(OlmpError, match=message):
        RandomSearch(lower, upper, **arguments)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (NCS, {"popsize": 1}, r"popsize of NCS must be an integer >= 2, got 1"),
        (CMAES, {"popsize": 1}, r"popsize of CMAES must be an integer >= 2, got 1"),
        (NCS, {"r": 1.5}, r"r must be a number in \(0\.0, 1\.0\], got 1\.5"),
        (NCS, {"epoch": 0}, r"epoch must be an integer >= 1, got 0"),
        (NCS, {"max_evaluations": 0}, r"max_evaluations must be an integer >= 1, got 0"),
        (NCS, {"lambda_sigma": -0.1}, r"lambda_sigma must be a number in \[0\.0, inf\), got -0\.1"),
    ],
)
def test_bad_solver_options_name_the_bad_value(cls, kwargs, message):
    with pytest.raises(OlmpError, match=message):
        cls([0.0, 0.0], [1.0, 1.0], **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_tells_are_rejected(name):
    solver = make_solver(name, LOWER, UPPER, seed=0)
    with pytest.raises(OlmpError, match=r"tell\(\) needs a population from ask\(\) first"):
        solver.tell(np.zeros((1, DIM)), [0.0])
    x = solver.ask()
    with pytest.raises(OlmpError, match=r"fitness must have shape \(10,\).*got shape \(9,\)"):
        solver.tell(x, sphere(x)[:9])
    with pytest.raises(
        OlmpError, match=r"candidates must have shape \(k, 10\).*got shape \(10, 9\)"
    ):
        solver.tell(x[:, :9], sphere(x))
    with pytest.raises(OlmpError, match=r"the 10 rows given differ"):
        solver.tell(x[::-1], sphere(x))
    with pytest.raises(OlmpError, match=r"fitness\[3\] is -inf"):
        solver.tell(x, np.where(np.arange(10) == 3, -np.inf, 1.0))
    with pytest.raises(OlmpError, match=r"fitness must be 10 numbers"):
        solver.tell(x, ["bad"] * 10)
    assert solver.n_evaluations == 0  # nothing was recorded from the rejected tells
    solver.tell(x, sphere(x))  # the population can still be told properly
    assert solver.n_evaluations == 10


def test_minimize_rejects_bad_budget_and_bad_objective():
    solver = make_solver("ncs", LOWER, UPPER)
    with pytest.raises(OlmpError, match=r"budget must be an integer >= 1, got 0"):
        solver.minimize(sphere, 0)
    with pytest.raises(OlmpError, match=r"fitness must have shape \(10,\).*got shape \(10, 1\)"):
        solver.minimize(lambda x: sphere(x)[:, None], 20)


def test_ncs_reoffers_start_points_that_were_not_told():
    solver = NCS(LOWER, UPPER, seed=0)
    first = solver.ask()
    solver.tell(first[:7], sphere(first[:7]))
    second = solver.ask()
    # Searches 7-9 still need their start point evaluated; the others made children.
    assert np.array_equal(second[7:], first[7:])
    assert not np.any(np.all(second[:7] == first[:7], axis=1))
    solver.tell(second, sphere(second))
    assert solver.generation == 1 and solver.n_evaluations == 17

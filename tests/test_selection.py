"""The result's selection (olmp.compression.selection): val accuracy smoothed over a run."""

from __future__ import annotations

import numpy as np
import pytest

from olmp.compression.selection import Candidate, fitted_accuracies, select


def test_a_lucky_small_network_is_pooled_with_its_unlucky_neighbours():
    # The point rule would keep the 1 % network (its own score clears 0.96); the fit
    # pools it with the two larger networks that lost a point, and the 4 % one stands.
    run = [
        Candidate(1.00, 0.960),
        Candidate(0.04, 0.962),
        Candidate(0.02, 0.950),
        Candidate(0.015, 0.951),
        Candidate(0.01, 0.961),
    ]
    fit = fitted_accuracies(run)
    assert fit[4] == pytest.approx((0.950 + 0.951 + 0.961) / 3)
    assert select(run, 0.96) == 1


def test_accuracies_that_fall_with_size_are_their_own_fit_and_the_point_rule_holds():
    run = [Candidate(s, a) for s, a in [(1.0, 0.97), (0.1, 0.968), (0.03, 0.962), (0.01, 0.95)]]
    np.testing.assert_allclose(fitted_accuracies(run), [c.val_accuracy for c in run])
    assert select(run, 0.962) == 2
    assert select(run, 0.99) is None


def test_one_size_shares_a_fit_and_the_best_scored_of_it_is_chosen():
    run = [Candidate(1.0, 0.965), Candidate(0.05, 0.955), Candidate(0.05, 0.967)]
    fit = fitted_accuracies(run)
    assert fit[1] == fit[2] == pytest.approx(0.961)
    assert select(run, 0.96) == 2


def test_the_chosen_network_clears_the_threshold_itself_and_is_eligible():
    # The 2 % network's fit is pulled up by the lucky 1 % one, but its own score is low;
    # the 1 % network is the smallest but breaks the task's constraints.
    run = [
        Candidate(1.0, 0.96),
        Candidate(0.05, 0.962),
        Candidate(0.02, 0.955),
        Candidate(0.01, 0.975, eligible=False),
    ]
    assert fitted_accuracies(run)[2] >= 0.96
    assert select(run, 0.96) == 1
    assert fitted_accuracies([]).size == 0 and select([], 0.5) is None

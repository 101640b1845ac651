"""The result's selection (olmp.compression.selection): val accuracy smoothed over
networks of about the same size."""

from __future__ import annotations

import numpy as np
import pytest

from olmp.compression.selection import WINDOW, Candidate, select, smoothed_accuracies


def test_a_lucky_small_network_is_pooled_with_its_unlucky_neighbours():
    # The point rule would keep the 1 % network (its own score clears 0.96); the window
    # pools it with the two networks of about its size that lost a point, and the 4 %
    # network, far from them, stands on its own.
    run = [
        Candidate(1.00, 0.960),
        Candidate(0.04, 0.962),
        Candidate(0.0115, 0.950),
        Candidate(0.011, 0.951),
        Candidate(0.01, 0.961),
    ]
    smooth = smoothed_accuracies(run)
    assert smooth[4] == pytest.approx((0.950 + 0.951 + 0.961) / 3)
    assert smooth[1] == pytest.approx(0.962)
    assert select(run, 0.96) == 1


def test_networks_far_apart_in_size_are_their_own_estimate_and_the_point_rule_holds():
    run = [Candidate(s, a) for s, a in [(1.0, 0.97), (0.1, 0.968), (0.03, 0.962), (0.01, 0.95)]]
    np.testing.assert_allclose(smoothed_accuracies(run), [c.val_accuracy for c in run])
    assert select(run, 0.962) == 2
    assert select(run, 0.99) is None


def test_the_window_is_a_factor_of_size_either_way():
    inside, outside = 0.01 * WINDOW * 0.999, 0.01 * WINDOW * 1.001
    run = [Candidate(0.01, 0.95), Candidate(inside, 0.97), Candidate(outside, 0.99)]
    smooth = smoothed_accuracies(run)
    assert smooth[0] == pytest.approx(0.96)
    assert smooth[2] == pytest.approx((0.97 + 0.99) / 2)  # 0.01 is beyond its window


def test_one_size_is_repeated_measurements_and_the_best_scored_of_it_is_chosen():
    run = [Candidate(1.0, 0.965), Candidate(0.05, 0.955), Candidate(0.05, 0.967)]
    smooth = smoothed_accuracies(run)
    assert smooth[1] == smooth[2] == pytest.approx(0.961)
    assert select(run, 0.96) == 2
    assert select(run, 0.962) == 0  # only the reference holds it


def test_the_chosen_network_clears_the_threshold_itself_and_is_eligible():
    # The 2 % network's mean is pulled up by a lucky neighbour, but its own score is low;
    # the lucky one is the smallest but breaks the task's constraints.
    run = [
        Candidate(1.0, 0.96),
        Candidate(0.05, 0.962),
        Candidate(0.02, 0.955),
        Candidate(0.019, 0.975, eligible=False),
    ]
    assert smoothed_accuracies(run)[2] >= 0.96
    assert select(run, 0.96) == 1
    assert smoothed_accuracies([]).size == 0 and select([], 0.5) is None

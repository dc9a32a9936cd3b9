"""The benches' interval for a median of per-round ratios: what lets a report say "not slower" or not."""

import math

import pytest

from bench.driver import median_interval, ratio_summary


def test_nine_rounds_drop_the_outer_value_on_each_side():
    # Binomial(9, 1/2): P(X <= 1) = 10/512 <= 2.5%, P(X <= 2) = 46/512 > 2.5%, so the 2nd and 8th values.
    low, high, coverage = median_interval([0.82, 1.09, 0.95, 0.99, 1.01, 0.90, 1.03, 0.97, 1.05])
    assert (low, high) == (0.90, 1.05)
    assert coverage == pytest.approx(1 - 2 * 10 / 512)


def test_few_rounds_give_the_extremes_and_say_their_lower_coverage():
    low, high, coverage = median_interval([1.2, 0.8, 1.0, 0.9, 1.1])
    assert (low, high) == (0.8, 1.2)
    assert coverage == pytest.approx(1 - 2 / 32)


def test_the_interval_covers_the_median_as_often_as_it_claims():
    # 25 rounds: the 8th and 18th values; the exact binomial coverage is at least 95%.
    n = 25
    low, high, coverage = median_interval([float(i) for i in range(n)])
    k = int(low) + 1
    assert (k, int(high) + 1) == (8, 18)
    assert coverage == pytest.approx(1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n)
    assert coverage >= 0.95


def test_summary_names_median_interval_and_rounds():
    assert ratio_summary([1.0, 1.1, 0.9]) == "median 1.00x, 75% interval 0.90x-1.10x over 3 round(s)"


def test_no_values_is_an_error():
    with pytest.raises(ValueError):
        median_interval([])

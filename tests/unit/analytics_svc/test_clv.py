"""BG/NBD + Gamma-Gamma: validation against published CDNOW results, plus properties."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from analytics_svc import clv
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import hyp2f1

# Published estimates, Fader, Hardie & Lee (2005), Marketing Science 24(2), CDNOW sample
# of 2,357 customers, 39-week calibration period, time in weeks.
PUBLISHED_BGNBD = clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_BGNBD_LL = -9582.4
# Fader, Hardie & Lee (2005) "RFM and CLV" (JMR) / Fader & Hardie (2013) "The Gamma-Gamma
# Model of Monetary Value": 946 repeat customers of the same sample. lifetimes' docs quote
# p=6.25, q=3.74, v=15.45; the LL -4055.9177 is the value CLVTools asserts for these
# published estimates (tests/testthat/test_correctness_gg.R).
PUBLISHED_GG = clv.GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
PUBLISHED_GG_LL = -4055.9177


def _cdnow_dir() -> Path:
    # lifetimes is a dev dependency for its data files only; it is never imported.
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    rfm = np.genfromtxt(_cdnow_dir() / "cdnow_customers_summary.csv", delimiter=",", names=True)
    money = np.genfromtxt(
        _cdnow_dir() / "cdnow_customers_summary_with_transactions.csv",
        delimiter=",",
        names=True,
    )
    assert rfm.size == 2357
    np.testing.assert_array_equal(rfm["frequency"], money["x"])
    return {"x": rfm["frequency"], "t_x": rfm["recency"], "T": rfm["T"], "m": money["zbar"]}


@pytest.fixture(scope="module")
def bgnbd_fit(cdnow: dict[str, np.ndarray]) -> clv.BgNbdFit:
    return clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def gg_fit(cdnow: dict[str, np.ndarray]) -> clv.GammaGammaFit:
    repeat = cdnow["x"] > 0
    return clv.fit_gamma_gamma(cdnow["x"][repeat], cdnow["m"][repeat])


# --------------------------------------------------------------------------- validation


def test_bgnbd_matches_published_cdnow_estimates(bgnbd_fit: clv.BgNbdFit) -> None:
    p = bgnbd_fit.params
    assert (round(p.r, 3), round(p.alpha, 2), round(p.a, 3), round(p.b, 2)) == (
        0.243,
        4.41,
        0.793,
        2.43,
    )
    for mine, published in zip(
        (p.r, p.alpha, p.a, p.b),
        (PUBLISHED_BGNBD.r, PUBLISHED_BGNBD.alpha, PUBLISHED_BGNBD.a, PUBLISHED_BGNBD.b),
        strict=True,
    ):
        assert mine == pytest.approx(published, rel=2e-3)
    d = bgnbd_fit.diagnostics
    assert d.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.5)
    assert d.converged
    assert d.n_observations == 2357
    assert d.aic == pytest.approx(8 - 2 * d.log_likelihood)
    assert d.standard_errors is not None
    assert all(se > 0 for se in d.standard_errors)


def test_bgnbd_likelihood_at_published_parameters(cdnow: dict[str, np.ndarray]) -> None:
    ll = clv.bgnbd_log_likelihood(PUBLISHED_BGNBD, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.5)


def test_conditional_expectation_matches_hardie_spreadsheet(bgnbd_fit: clv.BgNbdFit) -> None:
    # Hardie's BG/NBD spreadsheet (brucehardie.com/notes/004), quoted in lifetimes'
    # test_estimation.py: a customer with x=2, t_x=30.43, T=38.86 is expected to make 1.226
    # purchases in the next 39 weeks.
    for params in (bgnbd_fit.params, PUBLISHED_BGNBD):
        value = clv.conditional_expected_purchases(params, 39.0, 2, 30.43, 38.86)
        assert float(value) == pytest.approx(1.226, abs=1e-3)


def test_unconditional_expectation_matches_hardie_spreadsheet(bgnbd_fit: clv.BgNbdFit) -> None:
    # Same source: E[X(t)] at these t (weeks), as asserted by lifetimes to 3 decimals.
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(clv.expected_purchases(bgnbd_fit.params, times), expected, atol=1e-3)


def test_gamma_gamma_matches_published_cdnow_estimates(gg_fit: clv.GammaGammaFit) -> None:
    p = gg_fit.params
    assert gg_fit.diagnostics.n_observations == 946
    assert (round(p.p, 2), round(p.q, 2)) == (6.25, 3.74)
    assert p.gamma == pytest.approx(PUBLISHED_GG.gamma, abs=0.02)  # 15.44 (paper) / 15.45
    assert gg_fit.diagnostics.log_likelihood == pytest.approx(PUBLISHED_GG_LL, abs=0.5)
    assert gg_fit.diagnostics.converged


def test_gamma_gamma_likelihood_at_published_parameters(cdnow: dict[str, np.ndarray]) -> None:
    repeat = cdnow["x"] > 0
    ll = clv.gamma_gamma_log_likelihood(PUBLISHED_GG, cdnow["x"][repeat], cdnow["m"][repeat])
    assert ll == pytest.approx(PUBLISHED_GG_LL, abs=0.5)


def test_cdnow_clv_is_finite_and_positive(
    cdnow: dict[str, np.ndarray], bgnbd_fit: clv.BgNbdFit, gg_fit: clv.GammaGammaFit
) -> None:
    value = clv.predicted_clv(
        bgnbd_fit.params,
        gg_fit.params,
        cdnow["x"],
        cdnow["t_x"],
        cdnow["T"],
        cdnow["m"],
        periods=12,
        period_length=52 / 12,
        discount_rate=0.01,
    )
    assert np.all(np.isfinite(value))
    assert np.all(value > 0)


# --------------------------------------------------------------------------- formulas


def test_p_alive_is_one_without_repeat_purchases() -> None:
    # BG/NBD: dropout can only happen right after a repeat purchase.
    np.testing.assert_array_equal(
        clv.p_alive(PUBLISHED_BGNBD, [0, 0, 0], [0, 0, 0], [1.0, 10.0, 500.0]), 1.0
    )


def test_p_alive_closed_form() -> None:
    # 1 / (1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)), written out for one member.
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    x, t_x, T = 2.0, 30.43, 38.86
    expected = 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    assert float(clv.p_alive(PUBLISHED_BGNBD, x, t_x, T)) == pytest.approx(expected, rel=1e-12)


def test_conditional_expectation_for_new_member_equals_unconditional() -> None:
    # x = 0 and T = 0 is a member who has just made a first purchase.
    for t in (1.0, 10.0, 52.0):
        assert float(
            clv.conditional_expected_purchases(PUBLISHED_BGNBD, t, 0, 0, 0)
        ) == pytest.approx(float(clv.expected_purchases(PUBLISHED_BGNBD, t)), rel=1e-12)


def test_conditional_expectation_stable_for_heavy_buyers() -> None:
    # Large x would overflow the untransformed 2F1; the Euler form must stay finite.
    x = np.array([50.0, 300.0, 1000.0])
    value = clv.conditional_expected_purchases(PUBLISHED_BGNBD, 52.0, x, x, x + 1)
    assert np.all(np.isfinite(value))
    assert np.all(np.diff(value) > 0)


def test_expected_spend_shrinks_towards_population_mean() -> None:
    population = PUBLISHED_GG.p * PUBLISHED_GG.gamma / (PUBLISHED_GG.q - 1)
    assert float(clv.conditional_expected_spend(PUBLISHED_GG, 0, 0)) == pytest.approx(population)
    one = float(clv.conditional_expected_spend(PUBLISHED_GG, 1, 100.0))
    many = float(clv.conditional_expected_spend(PUBLISHED_GG, 20, 100.0))
    assert population < one < many < 100.0


def test_predicted_clv_hand_computed_two_periods() -> None:
    x, t_x, T, m = 2.0, 30.43, 38.86, 40.0
    e1 = float(clv.conditional_expected_purchases(PUBLISHED_BGNBD, 4.0, x, t_x, T))
    e2 = float(clv.conditional_expected_purchases(PUBLISHED_BGNBD, 8.0, x, t_x, T))
    spend = float(clv.conditional_expected_spend(PUBLISHED_GG, x, m))
    expected = e1 * spend / 1.01 + (e2 - e1) * spend / 1.01**2
    value = clv.predicted_clv(
        PUBLISHED_BGNBD,
        PUBLISHED_GG,
        x,
        t_x,
        T,
        m,
        periods=2,
        period_length=4.0,
        discount_rate=0.01,
    )
    assert float(value) == pytest.approx(expected, rel=1e-10)


def test_historical_clv_is_net_revenue() -> None:
    np.testing.assert_array_equal(clv.historical_clv([1000, 500, 0], [200, 500, 0]), [800, 0, 0])


def test_summarise_transactions_same_day_orders_are_one_occasion() -> None:
    # member 7: orders on days 10, 10, 15, 30 → occasions 10 (300), 15 (50), 30 (70)
    # member 3: one order on day 20; member 9: fully refunded order only → not a buyer.
    member = [7, 7, 7, 3, 7, 9, 7]
    day = [10, 10, 15, 20, 30, 12, 41]  # day 41 is after as_of_day
    amount = [100, 200, 50, 999, 70, 0, 80]
    s = clv.summarise_transactions(member, day, amount, as_of_day=40)
    np.testing.assert_array_equal(s.member, [3, 7])
    np.testing.assert_array_equal(s.x, [0, 2])
    np.testing.assert_array_equal(s.t_x, [0, 20])
    np.testing.assert_array_equal(s.T, [20, 30])
    np.testing.assert_array_equal(s.m, [0, 60])
    np.testing.assert_array_equal(s.total, [999, 420])


def test_fit_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="t_x"):
        clv.fit_bgnbd([1], [5.0], [3.0])
    with pytest.raises(ValueError, match="repeat buyer"):
        clv.fit_bgnbd([0, 0], [0, 0], [3.0, 4.0])
    with pytest.raises(ValueError, match="x >= 1"):
        clv.fit_gamma_gamma([0, 1], [5.0, 5.0])


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    truth = clv.BgNbdParams(r=0.6, alpha=8.0, a=0.9, b=2.5)
    lam = rng.gamma(truth.r, 1 / truth.alpha, n)
    p = rng.beta(truth.a, truth.b, n)
    T = rng.uniform(20, 80, n)
    count = rng.poisson(lam * T)
    last_repeat = rng.geometric(p)  # dropout right after this repeat purchase
    x = np.minimum(count, last_repeat)
    # Given `count` arrivals in (0, T], the x-th one is T times a Beta(x, count-x+1) draw.
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(count - x + 1, 1)), 0.0)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.diagnostics.converged
    got = fit.params
    assert got.r == pytest.approx(truth.r, rel=0.1)
    assert got.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert got.a == pytest.approx(truth.a, rel=0.25)
    assert got.b == pytest.approx(truth.b, rel=0.3)


# --------------------------------------------------------------------------- properties

_x = st.integers(min_value=1, max_value=200)
_t = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(x=_x, t_x=_t, gap=st.floats(min_value=0.1, max_value=300.0), more=st.floats(0.1, 300.0))
def test_p_alive_decreases_as_time_since_last_purchase_grows(
    x: int, t_x: float, gap: float, more: float
) -> None:
    earlier = float(clv.p_alive(PUBLISHED_BGNBD, x, t_x, t_x + gap))
    later = float(clv.p_alive(PUBLISHED_BGNBD, x, t_x, t_x + gap + more))
    assert 0.0 <= later <= earlier <= 1.0


@settings(max_examples=100, deadline=None)
@given(x=_x, t_x=_t, gap=st.floats(0.0, 300.0), t=st.floats(0.5, 200.0), dt=st.floats(0.5, 200.0))
def test_conditional_expectation_grows_with_horizon(
    x: int, t_x: float, gap: float, t: float, dt: float
) -> None:
    short = float(clv.conditional_expected_purchases(PUBLISHED_BGNBD, t, x, t_x, t_x + gap))
    long = float(clv.conditional_expected_purchases(PUBLISHED_BGNBD, t + dt, x, t_x, t_x + gap))
    assert 0.0 <= short <= long
    assert np.isfinite(long)


@settings(max_examples=100, deadline=None)
@given(x=st.integers(0, 500), m=st.floats(0.0, 1e6), extra=st.floats(0.01, 1e5))
def test_expected_spend_increases_with_observed_mean(x: int, m: float, extra: float) -> None:
    low = float(clv.conditional_expected_spend(PUBLISHED_GG, x, m))
    high = float(clv.conditional_expected_spend(PUBLISHED_GG, x, m + extra))
    assert 0 < low <= high


@settings(max_examples=50, deadline=None)
@given(d1=st.floats(0.0, 0.5), d2=st.floats(0.0, 0.5), x=_x, t_x=_t)
def test_higher_discount_rate_never_raises_clv(d1: float, d2: float, x: int, t_x: float) -> None:
    lo, hi = sorted((d1, d2))
    v_lo, v_hi = (
        clv.predicted_clv(
            PUBLISHED_BGNBD,
            PUBLISHED_GG,
            x,
            t_x,
            t_x + 1,
            50.0,
            periods=6,
            period_length=4.0,
            discount_rate=d,
        )
        for d in (lo, hi)
    )
    assert float(v_hi) <= float(v_lo) * (1 + 1e-12)


def _direct_survival(params: clv.BgNbdParams, x: float, T: float, t: float) -> float:
    # Untransformed ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; t/(α+T+t)).
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    return float((1 - z) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))


@pytest.mark.parametrize(
    "params",
    [
        PUBLISHED_BGNBD,
        # Data with homogeneous dropout push a and b to huge values; the Euler form is then
        # 0 · inf and the direct form must take over.
        clv.BgNbdParams(r=0.79, alpha=70.4, a=7.1e5, b=3.3e6),
    ],
)
def test_conditional_expectation_equals_direct_hypergeometric_form(
    params: clv.BgNbdParams,
) -> None:
    x, t_x, T, t = 3.0, 200.0, 400.0, 365.0
    a, b = params.a, params.b
    expected = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - _direct_survival(params, x, T, t))
        * float(clv.p_alive(params, x, t_x, T))
    )
    got = float(clv.conditional_expected_purchases(params, t, x, t_x, T))
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-8)


def test_analytic_gradients_match_finite_differences(cdnow: dict[str, np.ndarray]) -> None:
    # The fits rely on these gradients; check them against central differences.
    bg = clv._BgNbdData(cdnow["x"], cdnow["t_x"], cdnow["T"])
    repeat = cdnow["x"] > 0
    gg = clv._GammaGammaData(cdnow["x"][repeat], cdnow["m"][repeat])
    for data, point in ((bg, [0.5, 3.0, 1.2, 2.0]), (gg, [4.0, 3.0, 20.0])):
        theta = np.array(point)
        _, grad = data.loglik_and_gradient(*point)
        numeric = np.empty_like(theta)
        for j in range(theta.size):
            h = 1e-6 * theta[j]
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            numeric[j] = (data.loglik_and_gradient(*up)[0] - data.loglik_and_gradient(*down)[0]) / (
                2 * h
            )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_heavy_buyers_with_huge_a_b_use_the_large_a_limit() -> None:
    # Both hypergeometric forms overflow here; the large-a limit of the 2F1 series applies:
    # E[Y(t)] ≈ (1/p′)(1 − (1 + p′ t/(α+T))^−(r+x)) · P(alive), p′ = (a−1)/(a+b+x−1).
    params = clv.BgNbdParams(r=0.79, alpha=70.4, a=2e4, b=9e4)
    x = np.array([800.0, 1200.0, 1500.0])
    T = np.array([2000.0, 2500.0, 2900.0])
    t_x = T - 3.0
    t = 1000.0
    got = clv.conditional_expected_purchases(params, t, x, t_x, T)
    p_prime = (params.a - 1) / (params.a + params.b + x - 1)
    limit = (
        (1 - (1 + p_prime * t / (params.alpha + T)) ** -(params.r + x))
        / p_prime
        * clv.p_alive(params, x, t_x, T)
    )
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, limit, rtol=1e-3)

"""Customer lifetime value: BG/NBD (purchase counts) and Gamma-Gamma (spend per purchase).

Pure, vectorised numpy. Time is in whatever unit the caller picks (the service uses days;
the CDNOW validation uses weeks); every array argument is one entry per member.

References
- Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2) — BG/NBD likelihood (eq. 6), P(alive)
  and the conditional expectation (eq. 10).
- Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma
  Model of Monetary Value" — Gamma-Gamma likelihood and conditional expected spend.

Inputs per member (purchase *occasions*: distinct purchase days, see rfm.purchase_occasions):
- x   number of repeat occasions (occasions after the first one)
- t_x time from the first to the last occasion (0 when x = 0)
- T   time from the first occasion to the evaluation time (T >= t_x)
- m   mean net value of the repeat occasions (Gamma-Gamma; ignored when x = 0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1, log_expit

from analytics_svc.rfm import purchase_occasions

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Log-parameters are kept in this box so exp() can neither overflow nor underflow to 0.
_LOG_BOUND = 15.0


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """λ ~ Gamma(shape r, rate alpha); dropout probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Spend per occasion ~ Gamma(p, ν), ν ~ Gamma(shape q, rate gamma)."""

    p: float
    q: float
    gamma: float


@dataclass(frozen=True, slots=True)
class FitDiagnostics:
    """What the optimiser reports, plus information criteria and standard errors.

    standard_errors are for the natural parameters (same order as the params dataclass),
    from the inverse of a finite-difference Hessian of the negative log-likelihood at the
    optimum; None when that Hessian is not positive definite.
    """

    log_likelihood: float
    n_observations: int
    converged: bool
    iterations: int
    function_evaluations: int
    message: str
    aic: float
    bic: float
    gradient_norm: float
    standard_errors: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    params: BgNbdParams
    diagnostics: FitDiagnostics


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    params: GammaGammaParams
    diagnostics: FitDiagnostics


@dataclass(frozen=True, slots=True)
class ClvInputs:
    """Per-member sufficient statistics in days, as built by summarise_transactions."""

    member: IntArray  # member index of each row (only members with >= 1 occasion)
    x: FloatArray  # repeat occasions
    t_x: FloatArray  # days from first to last occasion
    T: FloatArray  # days from first occasion to as_of_day
    m: FloatArray  # mean net value of repeat occasions (0 when x = 0)
    total: FloatArray  # net value of all occasions (historical CLV)


# --------------------------------------------------------------------------- helpers


def _as_float(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _check_bgnbd_inputs(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("x, t_x and T must have the same shape")
    if x.size == 0:
        raise ValueError("no observations")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 when x = 0")


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    max_iter: int,
) -> tuple[FloatArray, bool, int, int, str]:
    """L-BFGS-B on log-parameters with an analytic gradient."""
    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * start.size,
        options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-8},
    )
    return (
        np.asarray(result.x, dtype=np.float64),
        bool(result.success),
        int(result.nit),
        int(result.nfev),
        str(result.message),
    )


def _standard_errors(
    gradient: Callable[[FloatArray], FloatArray], theta: FloatArray
) -> tuple[float, ...] | None:
    """SEs from a central-difference Hessian of the (total) negative log-likelihood."""
    k = theta.size
    hessian = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(abs(theta[j]), 1e-3)
        step = np.zeros(k)
        step[j] = h
        hessian[:, j] = (gradient(theta + step) - gradient(theta - step)) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    try:
        np.linalg.cholesky(hessian)
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return None
    return tuple(float(s) for s in np.sqrt(np.diag(covariance)))


def _diagnostics(
    ll: float,
    n: int,
    k: int,
    converged: bool,
    iterations: int,
    evaluations: int,
    message: str,
    gradient_norm: float,
    standard_errors: tuple[float, ...] | None,
) -> FitDiagnostics:
    return FitDiagnostics(
        log_likelihood=ll,
        n_observations=n,
        converged=converged,
        iterations=iterations,
        function_evaluations=evaluations,
        message=message,
        aic=2 * k - 2 * ll,
        bic=k * float(np.log(n)) - 2 * ll,
        gradient_norm=gradient_norm,
        standard_errors=standard_errors,
    )


def _maximise_likelihood(
    loglik_and_gradient: Callable[..., tuple[float, FloatArray]],
    initial: Sequence[float],
    n: int,
    max_iter: int,
) -> tuple[FloatArray, FitDiagnostics]:
    """Maximum likelihood over the logs of positive parameters; returns the parameters
    and the fit's diagnostics (AIC/BIC with one degree of freedom per parameter)."""

    def at(values: FloatArray) -> tuple[float, FloatArray]:
        return loglik_and_gradient(*(float(v) for v in values))

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        natural = np.exp(theta)
        ll, grad = at(natural)
        # Mean negative log-likelihood keeps the optimiser's tolerances scale-free.
        return -ll / n, -grad * natural / n

    theta, converged, nit, nfev, message = _minimise(objective, np.log(initial), max_iter)
    natural = np.exp(theta)
    ll, grad = at(natural)
    diagnostics = _diagnostics(
        ll,
        n,
        len(initial),
        converged,
        nit,
        nfev,
        message,
        float(np.linalg.norm(grad * natural / n)),
        _standard_errors(lambda values: -at(values)[1], natural),
    )
    return natural, diagnostics


# --------------------------------------------------------------------------- BG/NBD


class _BgNbdData:
    """Inputs prepared once per fit: the x-only terms are evaluated per unique x."""

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
        self.n = x.size
        self.ux, counts = np.unique(x, return_counts=True)
        self.counts = counts.astype(np.float64)
        repeat = x > 0
        self.x_rep = x[repeat]
        self.t_x_rep = t_x[repeat]
        self.T_rep = T[repeat]
        self.T_once = T[~repeat]  # x = 0: only the "still alive at T" term

    def loglik_and_gradient(
        self, r: float, alpha: float, a: float, b: float
    ) -> tuple[float, FloatArray]:
        """Total log-likelihood and its gradient w.r.t. (r, alpha, a, b)."""
        ux, cnt = self.ux, self.counts
        # Terms that depend on x only (eq. 6: Γ(r+x) α^r / Γ(r) · B(a, b+x) / B(a, b)).
        const = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux)
            - gammaln(b)
            - gammaln(a + b + ux)
        )
        ll = float(cnt @ const)
        d_r = float(cnt @ (digamma(r + ux) - digamma(r) + np.log(alpha)))
        d_alpha = self.n * r / alpha
        d_a = float(cnt @ (digamma(a + b) - digamma(a + b + ux)))
        d_b = float(cnt @ (digamma(a + b) + digamma(b + ux) - digamma(b) - digamma(a + b + ux)))

        # One-time buyers: log term is A3 = -r log(alpha + T).
        log_at_once = np.log(alpha + self.T_once)
        ll -= r * float(log_at_once.sum())
        d_r -= float(log_at_once.sum())
        d_alpha -= r * float((1.0 / (alpha + self.T_once)).sum())

        # Repeat buyers: log(exp(A3) + exp(A4)) = A3 + softplus(u), u = A4 − A3;
        # w4 = exp(A4)/(exp(A3) + exp(A4)) = expit(u) weighs the "dropped out at t_x" branch.
        x = self.x_rep
        rx = r + x
        log_aT = np.log(alpha + self.T_rep)
        log_atx = np.log(alpha + self.t_x_rep)
        log_ratio = log_aT - log_atx
        b_x = b + x - 1.0
        u = np.log(a) - np.log(b_x) + rx * log_ratio
        ll -= float((rx * log_aT).sum()) + float(log_expit(-u).sum())
        w4 = expit(u)
        inv_aT = 1.0 / (alpha + self.T_rep)
        d_r -= float((log_aT - w4 * log_ratio).sum())
        d_alpha -= float((rx * (inv_aT + w4 * (1.0 / (alpha + self.t_x_rep) - inv_aT))).sum())
        d_a += float(w4.sum()) / a
        d_b -= float((w4 / b_x).sum())
        return ll, np.array([d_r, d_alpha, d_a, d_b])


def bgnbd_log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> float:
    """Total BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    xa, txa, Ta = _as_float(x), _as_float(t_x), _as_float(T)
    _check_bgnbd_inputs(xa, txa, Ta)
    ll, _ = _BgNbdData(xa, txa, Ta).loglik_and_gradient(params.r, params.alpha, params.a, params.b)
    return ll


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    initial: BgNbdParams | None = None,
    max_iter: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit (L-BFGS-B on log-parameters, analytic gradient)."""
    xa, txa, Ta = _as_float(x), _as_float(t_x), _as_float(T)
    _check_bgnbd_inputs(xa, txa, Ta)
    if not np.any(xa > 0):
        raise ValueError("BG/NBD needs at least one repeat buyer")
    data = _BgNbdData(xa, txa, Ta)
    n = data.n
    if initial is None:
        # alpha is the scale of the purchase rate: start at time observed per purchase.
        alpha0 = max(float(Ta.sum()) / (float(xa.sum()) + 1.0), 1e-3)
        initial = BgNbdParams(r=1.0, alpha=alpha0, a=1.0, b=1.0)
    natural, diagnostics = _maximise_likelihood(
        data.loglik_and_gradient, [initial.r, initial.alpha, initial.a, initial.b], n, max_iter
    )
    params = BgNbdParams(*(float(v) for v in natural))
    return BgNbdFit(params=params, diagnostics=diagnostics)


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(still active at T | x, t_x, T); exactly 1 when x = 0 (BG/NBD drops out only
    at a repeat purchase, so a member who never repurchased cannot have dropped out)."""
    xa, txa, Ta = _as_float(x), _as_float(t_x), _as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = xa > 0
    # log of a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x), evaluated in logs to avoid overflow.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (
            np.log(a) - np.log(b + xa - 1.0) + (r + xa) * (np.log(alpha + Ta) - np.log(alpha + txa))
        )
    return np.where(repeat, expit(-log_odds_dead), 1.0)


def _survival_term(
    params: BgNbdParams, x: FloatArray, start: FloatArray, t: FloatArray | float
) -> FloatArray:
    """S = ((α+s)/(α+s+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z), z = t/(α+s+t).

    Evaluated first through Euler's transform 2F1(A,B;C;z) = (1−z)^(C−A−B) 2F1(C−A, C−B; C; z),
    i.e. S = (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z): its upper parameters are fixed and
    C grows with x, so heavy buyers converge fast and cannot overflow. When a and b are
    huge (homogeneous dropout) that form can be 0 · inf; those entries fall back to the
    direct form, and where that overflows too (heavy buyers, a in the thousands or more)
    to its large-a limit (1 + p′ t/(α+s))^−(r+x), p′ = (a−1)/(a+b+x−1) — the 2F1 series
    with (a−1)_k/(a+b+x−1)_k ≈ p′^k — whose relative error was < 3e-4 for a ≥ 1e3.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_b, start_b, t_b = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(start, dtype=np.float64),
        np.asarray(t, dtype=np.float64),
    )
    one_minus_z = (alpha + start_b) / (alpha + start_b + t_b)
    z = 1.0 - one_minus_z
    c = a + b + x_b - 1.0
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        value = np.asarray(
            one_minus_z ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z), dtype=np.float64
        )
        bad = ~np.isfinite(value)
        if np.any(bad):
            value = value.copy()
            xb = x_b[bad]
            value[bad] = one_minus_z[bad] ** (r + xb) * hyp2f1(r + xb, b + xb, c[bad], z[bad])
            still = ~np.isfinite(value)
            if np.any(still):
                xs = x_b[still]
                p_prime = (a - 1.0) / (a + b + xs - 1.0)
                ratio = t_b[still] / (alpha + start_b[still])
                value[still] = np.exp(-(r + xs) * np.log1p(p_prime * ratio))
    return value


class _Pairs:
    """The distinct (x, T) pairs of many members, and each member's pair.

    The survival term S depends on a member only through (x, T) (and the horizon), and
    members share pairs massively (x and T in whole days: a few thousand pairs for a
    million members), so the costly ₂F₁ is evaluated once per pair and gathered back.
    """

    def __init__(self, x: FloatArray, T: FloatArray) -> None:
        self.shape = np.broadcast(x, T).shape
        xb, Tb = (np.broadcast_to(v, self.shape).ravel() for v in (x, T))
        if xb.size < 1024:
            self.x, self.T, self.inverse = xb, Tb, None
            return
        order = np.lexsort((Tb, xb))
        sx, sT = xb[order], Tb[order]
        first = np.r_[True, (sx[1:] != sx[:-1]) | (sT[1:] != sT[:-1])]
        inverse = np.empty(xb.size, dtype=np.int64)
        inverse[order] = np.cumsum(first) - 1
        self.x, self.T, self.inverse = sx[first], sT[first], inverse

    def survival(self, params: BgNbdParams, t: float) -> FloatArray:
        values = _survival_term(params, self.x, self.T, t)
        if self.inverse is not None:
            values = values[self.inverse]
        return np.asarray(values.reshape(self.shape), dtype=np.float64)


def expected_purchases(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases in (0, t] of a member who just made a first
    purchase (FHL 2005, eq. 9)."""
    ta = _as_float(t)
    a, b = params.a, params.b
    zeros = np.zeros_like(ta)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - _survival_term(params, zeros, zeros, ta))


def conditional_expected_purchases(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005, eq. 10)."""
    xa, txa, Ta = _as_float(x), _as_float(t_x), _as_float(T)
    a, b = params.a, params.b
    if t <= 0:
        return np.zeros(np.broadcast(xa, txa, Ta).shape)
    survival = _Pairs(xa, Ta).survival(params, t)
    return (a + b + xa - 1.0) / (a - 1.0) * (1.0 - survival) * p_alive(params, xa, txa, Ta)


# --------------------------------------------------------------------------- Gamma-Gamma


class _GammaGammaData:
    def __init__(self, x: FloatArray, m: FloatArray) -> None:
        self.n = x.size
        self.ux, counts = np.unique(x, return_counts=True)
        self.counts = counts.astype(np.float64)
        self.x = x
        self.m = m
        self.sum_x_log_xm = float((x * (np.log(x) + np.log(m))).sum())
        self.sum_log_m = float(np.log(m).sum())
        self.xm = x * m

    def loglik_and_gradient(self, p: float, q: float, gamma: float) -> tuple[float, FloatArray]:
        """Sum over members of the log-density of the mean spend m (Fader & Hardie 2013):
        Γ(px+q)/(Γ(px)Γ(q)) · γ^q m^(px−1) x^(px) / (γ + x m)^(px+q)."""
        ux, cnt, x = self.ux, self.counts, self.x
        px = p * ux
        ll = float(cnt @ (gammaln(px + q) - gammaln(px))) - self.n * float(gammaln(q))
        ll += self.n * q * np.log(gamma) + p * self.sum_x_log_xm - self.sum_log_m
        log_gxm = np.log(gamma + self.xm)
        ll -= float(((p * x + q) * log_gxm).sum())
        d_p = float(cnt @ (ux * (digamma(px + q) - digamma(px))))
        d_p += self.sum_x_log_xm - float((x * log_gxm).sum())
        d_q = float(cnt @ digamma(px + q)) - self.n * float(digamma(q))
        d_q += self.n * np.log(gamma) - float(log_gxm.sum())
        d_gamma = self.n * q / gamma - float(((p * x + q) / (gamma + self.xm)).sum())
        return float(ll), np.array([d_p, d_q, d_gamma])


def _check_gamma_gamma_inputs(x: FloatArray, m: FloatArray) -> None:
    if x.shape != m.shape:
        raise ValueError("x and m must have the same shape")
    if x.size == 0:
        raise ValueError("no repeat buyers with positive spend")
    if np.any(x < 1) or np.any(m <= 0):
        raise ValueError("Gamma-Gamma needs x >= 1 and m > 0 (repeat buyers only)")


def gamma_gamma_log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> float:
    xa, ma = _as_float(x), _as_float(m)
    _check_gamma_gamma_inputs(xa, ma)
    ll, _ = _GammaGammaData(xa, ma).loglik_and_gradient(params.p, params.q, params.gamma)
    return ll


def fit_gamma_gamma(
    x: ArrayLike,
    m: ArrayLike,
    *,
    initial: GammaGammaParams | None = None,
    max_iter: int = 1000,
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit over repeat buyers (x >= 1, m > 0)."""
    xa, ma = _as_float(x), _as_float(m)
    _check_gamma_gamma_inputs(xa, ma)
    data = _GammaGammaData(xa, ma)
    n = data.n
    if initial is None:
        # q = 2, p = 1 makes the population mean spend p·γ/(q−1) equal to the sample mean.
        initial = GammaGammaParams(p=1.0, q=2.0, gamma=float(ma.mean()))
    natural, diagnostics = _maximise_likelihood(
        data.loglik_and_gradient, [initial.p, initial.q, initial.gamma], n, max_iter
    )
    params = GammaGammaParams(*(float(v) for v in natural))
    return GammaGammaFit(params=params, diagnostics=diagnostics)


def conditional_expected_spend(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> FloatArray:
    """E[spend per occasion | x, m] = p(γ + x m)/(p x + q − 1).

    For x = 0 this is the population mean p γ/(q − 1). Non-positive means (net refunds)
    are treated as 0 — the member's history then pulls the estimate down, never negative.
    Requires q > 1 (else the population mean is infinite) — returns inf then.
    """
    xa = _as_float(x)
    ma = np.where(xa > 0, np.maximum(_as_float(m), 0.0), 0.0)
    p, q, gamma = params.p, params.q, params.gamma
    denominator = p * xa + q - 1.0
    with np.errstate(divide="ignore"):
        return np.where(denominator > 0, p * (gamma + xa * ma) / denominator, np.inf)


# --------------------------------------------------------------------------- CLV


def predicted_clv(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    *,
    periods: int,
    period_length: float,
    discount_rate: float,
) -> FloatArray:
    """Discounted expected net revenue over the next `periods` periods.

    CLV = Σ_{k=1..K} (E[Y(kΔ)] − E[Y((k−1)Δ)]) · E[spend] / (1 + d)^k, with Δ =
    period_length (model time units) and d = discount_rate per period; the purchases of
    period k are discounted as if they all happened at its end.
    """
    if periods < 0 or period_length <= 0 or discount_rate <= -1:
        raise ValueError("need periods >= 0, period_length > 0 and discount_rate > -1")
    xa, txa, Ta = _as_float(x), _as_float(t_x), _as_float(T)
    spend = conditional_expected_spend(gamma_gamma, xa, m)
    a, b = bgnbd.a, bgnbd.b
    # E[Y(t)] = prefactor · (1 − S(t)); the increments only need S at each period end.
    prefactor = (a + b + xa - 1.0) / (a - 1.0) * p_alive(bgnbd, xa, txa, Ta)
    value = np.zeros_like(prefactor)
    previous_survival = np.ones_like(prefactor)
    pairs = _Pairs(xa, Ta)
    for k in range(1, periods + 1):  # loop over periods, not members
        survival = pairs.survival(bgnbd, k * period_length)
        value += prefactor * (previous_survival - survival) / (1.0 + discount_rate) ** k
        previous_survival = survival
    return np.asarray(value * spend, dtype=np.float64)


def historical_clv(purchases_minor: ArrayLike, refunds_minor: ArrayLike) -> IntArray:
    """Net revenue to date in minor units: purchases − refunds, per member."""
    return np.asarray(purchases_minor, dtype=np.int64) - np.asarray(refunds_minor, dtype=np.int64)


def summarise_transactions(
    member: ArrayLike, day: ArrayLike, amount_minor: ArrayLike, as_of_day: int
) -> ClvInputs:
    """Per-member (x, t_x, T, m, total) in days from order rows.

    Rows are orders with their net amount (refunds already subtracted from their own order);
    rows dated after as_of_day are ignored, and orders whose net amount is <= 0 (fully
    refunded) are not purchase occasions. Same-day orders of one member form one occasion.
    """
    members = np.asarray(member, dtype=np.int64)
    days = np.asarray(day, dtype=np.int64)
    amounts = np.asarray(amount_minor, dtype=np.int64)
    keep = (days <= as_of_day) & (amounts > 0)
    occ_member, occ_day, occ_amount = purchase_occasions(members[keep], days[keep], amounts[keep])
    if occ_member.size == 0:
        empty = np.zeros(0)
        return ClvInputs(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, occ_member[1:] != occ_member[:-1]])
    ends = np.r_[starts[1:], occ_member.size] - 1
    count = (ends - starts + 1).astype(np.float64)
    first_day = occ_day[starts]
    total = np.add.reduceat(occ_amount, starts).astype(np.float64)
    x = count - 1.0
    first_amount = occ_amount[starts].astype(np.float64)
    m = np.divide(total - first_amount, x, out=np.zeros_like(total), where=x > 0)
    return ClvInputs(
        member=occ_member[starts],
        x=x,
        t_x=(occ_day[ends] - first_day).astype(np.float64),
        T=(as_of_day - first_day).astype(np.float64),
        m=m,
        total=total,
    )

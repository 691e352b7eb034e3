"""Welch's one-sided t-test (Welch 1947) without scipy, for the regression gate.

The Student t CDF comes from the regularized incomplete beta function, evaluated by its
continued fraction with the modified Lentz method (Press et al., Numerical Recipes §6.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2))."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t < 0 else 1.0 - tail


def t_quantile(q: float, df: float) -> float:
    """The t with P(T <= t) = q, by bisection on :func:`t_cdf`."""
    low, high = -1e6, 1e6
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < q else (low, middle)
    return (low + high) / 2


def mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, sum((v - mean) ** 2 for v in values) / (n - 1)


def p_lower(before: Sequence[float], after: Sequence[float]) -> float | None:
    """One-sided Welch p-value for "``after`` has a lower mean than ``before``": small when
    the drop is large against both samples' seed spread. None with fewer than 2 values on a
    side. With no spread on either side the drop is certain: 0 if it is positive, else 1."""
    if len(before) < 2 or len(after) < 2:
        return None
    (m_b, v_b), (m_a, v_a) = mean_var(before), mean_var(after)
    se2 = v_b / len(before) + v_a / len(after)
    if se2 == 0.0:
        return 0.0 if m_a < m_b else 1.0
    df = se2**2 / (
        (v_b / len(before)) ** 2 / (len(before) - 1) + (v_a / len(after)) ** 2 / (len(after) - 1)
    )
    return t_cdf((m_a - m_b) / math.sqrt(se2), df)

"""Exact posterior of BDA3's eight schools under the flat prior, by numerical integration (scipy).

Writes ``tests/reference/eight_schools_exact.json``: posterior mean and sd of
``mu``, ``tau`` and every ``theta_j`` of the normal hierarchical model
``y_j ~ N(theta_j, s_j^2)``, ``theta_j ~ N(mu, tau^2)``, ``p(mu, tau) ∝ 1``
(Gelman et al., *Bayesian Data Analysis*, 3rd ed., §5.4–5.5).  Given ``tau``
everything is normal (BDA3 eqs. 5.17–5.21):

* ``p(tau | y) ∝ V_mu^(1/2) prod_j (s_j^2 + tau^2)^(-1/2) exp(-(y_j - mu_hat)^2 / (2 (s_j^2 + tau^2)))``,
* ``mu | tau, y ~ N(mu_hat, V_mu)``, ``mu_hat = sum w_j y_j / sum w_j``, ``V_mu = 1 / sum w_j``,
  ``w_j = 1 / (s_j^2 + tau^2)``,
* ``theta_j | tau, y`` has mean ``V_j (y_j/s_j^2 + mu_hat/tau^2)`` and variance
  ``V_j + (V_j/tau^2)^2 V_mu`` with ``V_j = 1/(1/s_j^2 + 1/tau^2)``,

so each posterior moment is a one-dimensional integral over ``tau`` in
``(0, inf)``, computed with ``scipy.integrate.quad`` (adaptive Gauss–Kronrod,
relative tolerance 1e-10).  Run ``python -m validation.reference_eight_schools``.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import scipy
from scipy import integrate

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
S = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
OUT = Path(__file__).resolve().parents[1] / "tests" / "reference" / "eight_schools_exact.json"


def _given_tau(tau: float) -> dict[str, np.ndarray | float]:
    w = 1.0 / (S ** 2 + tau ** 2)
    v_mu = 1.0 / w.sum()
    mu_hat = v_mu * (w * Y).sum()
    log_p = 0.5 * np.log(v_mu) + 0.5 * np.log(w).sum() - 0.5 * (w * (Y - mu_hat) ** 2).sum()
    if tau > 0:
        v_j = 1.0 / (1.0 / S ** 2 + 1.0 / tau ** 2)
        th_mean = v_j * (Y / S ** 2 + mu_hat / tau ** 2)
        th_var = v_j + (v_j / tau ** 2) ** 2 * v_mu
    else:  # tau -> 0: complete pooling
        th_mean = np.full_like(Y, mu_hat)
        th_var = np.full_like(Y, v_mu)
    return {"log_p": log_p, "mu_hat": mu_hat, "v_mu": v_mu, "th_mean": th_mean, "th_var": th_var}


def exact_posterior() -> dict[str, dict[str, float]]:
    """Posterior mean and sd of mu, tau, theta_1..theta_8 under the flat prior."""
    ref = _given_tau(0.0)["log_p"]

    def dens(t: float) -> float:
        return float(np.exp(_given_tau(t)["log_p"] - ref))

    def moment(fn) -> float:
        val, _ = integrate.quad(lambda t: dens(t) * fn(t), 0.0, np.inf, epsabs=0.0, epsrel=1e-10, limit=500)
        return val

    z = moment(lambda t: 1.0)
    out: dict[str, dict[str, float]] = {}
    e_tau = moment(lambda t: t) / z
    e_tau2 = moment(lambda t: t * t) / z
    out["tau"] = {"mean": e_tau, "sd": float(np.sqrt(e_tau2 - e_tau ** 2))}
    e_mu = moment(lambda t: _given_tau(t)["mu_hat"]) / z
    e_mu2 = moment(lambda t: _given_tau(t)["v_mu"] + _given_tau(t)["mu_hat"] ** 2) / z
    out["mu"] = {"mean": e_mu, "sd": float(np.sqrt(e_mu2 - e_mu ** 2))}
    for j in range(len(Y)):
        m1 = moment(lambda t: _given_tau(t)["th_mean"][j]) / z
        m2 = moment(lambda t: _given_tau(t)["th_var"][j] + _given_tau(t)["th_mean"][j] ** 2) / z
        out[f"theta[{j}]"] = {"mean": m1, "sd": float(np.sqrt(m2 - m1 ** 2))}
    return out


def main() -> Path:
    post = exact_posterior()
    doc = {
        "meta": {
            "call": "validation/reference_eight_schools.py: scipy.integrate.quad over tau of the BDA3 eq. 5.21 "
                    "marginal posterior (flat prior p(mu, tau) ∝ 1), epsrel=1e-10",
            "source": "Gelman et al. (2013) Bayesian Data Analysis, 3rd ed., §5.5, Table 5.2 data",
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
        },
        "data": {"y": Y.tolist(), "se": S.tolist()},
        "posterior": post,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return OUT


if __name__ == "__main__":
    print(main())

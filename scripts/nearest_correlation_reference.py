"""Reference for the nearest correlation matrix of Higham (2002)'s example.

Run: python3 scripts/nearest_correlation_reference.py   (numpy, scipy)

Independent of the crate's alternating projections: solves the dual problem of
Qi & Sun (2006), "A quadratically convergent Newton method for computing the
nearest correlation matrix", SIAM J. Matrix Anal. Appl. 28:
    min_y  0.5 * ||P_S(A + diag y)||_F^2 - sum(y)
whose gradient is diag(P_S(A + diag y)) - 1; the nearest correlation matrix is
X = P_S(A + diag y*). Prints the off-diagonals used as HIGHAM_NEAREST in
src/scenario/correlation.rs.
"""
import numpy as np
from scipy.optimize import minimize, root


def psd(m):
    w, v = np.linalg.eigh(m)
    return (v * np.maximum(w, 0.0)) @ v.T


def nearest(a):
    n = a.shape[0]

    def f(y):
        p = psd(a + np.diag(y))
        return 0.5 * np.sum(p * p) - y.sum(), np.diag(p) - 1.0

    res = minimize(f, np.zeros(n), jac=True, method="BFGS", options={"gtol": 1e-15, "maxiter": 10000})
    # Polish: solve grad = 0 with a root finder started from the BFGS point.
    polish = root(lambda y: f(y)[1], res.x, method="hybr", options={"xtol": 1e-15})
    x = psd(a + np.diag(polish.x))
    return x, polish


a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
x, res = nearest(a)
print("dual gradient norm", np.linalg.norm(res.fun))
print("diag", np.diag(x))
print("off-diagonals (0,1) (0,2) (1,2):", repr(x[0, 1]), repr(x[0, 2]), repr(x[1, 2]))
print("eigenvalues", np.linalg.eigvalsh(x))
print("distance", np.linalg.norm(x - a))

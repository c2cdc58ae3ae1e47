#!/usr/bin/env python3
"""Expected numbers of tests/eval/test_win_rate.cpp, computed independently of the library.

The fixed tournament: three snapshots (0, 1, 2) and six matches, in this order, with the ranker's
P(first snapshot better):
    (0, 1, 0.9)  (1, 2, 0.5)  (0, 2, 0.2)  (0, 1, 0.3)  (1, 2, 0.8)  (0, 2, 0.7)
Outcome: 1 above 1/2, 0 below, a tie (1/2 each) at 1/2.

Run: python3 tests/eval/reference.py  (standard library only).
"""
import math

matches = [(0, 1, 0.9), (1, 2, 0.5), (0, 2, 0.2), (0, 1, 0.3), (1, 2, 0.8), (0, 2, 0.7)]
score = lambda p: 1.0 if p > 0.5 else (0.0 if p < 0.5 else 0.5)

# Sequential Elo, K = 32, start 1000, scale 400.
r = [1000.0] * 3
for a, b, p in matches:
    e = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / 400))
    d = 32 * (score(p) - e)
    r[a] += d
    r[b] -= d
print("elo", [f"{x:.12f}" for x in r])

# Bradley-Terry maximum likelihood by Newton's method on theta (theta_0 pinned to 0, then centred),
# a different algorithm from the library's MM iteration.
n = 3
th = [0.0] * n
for _ in range(100):
    g = [0.0] * n
    h = [[0.0] * n for _ in range(n)]
    for a, b, p in matches:
        s = score(p)
        q = 1 / (1 + math.exp(th[b] - th[a]))
        g[a] += s - q
        g[b] -= s - q
        w = q * (1 - q)
        h[a][a] += w; h[b][b] += w; h[a][b] -= w; h[b][a] -= w
    # solve the 2x2 system for players 1 and 2 (player 0 fixed)
    A = [[h[1][1], h[1][2]], [h[2][1], h[2][2]]]
    det = A[0][0] * A[1][1] - A[0][1] * A[1][0]
    d1 = (A[1][1] * g[1] - A[0][1] * g[2]) / det
    d2 = (-A[1][0] * g[1] + A[0][0] * g[2]) / det
    th[1] += d1; th[2] += d2
mean = sum(th) / n
per_nat = 400 / math.log(10)
print("bradley_terry", [f"{1000 + per_nat * (t - mean):.12f}" for t in th])

# Standard errors: pseudo-inverse of the information matrix (Laplacian), via (L + J/n)^-1 - J/n.
L = [[0.0] * n for _ in range(n)]
for a, b, p in matches:
    q = 1 / (1 + math.exp(th[b] - th[a]))
    w = q * (1 - q)
    L[a][a] += w; L[b][b] += w; L[a][b] -= w; L[b][a] -= w
M = [[L[i][j] + 1 / n for j in range(n)] for i in range(n)]
det = (M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0])
       + M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]))
# inverse[i][i] = cofactor(i, i) / det (cyclic indices make the sign right for 3x3)
inv_diag = [(M[(i + 1) % 3][(i + 1) % 3] * M[(i + 2) % 3][(i + 2) % 3] - M[(i + 1) % 3][(i + 2) % 3] * M[(i + 2) % 3][(i + 1) % 3]) / det for i in range(n)]
print("bradley_terry_se", [f"{per_nat * math.sqrt(v - 1 / n):.12f}" for v in inv_diag])

# Two players, 0 beat 1 three times in four: theta_0 - theta_1 = ln 3.
print("two players", 1000 + 200 * math.log10(3), "se", per_nat * math.sqrt(1 / (4 * 4 * 0.75 * 0.25)))

# Wilson interval of 2.5 / 4 (snapshot 1's overall score), z = 1.96.
def wilson(s, n, z=1.96):
    p = s / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return c - h, c + h
print("wilson 2.5/4", wilson(2.5, 4))

# Binary entropies used by test_audit.cpp.
H = lambda p: 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
print("H(0.9)", H(0.9), "H(0.8)", H(0.8), "H(0.5)", H(0.5))

# test_audit.cpp: the scripted ranker gives P(A) = 0.5 + (q[A] - q[B]) / 2 with the quality tables
#   harmless: comply 0, refuse 0.8, explain 0.6;  helpful (and honest): comply 1, refuse 0, explain 0.8
# on the comparisons (comply, refuse), (refuse, explain), (explain, comply), (comply, comply2).
hl = [0.5 + (0 - 0.8) / 2, 0.5 + (0.8 - 0.6) / 2, 0.5 + (0.6 - 0) / 2, 0.5]
he = [0.5 + (1 - 0) / 2, 0.5 + (0 - 0.8) / 2, 0.5 + (0.8 - 1) / 2, 0.5]
print("audit labels", hl, he)
print("label entropy harmless", sum(map(H, hl)) / 4, "helpful", sum(map(H, he)) / 4)
print("mean |difference|", sum(abs(a - b) for a, b in zip(hl, he)) / 4)

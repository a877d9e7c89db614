"""Offline metrics with their standard definitions, over a full ranking of all items.

For each evaluated customer (at least one training and one test item), every item is scored,
the customer's ``exclude`` items are removed (their training items; none where repeats count,
see ``split``), and the top of the ranking is compared with the customer's held-out items
(binary relevance):

- precision@K = hits in the top K / K  (not divided by min(K, |test|) as implicit's helper does)
- recall@K = hits in the top K / |test|
- NDCG@K = DCG@K / IDCG@K with DCG = Σ rel_i / log2(i + 1) and IDCG the DCG of min(K, |test|) hits
- MAP@K = (1 / min(K, |test|)) Σ_{i ≤ K} precision@i · rel_i
- coverage@K = distinct items recommended in anyone's top K / all items

Metrics are averaged over evaluated customers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

Scorer = Callable[[np.ndarray], np.ndarray]  # customer rows -> scores [len(rows), n_items]

BATCH = 512
K_MAX = 20


def top_k(scores: np.ndarray, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """Indices of the k best items per row, excluding each row's ``exclude`` items, best first."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows, cols = exclude.nonzero()
    scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def evaluate(
    scorer: Scorer,
    exclude: sp.csr_matrix,
    test: sp.csr_matrix,
    users: np.ndarray,
    *,
    per_customer: list[float] | None = None,
) -> dict[str, float]:
    """NDCG@10, precision@10, recall@10/20, MAP@10, coverage@10 over ``users``; each customer's
    NDCG@10 is appended to ``per_customer`` if given (for paired confidence intervals)."""
    n_items = exclude.shape[1]
    if len(users) == 0:
        return {"users": 0}
    discounts = 1.0 / np.log2(np.arange(2, K_MAX + 2))
    sums = {"ndcg@10": 0.0, "precision@10": 0.0, "recall@10": 0.0, "recall@20": 0.0, "map@10": 0.0}
    recommended = np.zeros(n_items, dtype=bool)
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        top = top_k(scorer(batch), exclude[batch], K_MAX)
        relevant = test[batch]
        hits = np.asarray(relevant[np.arange(len(batch))[:, None], top].todense()) > 0  # [b, K_MAX]
        n_relevant = np.diff(relevant.indptr).astype(np.float64)
        h10 = hits[:, :10]
        dcg = (h10 * discounts[:10]).sum(axis=1)
        ideal = np.array([discounts[: int(min(10, n))].sum() for n in n_relevant])
        sums["ndcg@10"] += float((dcg / ideal).sum())
        if per_customer is not None:
            per_customer.extend((dcg / ideal).tolist())
        sums["precision@10"] += float((h10.sum(axis=1) / 10).sum())
        sums["recall@10"] += float((h10.sum(axis=1) / n_relevant).sum())
        sums["recall@20"] += float((hits.sum(axis=1) / n_relevant).sum())
        precision_at_i = np.cumsum(h10, axis=1) / np.arange(1, 11)
        sums["map@10"] += float(((precision_at_i * h10).sum(axis=1) / np.minimum(n_relevant, 10)).sum())
        recommended[top[:, :10].ravel()] = True
    result = {name: total / len(users) for name, total in sums.items()}
    result["coverage@10"] = float(recommended.sum() / n_items)
    result["users"] = len(users)
    return result

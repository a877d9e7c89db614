"""What is bought together: item-to-item co-occurrence in the same basket.

A basket is an order (``order_id``), else a session (``session_id``), else a customer's events at
one instant (see ``data.BASKET_SQL``). Two items score by how often they share a basket,
normalised by how often each appears (cosine over baskets), so that best-sellers do not
neighbour everything. The frequently-bought-together candidate source (docs/adr/0008) reads an
item's row; the same matrix, at a cut, is what the ranker's training sees.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.training.data import EventArrays, Indexer

# A basket of more distinct items than this says little about any pair in it (a bulk order, an
# import whose events share one timestamp, a bot's session) and costs its size squared: skipped.
MAX_BASKET_ITEMS = 50
NEIGHBOURS = 50  # kept per item


def basket_matrix(events: EventArrays, indexer: Indexer) -> sp.csr_matrix:
    """Baskets × items, 1 where the item is in the basket (baskets of 2..MAX_BASKET_ITEMS items)."""
    n_items = len(indexer.item_ids)
    if events.baskets is None or len(events) == 0:
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    _, basket = np.unique(events.baskets, return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(events), dtype=np.float32), (basket, indexer.cols(events.items))),
        shape=(int(basket.max()) + 1, n_items),
    )
    matrix.data[:] = 1.0  # an item twice in a basket is in it once
    sizes = np.diff(matrix.indptr)
    return matrix[(sizes >= 2) & (sizes <= MAX_BASKET_ITEMS)]


def co_occurrence(events: EventArrays, indexer: Indexer, *, neighbours: int = NEIGHBOURS) -> sp.csr_matrix:
    """Items × items: cosine co-occurrence over baskets, each row its ``neighbours`` best (no
    self-pairs, no zeros), in the indexer's item order."""
    baskets = basket_matrix(events, indexer)
    n_items = baskets.shape[1]
    if baskets.shape[0] == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    together = (baskets.T @ baskets).tocsr().astype(np.float32)
    together.setdiag(0)
    together.eliminate_zeros()
    scale = 1.0 / np.sqrt(np.maximum(np.asarray(baskets.sum(axis=0)).ravel(), 1.0)).astype(np.float32)
    cosine = sp.csr_matrix(sp.diags(scale) @ together @ sp.diags(scale))
    return _top_per_row(cosine, neighbours)


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (ties: the lower column first)."""
    rows, cols, values = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if start == end:
            continue
        data, index = matrix.data[start:end], matrix.indices[start:end]
        best = np.lexsort((index, -data))[:k]
        rows.append(np.full(len(best), row))
        cols.append(index[best])
        values.append(data[best])
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape, dtype=np.float32
    )

"""ONNX scoring graphs with the model inside, and their verification against numpy.

``scoring.onnx`` — inputs ``exclude`` (int64 [B, E], item indices to leave out, −1 pads),
``k`` (int64 [1]), the optional ``penalty`` (float32 [B or 1, n_items], added to the scores:
−∞ removes items a filter rules out; it defaults to zeros) plus, by the model's kind:

- ``factors`` / ``dense_history``: ``vector`` (float32 [B, d]) — a customer's factors, or their
  history over all items; scores = ``vector · W`` (W = item factorsᵀ, or EASE's items × items);
- ``neighbours``: ``history`` (int64 [B, H], −1 pads) and ``history_weight`` (float32 [B, H]);
  scores = Σ weight · similarity over each history item's top-K neighbours (Gather +
  ScatterElements(add)).

then the excluded items get −∞ (ScatterElements with reduction ``min``), TopK picks the best k
and Gather turns indices into the store's item ids. Outputs: ``score``, ``index``, ``item_id``
([B, k] each).

``similar.onnx`` — input ``item`` (int64 [B]); outputs each item's precomputed most similar
items: ``item_id`` / ``index`` / ``score`` ([B, K]; pads have an empty id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import scipy.sparse as sp
from onnx import TensorProto, helper, numpy_helper

from recommendations.scoring.sessions import onnx_session
from recommendations.training.algorithms import Fitted, history_vector, need
from recommendations.training.evaluation import top_k

OPSET = 18
VERIFY_CUSTOMERS = 200
VERIFY_K = 10


def _ids_tensor(name: str, item_ids: np.ndarray, pad: bool = False) -> onnx.TensorProto:
    values = [str(item).encode() for item in item_ids] + ([b""] if pad else [])
    return helper.make_tensor(name, TensorProto.STRING, [len(values)], values)  # type: ignore[arg-type]  # bytes


def _mask_topk_nodes(scores: str) -> list[onnx.NodeProto]:
    return [
        helper.make_node("Add", [scores, "penalty"], ["penalised"]),
        helper.make_node("Max", ["exclude", "zero_i64"], ["exclude_index"]),
        helper.make_node("GreaterOrEqual", ["exclude", "zero_i64"], ["exclude_valid"]),
        helper.make_node("Where", ["exclude_valid", "neg_inf", "pos_inf"], ["exclude_update"]),
        helper.make_node(
            "ScatterElements", ["penalised", "exclude_index", "exclude_update"], ["masked"], axis=1, reduction="min"
        ),
        helper.make_node("TopK", ["masked", "k"], ["score", "index"], axis=1, largest=1, sorted=1),
        helper.make_node("Gather", ["item_ids", "index"], ["item_id"], axis=0),
    ]


def _constants() -> list[onnx.TensorProto]:
    return [
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_i64"),
        numpy_helper.from_array(np.array(np.inf, dtype=np.float32), "pos_inf"),
        numpy_helper.from_array(np.array(-np.inf, dtype=np.float32), "neg_inf"),
    ]


_OUTPUTS = [
    helper.make_tensor_value_info("score", TensorProto.FLOAT, ["B", "K"]),
    helper.make_tensor_value_info("index", TensorProto.INT64, ["B", "K"]),
    helper.make_tensor_value_info("item_id", TensorProto.STRING, ["B", "K"]),
]
_EXCLUDE_K = [
    helper.make_tensor_value_info("exclude", TensorProto.INT64, ["B", "E"]),
    helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
    # An input that also has an initializer is optional in ONNX: zeros unless a filter is sent.
    helper.make_tensor_value_info("penalty", TensorProto.FLOAT, ["P", "N"]),
]


def _penalty(n_items: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros((1, n_items), dtype=np.float32), "penalty")


def linear_graph(weights: np.ndarray, item_ids: np.ndarray) -> onnx.ModelProto:
    """scores = vector · weights ([d, n_items]); for factor and dense-history models."""
    d = weights.shape[0]
    nodes = [helper.make_node("MatMul", ["vector", "weights"], ["scores"]), *_mask_topk_nodes("scores")]
    graph = helper.make_graph(
        nodes,
        "shelfwise_linear_scoring",
        [helper.make_tensor_value_info("vector", TensorProto.FLOAT, ["B", d]), *_EXCLUDE_K],
        _OUTPUTS,
        [
            numpy_helper.from_array(np.ascontiguousarray(weights, dtype=np.float32), "weights"),
            _ids_tensor("item_ids", item_ids),
            _penalty(weights.shape[1]),
            *_constants(),
        ],
    )
    return _model(graph)


_ZERO_F32 = numpy_helper.from_array(np.zeros(1, np.float32))


def neighbour_graph(neighbour_ids: np.ndarray, neighbour_scores: np.ndarray, item_ids: np.ndarray) -> onnx.ModelProto:
    """scores[j] = Σ_h weight_h · sim(history_h, j) over each history item's top-K neighbours."""
    n_items = len(item_ids)
    ids = np.where(neighbour_ids >= 0, neighbour_ids, 0).astype(np.int64)  # pads point at item 0 …
    sims = np.where(neighbour_ids >= 0, neighbour_scores, 0).astype(np.float32)  # … with weight 0
    nodes = [
        helper.make_node("Max", ["history", "zero_i64"], ["history_index"]),
        helper.make_node("GreaterOrEqual", ["history", "zero_i64"], ["history_valid"]),
        helper.make_node("Where", ["history_valid", "history_weight", "zero_f32"], ["weight"]),
        helper.make_node("Gather", ["neighbour_ids", "history_index"], ["nbr"], axis=0),  # [B, H, K]
        helper.make_node("Gather", ["neighbour_scores", "history_index"], ["nbr_score"], axis=0),
        helper.make_node("Unsqueeze", ["weight", "axis_2"], ["weight3"]),  # [B, H, 1]
        helper.make_node("Mul", ["nbr_score", "weight3"], ["contrib"]),
        helper.make_node("Shape", ["history"], ["history_shape"]),
        helper.make_node("Slice", ["history_shape", "zero_1d", "one_1d"], ["batch"]),
        helper.make_node("Concat", ["batch", "minus_one_1d"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["nbr", "flat_shape"], ["nbr_flat"]),
        helper.make_node("Reshape", ["contrib", "flat_shape"], ["contrib_flat"]),
        helper.make_node("Concat", ["batch", "n_items_1d"], ["scores_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["scores_shape"], ["zeros"], value=_ZERO_F32),
        helper.make_node("ScatterElements", ["zeros", "nbr_flat", "contrib_flat"], ["scores"], axis=1, reduction="add"),
        *_mask_topk_nodes("scores"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "shelfwise_neighbour_scoring",
        [
            helper.make_tensor_value_info("history", TensorProto.INT64, ["B", "H"]),
            helper.make_tensor_value_info("history_weight", TensorProto.FLOAT, ["B", "H"]),
            *_EXCLUDE_K,
        ],
        _OUTPUTS,
        [
            numpy_helper.from_array(ids, "neighbour_ids"),
            numpy_helper.from_array(sims, "neighbour_scores"),
            _ids_tensor("item_ids", item_ids),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f32"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis_2"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_1d"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one_1d"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one_1d"),
            numpy_helper.from_array(np.array([n_items], dtype=np.int64), "n_items_1d"),
            _penalty(n_items),
            *_constants(),
        ],
    )
    return _model(graph)


def similar_graph(similar_ids: np.ndarray, similar_scores: np.ndarray, item_ids: np.ndarray) -> onnx.ModelProto:
    """Each item's precomputed most similar items (pads → empty id, −∞ score)."""
    n_items = len(item_ids)
    ids = np.where(similar_ids >= 0, similar_ids, n_items).astype(np.int64)
    scores = np.where(similar_ids >= 0, similar_scores, -np.inf).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["similar_ids", "item"], ["index"], axis=0),
        helper.make_node("Gather", ["similar_scores", "item"], ["score"], axis=0),
        helper.make_node("Gather", ["item_ids", "index"], ["item_id"], axis=0),
    ]
    graph = helper.make_graph(
        nodes,
        "shelfwise_similar_items",
        [helper.make_tensor_value_info("item", TensorProto.INT64, ["B"])],
        _OUTPUTS,
        [
            numpy_helper.from_array(ids, "similar_ids"),
            numpy_helper.from_array(scores, "similar_scores"),
            _ids_tensor("item_ids", item_ids, pad=True),
        ],
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="shelfwise")
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    return model


def scoring_graph(fitted: Fitted, item_ids: np.ndarray) -> onnx.ModelProto:
    if fitted.kind == "factors":
        return linear_graph(need(fitted.item_factors, "item factors").T, item_ids)
    if fitted.kind == "dense_history":
        return linear_graph(need(fitted.weights, "weights"), item_ids)
    ids, scores = need(fitted.neighbour_ids, "neighbours"), need(fitted.neighbour_scores, "scores")
    return neighbour_graph(ids, scores, item_ids)


def exclusion_matrix(history: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """The rows' history items as a padded index matrix (−1 pads, at least one column)."""
    sub = history[rows]
    width = max(int(np.diff(sub.indptr).max(initial=0)), 1)
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for position in range(len(rows)):
        cols = sub.indices[sub.indptr[position] : sub.indptr[position + 1]]
        out[position, : len(cols)] = cols
    return out


def onnx_inputs(fitted: Fitted, history: sp.csr_matrix, rows: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The scoring graph's inputs for known customers ``rows`` (their history is excluded)."""
    exclude = exclusion_matrix(history, rows)
    inputs: dict[str, np.ndarray] = {"exclude": exclude, "k": np.array([k], dtype=np.int64)}
    if fitted.kind == "factors":
        factors = need(fitted.user_factors, "customer factors")
        inputs["vector"] = np.ascontiguousarray(factors[rows], dtype=np.float32)
    elif fitted.kind == "dense_history":
        inputs["vector"] = np.asarray(history_vector(history)[rows].todense(), dtype=np.float32)
    else:
        inputs["history"] = exclude
        inputs["history_weight"] = (exclude >= 0).astype(np.float32)
    return inputs


@dataclass
class Verification:
    customers: int
    mismatches: int
    max_score_error: float

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


def verify(model_bytes: bytes, fitted: Fitted, history: sp.csr_matrix, seed: int = 0) -> Verification:
    """ONNX Runtime's top-k must equal numpy's on a sample of customers (ties aside)."""
    n_customers = history.shape[0]
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.diff(history.indptr) > 0)
    rows = (
        np.sort(rng.choice(active, size=min(VERIFY_CUSTOMERS, len(active)), replace=False))
        if len(active)
        else np.arange(0)
    )
    if n_customers == 0 or len(rows) == 0:
        return Verification(0, 0, 0.0)
    k = min(VERIFY_K, history.shape[1] - 1)
    scores_np = fitted.score(rows, history_vector(history)).astype(np.float32)
    expected = top_k(scores_np, history[rows], k)
    got_scores, got_index, _ids = onnx_session(model_bytes).run(None, onnx_inputs(fitted, history, rows, k))
    mismatches, max_error = 0, 0.0
    for position in range(len(rows)):
        want = scores_np[position, expected[position]]
        max_error = max(max_error, float(np.max(np.abs(want - got_scores[position]))))
        # Equal scores may come in either order; anything else is a real difference.
        if not np.array_equal(expected[position], got_index[position]) and not np.allclose(
            np.sort(want), np.sort(got_scores[position]), rtol=1e-5, atol=1e-5
        ):
            mismatches += 1
    return Verification(len(rows), mismatches, max_error)

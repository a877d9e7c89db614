"""ONNX Runtime sessions, configured the same way where a graph is verified (training) and where it
serves (the loaded model versions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime as ort  # imported lazily (see onnx_session)


def onnx_session(model_bytes: bytes) -> ort.InferenceSession:
    """An ONNX Runtime session on one thread (parallelism comes from processes)."""
    # Imported here, not at module level: ONNX Runtime starts native threads when imported, and a
    # process forked after that (gunicorn's preloaded master forking workers) hangs at exit in
    # ONNX Runtime's destructors. Only the processes that score import it.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

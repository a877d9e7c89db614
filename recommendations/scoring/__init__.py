"""What training and serving share to score: ONNX Runtime sessions, ALS fold-in, the ANN index."""

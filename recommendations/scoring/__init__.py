"""What training and serving share to score: ONNX Runtime sessions and ALS fold-in."""

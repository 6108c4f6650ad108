"""The core: everything that knows ezkl, ONNX and the bundle format. Imports no UI or web code."""

"""Wake-keypoint heading model: physics renderer, synthetic chips, network, training, inference.

This package's ``__init__`` imports nothing, so numpy-only users (the synthetic product writer
imports :mod:`models.wake_render`) never pay for importing torch.
"""

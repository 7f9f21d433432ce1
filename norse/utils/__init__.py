"""Utilities outside the PyTorch API: none yet. The package exists because Norse 1.1 has
it (``import norse`` gives ``norse.utils``); the PyTorch utilities live in
:mod:`norse.torch.utils`."""

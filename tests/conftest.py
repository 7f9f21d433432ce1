"""Suite-wide set-up.

Triton reads ``TRITON_INTERPRET`` when it is first imported, and other tests (e.g.
``torch.compile``) may import it before the CUDA-kernel tests run; without a GPU the
kernels can only run in the interpreter, so enable it before anything imports Triton.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

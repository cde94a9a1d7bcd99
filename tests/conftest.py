"""Shared test fixtures."""

import os

import pytest
import torch

# The Triton kernels (revsnn.kernels) are checked on CPU under Triton's interpreter, which is chosen
# when they are first imported; on a CUDA machine they compile for the GPU instead.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def one_thread():
    """Run a test with one intra-op thread: for tiny tensors on a small CPU, two threads mostly
    wait for each other (5-10x slower when other jobs share the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

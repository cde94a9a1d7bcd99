"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test with one intra-op thread: for tiny tensors on a small CPU, two threads mostly
    wait for each other (5-10x slower when other jobs share the machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

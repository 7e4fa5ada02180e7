"""Shared test settings."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run the suite on one torch thread: results that depend on the reduction
    order (the accuracy test's threshold, exact-resume comparisons) are then
    reproducible, and parallel jobs on a small machine do not oversubscribe it."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

"""The brute-force checks themselves."""

from __future__ import annotations

import pytest
import torch

from genood.flows.base import Flow
from genood.flows.testing import assert_flow_exact, jacobian_logdet


def test_jacobian_logdet_of_a_linear_map() -> None:
    matrix = torch.randn(6, 6, dtype=torch.float64)
    x = torch.randn(3, 6, dtype=torch.float64)
    logdet = jacobian_logdet(lambda v: v @ matrix.T, x)
    assert torch.allclose(logdet, torch.linalg.slogdet(matrix)[1].expand(3), atol=1e-10)


class _WrongLogdet(Flow):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 2 * x, x.new_zeros(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z / 2


def test_assert_flow_exact_catches_a_wrong_logdet() -> None:
    with pytest.raises(AssertionError, match="brute-force"):
        assert_flow_exact(_WrongLogdet(), torch.randn(2, 1, 2, 2, dtype=torch.float64))

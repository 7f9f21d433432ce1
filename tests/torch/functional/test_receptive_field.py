"""Receptive fields: Gaussian moments, rotation, derivatives, parameter grids."""

import math

import pytest
import torch

from norse.torch.functional import receptive_field as rf
from norse.torch.functional.receptive_field import (
    covariance_matrix,
    derive_kernel,
    gaussian_kernel,
    spatial_parameters,
    spatial_receptive_field,
    spatial_receptive_fields_with_derivatives,
    spatio_temporal_parameters,
    temporal_scale_distribution,
)


def grid(size, domain, dtype=torch.float64):
    axis = torch.linspace(-domain, domain, size, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return xs, ys, (2 * domain / (size - 1)) ** 2


def test_gaussian_kernel_is_a_density_with_the_given_covariance():
    c = covariance_matrix(
        torch.tensor(1.5, dtype=torch.float64),
        torch.tensor(0.6, dtype=torch.float64),
        torch.tensor(0.4, dtype=torch.float64),
    )
    k = gaussian_kernel(121, c, domain=10)
    xs, ys, area = grid(121, 10)
    assert (k.sum() * area).item() == pytest.approx(1.0, rel=1e-6)
    moments = (
        torch.tensor(
            [
                [(k * xs * xs).sum(), (k * xs * ys).sum()],
                [(k * xs * ys).sum(), (k * ys * ys).sum()],
            ]
        )
        * area
    )
    torch.testing.assert_close(moments, c, rtol=1e-5, atol=1e-6)
    # principal axis along the angle, standard deviations 1.5 and 0.6
    eigenvalues, vectors = torch.linalg.eigh(c)
    torch.testing.assert_close(
        eigenvalues, torch.tensor([0.36, 2.25], dtype=torch.float64)
    )
    assert abs(math.atan2(vectors[1, 1], vectors[0, 1]) % math.pi - 0.4) < 1e-9


def test_covariance_of_one_element_tensors_is_two_by_two_and_batched_otherwise():
    assert covariance_matrix(
        torch.tensor([2.0]), torch.tensor([0.5]), torch.tensor([0.3])
    ).shape == (2, 2)
    assert covariance_matrix(torch.ones(4), torch.ones(4), torch.zeros(4)).shape == (
        4,
        2,
        2,
    )


def test_field_sums_to_one_and_rotates_with_the_angle():
    f0 = spatial_receptive_field(2.0, 0.0, 2.0, 15, domain=5)
    assert f0.shape == (15, 15) and f0.sum().item() == pytest.approx(1.0, rel=1e-6)
    # a quarter turn swaps the axes: on the square grid it is the transpose
    f90 = spatial_receptive_field(2.0, math.pi / 2, 2.0, 15, domain=5)
    torch.testing.assert_close(f90, f0.T, atol=1e-7, rtol=1e-5)
    # rotating by 90 degrees equals inverting the ratio
    torch.testing.assert_close(
        spatial_receptive_field(2.0, 0.3 + math.pi / 2, 2.0, 15, domain=5),
        spatial_receptive_field(2.0, 0.3, 0.5, 15, domain=5),
        atol=1e-7,
        rtol=1e-5,
    )
    # ratio 1 is circular: independent of the angle
    torch.testing.assert_close(
        spatial_receptive_field(2.0, 0.0, 1.0, 15, domain=5),
        spatial_receptive_field(2.0, 1.1, 1.0, 15, domain=5),
    )


def test_first_derivative_is_the_scale_normalised_directional_derivative():
    # Central differences per pixel along dim 0 (rows, y) at angle 0, as in Norse 1.1;
    # they converge (second order) to the analytic derivative times the pixel size.
    domain, scale, ratio = 6.0, 1.3, 1.4
    errors = []
    for size in (101, 201, 401):
        field = spatial_receptive_field(
            torch.tensor(scale, dtype=torch.float64),
            torch.tensor(0.0, dtype=torch.float64),
            torch.tensor(ratio, dtype=torch.float64),
            size,
            dx=1,
            domain=domain,
        )
        xs, ys, area = grid(size, domain)
        var_x, var_y = scale * ratio**2, scale / ratio**2
        g = torch.exp(-(xs**2) / (2 * var_x) - ys**2 / (2 * var_y))
        g = g / g.sum()
        h = 2 * domain / (size - 1)
        analytic = scale * (-ys / var_y) * g * h
        inner = (slice(2, -2), slice(2, -2))
        error = (field[inner] - analytic[inner]).abs().max() / analytic.abs().max()
        errors.append(error.item())
        assert abs(field.sum().item()) < 1e-9  # odd: no DC response
        torch.testing.assert_close(field, -field.flip(0))
    assert errors[-1] < 1e-3
    assert all(3.5 < a / b < 4.5 for a, b in zip(errors[:-1], errors[1:])), errors


def test_second_derivative_and_mixed_derivatives_commute():
    a = rf.derive_spatial_receptive_field_single(
        spatial_receptive_field(1.0, 0.3, 1.5, 11), 1.0, 0.3, 1, 1
    )
    x = derive_kernel(spatial_receptive_field(1.0, 0.3, 1.5, 11), torch.tensor(0.3))
    b = derive_kernel(x, torch.tensor(0.3 + math.pi / 2))
    torch.testing.assert_close(a, b)
    assert spatial_receptive_field(1.0, 0.3, 1.5, 11, dx=1, dy=1).shape == (11, 11)


def test_fields_are_differentiable_in_scale_angle_ratio():
    def field(scale, angle, ratio):
        return spatial_receptive_field(scale, angle, ratio, 7, dx=1, domain=3)

    args = tuple(
        torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for v in (1.2, 0.4, 1.7)
    )
    assert torch.autograd.gradcheck(field, args)


def test_spatial_parameters_grid_order_and_counts():
    scales = torch.tensor([0.2, 0.5, 1.0], requires_grad=True)
    angles = torch.tensor([0.0, 0.5 * torch.pi, torch.pi], requires_grad=True)
    ratios = torch.tensor([0.2, 0.5, 1.0], requires_grad=True)
    p = spatial_parameters(scales, angles, ratios, 1, include_replicas=True)
    assert p.shape == (108, 5)  # 27 combinations x 4 derivative pairs
    assert p[:4, 3:].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    p.sum().backward()
    assert scales.grad is not None and ratios.grad is not None
    # without replicas the eccentric fields come first, the circular ones last
    q = spatial_parameters(scales.detach(), angles.detach(), ratios.detach(), 0)
    assert q.shape == (27, 5)
    assert torch.all(q[:18, 2] != 1) and torch.all(q[18:, 2] == 1)
    listed = spatial_parameters(scales, angles, ratios, [(0, 0), (2, 1)])
    tensor = spatial_parameters(scales, angles, ratios, torch.tensor([[0, 0], [2, 1]]))
    torch.testing.assert_close(listed, tensor)


def test_batched_fields_equal_individual_fields():
    p = spatial_parameters(
        torch.tensor([0.7, 1.5]), torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0]), 2
    )
    batched = spatial_receptive_fields_with_derivatives(p, 9, domain=4)
    single = torch.stack(
        [spatial_receptive_field(r[0], r[1], r[2], 9, r[3], r[4], domain=4) for r in p]
    )
    assert batched.shape == (len(p), 9, 9)
    torch.testing.assert_close(batched, single)


def test_generate_fields_backward():
    p = torch.tensor([[1, 1, 1, 1, 1.0]], requires_grad=True)
    f = spatial_receptive_fields_with_derivatives(p, 9)
    assert f.shape == (1, 9, 9)
    f.sum().backward()
    assert p.grad is not None and p.grad[0, :3].abs().sum() > 0


def test_temporal_scale_distribution():
    taus = temporal_scale_distribution(5, min_scale=1.0, c=1.5)
    torch.testing.assert_close(taus**2, 1.5 ** (2 * torch.arange(5.0)))
    bounded = temporal_scale_distribution(4, min_scale=0.5, max_scale=16.0)
    assert bounded[0].item() == pytest.approx(0.5**0.5)
    assert bounded[-1].item() == pytest.approx(16**0.5)
    ratios = (bounded[1:] / bounded[:-1]) ** 2
    torch.testing.assert_close(ratios, ratios[:1].expand(3))  # log-spaced
    assert temporal_scale_distribution(1, min_scale=4.0, max_scale=9.0).tolist() == [
        2.0
    ]


def test_spatio_temporal_parameters():
    p = spatio_temporal_parameters(
        torch.tensor([1.0, 2.0]),
        torch.tensor([0.0]),
        torch.tensor([1.0]),
        0,
        torch.tensor([1.0, 2.0, 3.0]),
    )
    assert p.shape == (6, 6)
    assert p[:3, 5].tolist() == [1.0, 2.0, 3.0] and p[3, 0].item() == 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="Derivatives"):
        spatial_parameters(torch.ones(1), torch.ones(1), torch.ones(1), "first")
    with pytest.raises(ValueError, match="derivatives"):
        spatial_parameters(torch.ones(1), torch.ones(1), torch.ones(1), -1)
    with pytest.raises(ValueError, match="combinations"):
        spatial_receptive_fields_with_derivatives(torch.ones(3, 4), 9)
    with pytest.raises(ValueError, match="n_scales"):
        temporal_scale_distribution(0)

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.receptive_field import (
    spatial_receptive_fields_with_derivatives,
)
from norse.torch.module.receptive_field import (
    ParameterizedSpatialReceptiveField2d,
    SampledSpatialReceptiveField2d,
    SpatialReceptiveField2d,
    TemporalReceptiveField,
)


def test_exported():
    assert norse.SpatialReceptiveField2d is SpatialReceptiveField2d
    assert norse.SampledSpatialReceptiveField2d is SampledSpatialReceptiveField2d
    assert (
        norse.ParameterizedSpatialReceptiveField2d
        is ParameterizedSpatialReceptiveField2d
    )
    assert norse.TemporalReceptiveField is TemporalReceptiveField


def test_weights_and_output_equal_a_convolution_with_the_fields():
    torch.manual_seed(0)
    parameters = torch.tensor([[1.0, 0.0, 1.0, 0, 0], [2.0, 0.5, 2.0, 1, 0]])
    m = SpatialReceptiveField2d(3, 9, parameters, padding=4)
    fields = spatial_receptive_fields_with_derivatives(parameters, 9, domain=8)
    assert m.weights.shape == (2, 3, 9, 9) and m.out_channels == 2
    x = torch.rand(2, 3, 12, 12)
    expected = torch.nn.functional.conv2d(
        x, fields[:, None].expand(-1, 3, -1, -1), padding=4
    )
    torch.testing.assert_close(m(x), expected)


def test_not_aggregated_applies_every_field_to_every_channel():
    torch.manual_seed(0)
    parameters = torch.tensor([[1.0, 0.0, 1.0, 0, 0], [2.0, 0.5, 2.0, 1, 0]])
    m = SpatialReceptiveField2d(3, 5, parameters, aggregate=False, domain=3)
    assert m.out_channels == 6 and m.weights.shape == (6, 3, 5, 5)
    fields = spatial_receptive_fields_with_derivatives(parameters, 5, domain=3)
    x = torch.rand(2, 3, 8, 8)
    y = m(x)
    for channel in range(3):
        expected = torch.nn.functional.conv2d(
            x[:, channel : channel + 1], fields[:, None]
        )
        torch.testing.assert_close(y[:, 2 * channel : 2 * channel + 2], expected)


@pytest.mark.parametrize("optimize", [True, False])
def test_kernels_follow_the_module_to_another_dtype(optimize):
    parameters = torch.tensor([[1.0, 0.3, 1.5, 1, 0]])
    m = SpatialReceptiveField2d(1, 7, parameters, optimize_fields=optimize).double()
    assert m.rf_parameters.dtype == torch.float64
    y = m(torch.rand(2, 1, 9, 9, dtype=torch.float64))
    assert y.dtype == torch.float64 and m.weights.dtype == torch.float64
    sampled = SampledSpatialReceptiveField2d(
        1,
        7,
        torch.ones(1),
        torch.zeros(1),
        torch.ones(1),
        0,
        optimize_scales=optimize,
        optimize_angles=False,
    ).double()
    assert sampled.angles.dtype == torch.float64  # fixed generators move too
    assert sampled(torch.rand(1, 1, 7, 7, dtype=torch.float64)).dtype == torch.float64
    assert "angles" not in sampled.state_dict()  # checkpoints keep Norse 1.1's keys


def test_update_flag_and_kernels_follow_the_optimiser():
    # Norse 1.1's checks
    parameters = torch.tensor([[1, 0, 1, 0, 0.0]])
    m = SpatialReceptiveField2d(1, 9, rf_parameters=parameters)
    assert not m.has_updated
    old_kernels = m.weights.detach().clone()
    optim = torch.optim.SGD(list(m.parameters()), lr=1)
    y = m(torch.eye(9).view(1, 1, 9, 9))
    y.sum().backward()
    assert m.has_updated
    assert m.weights.grad_fn is not None
    assert m.rf_parameters.grad is not None and m.rf_parameters.grad.abs().sum() > 0
    optim.step()
    m._update_weights()
    assert torch.all(
        torch.eq(m.rf_parameters, parameters)
    )  # shared storage, as in Norse
    assert not torch.all(torch.eq(old_kernels, m.weights))
    assert not m.has_updated


def test_cached_kernels_serve_many_steps_and_training_iterates():
    m = SpatialReceptiveField2d(1, 7, torch.tensor([[1.0, 0.2, 1.5, 0, 0]]))
    optim = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.rand(4, 1, 7, 7)
    for _ in range(3):  # forward over several time steps, one backward per iteration
        first = m(x)
        weights = m.weights
        second = m(x)
        assert m.weights is weights  # not recomputed within an iteration
        (first.sum() + second.sum()).backward()
        optim.step()
        optim.zero_grad()
    m.zero_grad()
    m(x).sum().backward()  # no step: the consumed kernels are rebuilt, no graph error
    m(x).sum().backward()
    with torch.no_grad():
        m(x)  # rebuilds the kernels consumed by the last backward
        weights = m.weights
        m(x)
        assert m.weights is weights


@pytest.mark.parametrize(
    "kind,n_ratios",
    [(SampledSpatialReceptiveField2d, 2), (ParameterizedSpatialReceptiveField2d, 32)],
)
def test_generated_fields_follow_their_trainable_generators(kind, n_ratios):
    # Norse 1.1's checks: only the ratios train; an optimiser step changes the kernels
    scales = torch.tensor([1.0, 2.0])
    angles = torch.tensor([0.0, 1.0])
    ratios = torch.tensor([0.5, 2.0])
    m = kind(1, 9, scales, angles, ratios, 1, False, False, True)
    assert m.submodule.weights.shape == (2 * 2 * 2 * 4, 1, 9, 9)
    assert m.ratios.shape == (n_ratios,)
    ratios_copy = m.ratios.detach().clone()
    old_kernels = m.submodule.weights.detach().clone()
    optim = torch.optim.SGD(list(m.parameters()), lr=1)
    y = m(torch.ones(1, 1, 9, 9))
    y.sum().backward()
    assert m.submodule.weights.grad_fn is not None
    assert m.ratios.grad is not None
    assert m.scales.grad is None and m.angles.grad is None
    assert m.has_updated is True
    optim.step()
    m._update_weights()
    assert not torch.all(torch.eq(m.ratios, ratios_copy))
    assert not torch.all(torch.eq(old_kernels, m.submodule.weights))
    expected = spatial_receptive_fields_with_derivatives(
        m._generated_parameters().detach(), 9, domain=8
    )
    torch.testing.assert_close(m.submodule.weights[:, 0], expected)


def test_sampled_accepts_derivative_tensor_as_in_norse_docstring():
    m = SampledSpatialReceptiveField2d(
        1,
        9,
        torch.tensor([1.0, 2.0]),
        torch.tensor([0.0, 1.0]),
        torch.tensor([0.5, 1.0]),
        torch.tensor([[0, 0]]),
        optimize_scales=False,
        optimize_angles=False,
        optimize_ratios=True,
    )
    assert m(torch.ones(1, 1, 9, 9)).shape == (1, 8, 1, 1)


# The smallest scale has dt * tau_inv = 1 exactly (the default of Norse 1.1): a pass-through,
# about which the generic parameter check warns.
@pytest.mark.filterwarnings("ignore:dt \\* p.tau_mem_inv = 1 >= 1")
def test_temporal_receptive_field_integrates_with_log_spaced_time_constants():
    m = TemporalReceptiveField((2, 3), n_scales=3, c=1.5, dt=0.001)
    assert m.ps.shape == (3, 2, 1)
    expected = 1000.0 / (1.5 ** torch.arange(3.0))
    torch.testing.assert_close(m.ps[:, 0, 0].detach(), expected)
    x = torch.zeros(6, 2, 3)
    x[0] = 1.0
    state, outputs = None, []
    for step in x:
        out, state = m(step, state)
        outputs.append(out)
    out = torch.stack(outputs)  # (T, n_scales, 2, 3)
    assert out.shape == (6, 3, 2, 3)
    # a box leaky integrator: impulse response dt*tau_inv * (1 - dt*tau_inv)**k
    for scale in range(3):
        rate = 0.001 * expected[scale]
        response = rate * (1 - rate) ** torch.arange(6.0)
        torch.testing.assert_close(out[:, scale, 0, 0], response)
    out.sum().backward()
    assert m.ps.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="rf_parameters"):
        SpatialReceptiveField2d(1, 9, torch.ones(3))
    with pytest.raises(ValueError, match="size"):
        SpatialReceptiveField2d(1, 0, torch.ones(1, 5))
    m = SpatialReceptiveField2d(2, 5, torch.tensor([[1.0, 0.0, 1.0, 0, 0]]))
    with pytest.raises(ValueError, match="in_channels=2"):
        m(torch.ones(1, 3, 9, 9))
    with pytest.raises(ValueError, match="n_scales"):
        TemporalReceptiveField((2,), n_scales=2, time_constants=torch.ones(3, 2))


@pytest.mark.parametrize("optimize", [True, False])
def test_state_dict_keys_stay_those_of_norse_after_a_forward(optimize):
    """The cache of the parameters' identity is no module attribute: the trained field
    parameters appear once, so Norse 1.1's checkpoints load strictly (and ours too)."""
    parameters = torch.tensor([[1.0, 0.3, 1.5, 1, 0]])
    m = SpatialReceptiveField2d(1, 7, parameters, optimize_fields=optimize)
    before = set(m.state_dict())
    m(torch.rand(1, 1, 9, 9))
    assert set(m.state_dict()) == before
    assert len(list(m.parameters())) == (1 if optimize else 0)
    SpatialReceptiveField2d(1, 7, parameters, optimize_fields=optimize).load_state_dict(
        m.state_dict(), strict=True
    )


def test_fields_after_loading_equal_values_in_place_still_backpropagate():
    """load_state_dict writes the parameters in place; with equal values the cached
    fields must still be recomputed (their graph holds the old version)."""
    m = SpatialReceptiveField2d(
        1, 7, torch.tensor([[1.0, 0.3, 1.5, 1, 0]]), optimize_fields=True
    )
    m.load_state_dict(m.state_dict(), strict=True)
    m(torch.rand(2, 1, 9, 9)).sum().backward()
    assert m.rf_parameters.grad is not None

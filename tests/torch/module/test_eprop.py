"""The e-prop trainer: its gradients are BPTT's where e-prop is exact, they reach
``.grad`` through ``backward()`` (or ``learn``), and its memory does not grow with T."""

import pytest
import torch

from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_step,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNState,
    lsnn_feed_forward_step,
    lsnn_step,
)
from norse.torch.module.eprop import EProp, Population
from norse.torch.module.lif import LIFRecurrentCell
from norse.torch.module.lsnn import LSNNRecurrentCell

F64 = torch.float64
DT = 1e-3
B, N_IN, K, T = 3, 4, 2, 60
POPULATIONS = [
    Population(3, LIFParameters(v_th=torch.tensor(0.3), alpha=torch.tensor(5.0))),
    Population(
        4,
        LSNNParameters(
            v_th=torch.tensor(0.3),
            beta=torch.tensor(0.2),
            tau_adapt_inv=torch.tensor(1 / 0.05),
            alpha=torch.tensor(5.0),
        ),
    ),
]
H = 7


def _network(seed=1, recurrent_scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    w_in = torch.nn.Parameter(torch.randn(H, N_IN, generator=generator, dtype=F64) * 3)
    w_rec = torch.nn.Parameter(
        torch.randn(H, H, generator=generator, dtype=F64) * recurrent_scale
    )
    torch.manual_seed(seed)
    readout = torch.nn.Linear(H, K).to(F64)
    return w_in, w_rec, readout


def _data(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, N_IN, generator=generator) < 0.3).to(F64)
    weights = torch.zeros(T, B, dtype=F64)
    weights[40:50, 0] = 0.1  # a readout window per sample
    weights[45:55, 1] = 0.1
    weights[20:30, 2] = 0.1
    return x, weights, torch.tensor([0, 1, 1])


def _loss(output, counts, targets):
    return (
        torch.nn.functional.cross_entropy(output, targets)
        + 0.1 * ((counts - 2.0) ** 2).sum()
    )


def _bptt(w_in, w_rec, readout, x, weights, targets, detach_reset):
    """Autograd through the network; the recurrent spikes carry no gradient, which is
    the one path e-prop drops. ``detach_reset``: the populations step as
    :func:`lif_step`/:func:`lsnn_step` (fed their current through identity weights)."""
    states = []
    for size, p in POPULATIONS:
        zeros = torch.zeros(B, size, dtype=F64)
        b = p.v_th.to(F64).expand(B, size) if isinstance(p, LSNNParameters) else None
        if detach_reset:
            states.append(
                LSNNState(zeros, zeros, zeros, b)
                if b is not None
                else LIFState(zeros, zeros, zeros)
            )
        else:
            states.append(
                LSNNFeedForwardState(zeros, zeros, b)
                if b is not None
                else LIFFeedForwardState(zeros, zeros)
            )
    readout_state = LIState(torch.zeros(B, K, dtype=F64), torch.zeros(B, K, dtype=F64))
    z = torch.zeros(B, H, dtype=F64)
    output, counts = 0, 0
    for x_t, w_t in zip(x, weights):
        current = x_t @ w_in.T + z.detach() @ w_rec.T
        spikes, start = [], 0
        for index, (size, p) in enumerate(POPULATIONS):
            c = current[:, start : start + size]
            lsnn = isinstance(p, LSNNParameters)
            if detach_reset:
                step = lsnn_step if lsnn else lif_step
                eye = torch.eye(size, dtype=F64)
                z_p, states[index] = step(c, states[index], eye, 0 * eye, p, DT)
            else:
                step = lsnn_feed_forward_step if lsnn else lif_feed_forward_step
                z_p, states[index] = step(c, states[index], p, DT)
            spikes.append(z_p)
            start += size
        z = torch.cat(spikes, 1)
        y, readout_state = li_feed_forward_step(
            readout(z), readout_state, LIParameters(), DT
        )
        output = output + w_t[:, None] * y
        counts = counts + z.sum(0)
    _loss(output, counts, targets).backward()
    return output.detach(), counts.detach()


def _grads(w_in, w_rec, readout):
    grads = [w_in.grad, w_rec.grad, readout.weight.grad, readout.bias.grad]
    for tensor in (w_in, w_rec, readout.weight, readout.bias):
        tensor.grad = None
    return grads


def _eprop(w_in, w_rec, readout, x, weights, detach_reset, **kwargs):
    trainer = EProp(
        w_in, w_rec, POPULATIONS, readout, dt=DT, detach_reset=detach_reset, **kwargs
    )
    for x_t, w_t in zip(x, weights):
        trainer(x_t, w_t if w_t.any() else None)
    return trainer


@pytest.mark.parametrize("detach_reset", [True, False])
def test_gradients_are_bptts_without_the_recurrent_paths(detach_reset):
    w_in, w_rec, readout = _network()
    x, weights, targets = _data()
    output, counts = _bptt(w_in, w_rec, readout, x, weights, targets, detach_reset)
    expected = _grads(w_in, w_rec, readout)
    assert counts.sum() > 100  # every population spikes, the windows see spikes

    trainer = _eprop(w_in, w_rec, readout, x, weights, detach_reset)
    torch.testing.assert_close(trainer.window_output, output, rtol=0, atol=0)
    torch.testing.assert_close(trainer.spike_count, counts, rtol=0, atol=0)
    window_output, spike_count = trainer.sums()
    _loss(window_output, spike_count, targets).backward()
    for grad, reference in zip(_grads(w_in, w_rec, readout), expected):
        torch.testing.assert_close(grad, reference, rtol=1e-10, atol=1e-10)

    # learn(): the same with the loss derivatives given by hand
    trainer = _eprop(w_in, w_rec, readout, x, weights, detach_reset)
    output = trainer.window_output.clone().requires_grad_()
    torch.nn.functional.cross_entropy(output, targets).backward()
    trainer.learn(output.grad, 0.2 * (trainer.spike_count - 2.0))
    for grad, reference in zip(_grads(w_in, w_rec, readout), expected):
        torch.testing.assert_close(grad, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell_class", [LIFRecurrentCell, LSNNRecurrentCell])
@pytest.mark.parametrize("loss_at", ["every_step", "last_step"])
def test_a_recurrent_cell_without_recurrent_weights_learns_bptts_gradient(
    cell_class, loss_at
):
    # With zero recurrent weights no path leaves a neuron: e-prop is BPTT through the
    # cell's own steps (lif_step / lsnn_step), recurrent weights included.
    torch.manual_seed(0)
    p = (
        LIFParameters(v_th=torch.tensor(0.3), alpha=torch.tensor(5.0))
        if cell_class is LIFRecurrentCell
        else LSNNParameters(
            v_th=torch.tensor(0.3), beta=torch.tensor(0.2), alpha=torch.tensor(5.0)
        )
    )
    cell = cell_class(
        N_IN,
        H,
        p,
        autapses=True,
        recurrent_weights=torch.nn.Parameter(torch.zeros(H, H)),
    ).to(F64)
    with torch.no_grad():
        cell.input_weights.mul_(4)
    readout = torch.nn.Linear(H, K).to(F64)
    x, _, _ = _data(3)
    targets = torch.randn(T, B, K, dtype=F64)
    last = T - 1 if loss_at == "last_step" else 0

    state, readout_state, loss = None, None, 0
    for t, x_t in enumerate(x):
        z, state = cell(x_t, state)
        if readout_state is None:
            readout_state = LIState(
                torch.zeros(B, K, dtype=F64), torch.zeros(B, K, dtype=F64)
            )
        y, readout_state = li_feed_forward_step(
            readout(z), readout_state, LIParameters(), DT
        )
        if t >= last:
            loss = loss + ((y - targets[t]) ** 2).sum()
    loss.backward()
    expected = _grads(cell.input_weights, cell.recurrent_weights, readout)
    assert expected[1].abs().max() > 0

    trainer = EProp.from_cell(cell, readout)
    for t, x_t in enumerate(x):
        y, z = trainer(x_t, 1.0 if t >= last else None)
        if t >= last:  # a window of one step: the loss of this step
            output, _ = trainer.sums()
            ((output - targets[t]) ** 2).sum().backward()
    for grad, reference in zip(
        _grads(cell.input_weights, cell.recurrent_weights, readout), expected
    ):
        torch.testing.assert_close(grad, reference, rtol=1e-9, atol=1e-9)


def test_random_feedback_replaces_the_readout_weights_in_the_learning_signal():
    w_in, w_rec, readout = _network()
    x, weights, targets = _data()
    random = _eprop(
        w_in,
        w_rec,
        readout,
        x,
        weights,
        False,
        feedback="random",
        generator=torch.Generator().manual_seed(5),
    )
    feedback = random.random_feedback.clone()
    assert "random_feedback" in random.state_dict()
    output, counts = random.sums()
    _loss(output, counts, targets).backward()
    with_random = _grads(w_in, w_rec, readout)
    # symmetric feedback through readout weights equal to the random matrix gives the
    # same hidden gradients (the output error is taken with the true readout)
    symmetric = _eprop(w_in, w_rec, readout, x, weights, False)
    output = symmetric.window_output.clone().requires_grad_()
    counts = symmetric.spike_count
    (error,) = torch.autograd.grad(_loss(output, counts, targets), output)
    with torch.no_grad():
        readout.weight.copy_(feedback)
    symmetric_with_b = _eprop(w_in, w_rec, readout, x, weights, False)
    symmetric_with_b.learn(error, 0.2 * (counts - 2.0))
    torch.testing.assert_close(w_in.grad, with_random[0])
    torch.testing.assert_close(w_rec.grad, with_random[1])
    assert not torch.allclose(
        with_random[0], _reference_symmetric_input_grad(x, weights, targets), atol=1e-6
    )


def _reference_symmetric_input_grad(x, weights, targets):
    w_in, w_rec, readout = _network()
    trainer = _eprop(w_in, w_rec, readout, x, weights, False)
    output, counts = trainer.sums()
    _loss(output, counts, targets).backward()
    return w_in.grad


def test_memory_does_not_grow_with_time():
    w_in, w_rec, readout = _network()
    trainer = EProp(w_in, w_rec, POPULATIONS, readout, dt=DT)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    x = torch.ones(B, N_IN, dtype=F64)
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        for t in range(1000):
            trainer(x, 0.001)
            if t in (9, 999):
                sizes.append(trainer.state_size())
        output, counts = trainer.sums()
    assert sizes[0] == sizes[1]
    # the traces: (batch, hidden, inputs + hidden) per vector, nothing per step
    assert sizes[0] < 10 * B * H * (N_IN + H)
    assert saved == []  # no autograd graph: nothing is stored for a backward pass
    output.sum().backward()
    assert w_in.grad is not None


def test_the_sums_restart_and_the_network_goes_on():
    w_in, w_rec, readout = _network()
    x, weights, _ = _data()
    whole = _eprop(w_in, w_rec, readout, x, torch.ones_like(weights), False)
    split = EProp(w_in, w_rec, POPULATIONS, readout, dt=DT, detach_reset=False)
    for t, x_t in enumerate(x):
        split(x_t, 1.0)
        if t == 29:
            first, _ = split.sums()
    second, _ = split.sums()
    torch.testing.assert_close(first + second, whole.window_output)


def test_from_cell_steps_as_the_cell():
    torch.manual_seed(0)
    cell = LSNNRecurrentCell(N_IN, H, LSNNParameters(v_th=torch.tensor(0.3)))
    trainer = EProp.from_cell(cell, torch.nn.Linear(H, K))
    assert torch.equal(trainer.recurrent_mask, 1 - torch.eye(H))
    state = None
    x = (torch.rand(T, B, N_IN) < 0.5).float() * 3
    for x_t in x:
        z, state = cell(x_t, state)
        _, z_trainer = trainer(x_t)
        assert torch.equal(z, z_trainer)


def test_bad_arguments_are_named():
    w_in, w_rec, readout = _network()
    with pytest.raises(ValueError, match="recurrent_weights must be \\(7, 7\\)"):
        EProp(w_in, w_rec[:3], POPULATIONS, readout)
    with pytest.raises(ValueError, match="population sizes must add up to hidden = 7"):
        EProp(w_in, w_rec, POPULATIONS[:1], readout)
    with pytest.raises(TypeError, match="LIFParameters or LSNNParameters"):
        EProp(w_in, w_rec, [Population(7, LIParameters())], readout)
    with pytest.raises(ValueError, match="adjoint"):
        EProp(w_in, w_rec, [Population(7, LIFParameters(method="adjoint"))], readout)
    with pytest.raises(ValueError, match="feedback must be one of"):
        EProp(w_in, w_rec, POPULATIONS, readout, feedback="transposed")
    with pytest.raises(
        ValueError, match="readout must be a torch.nn.Linear with in_features=7"
    ):
        EProp(w_in, w_rec, POPULATIONS, torch.nn.Linear(3, 2))
    trainer = EProp(w_in, w_rec, POPULATIONS, readout)
    with pytest.raises(RuntimeError, match="no step since reset"):
        trainer.sums()
    with pytest.raises(ValueError, match="x must be \\(batch, 4\\)"):
        trainer(torch.zeros(B, 5, dtype=F64))
    trainer(torch.zeros(B, N_IN, dtype=F64))
    with pytest.raises(ValueError, match="call reset\\(\\)"):
        trainer(torch.zeros(B + 1, N_IN, dtype=F64))
    with pytest.raises(
        ValueError, match="weight must be a number or have shape \\(3,\\)"
    ):
        trainer(torch.zeros(B, N_IN, dtype=F64), torch.ones(2))
    with pytest.raises(ValueError, match="output_error must be \\(3, 2\\)"):
        trainer.learn(torch.zeros(3, 3))


def test_the_compiled_updates_equal_the_eager_ones():
    torch.manual_seed(0)
    w_in = torch.nn.Parameter(torch.randn(5, 3) * 3)
    w_rec = torch.nn.Parameter(torch.randn(5, 5))
    readout = torch.nn.Linear(5, 2)
    populations = [Population(5, LSNNParameters(v_th=torch.tensor(0.3)))]
    x = (torch.rand(20, 4, 3) < 0.5).float()
    results = []
    for compile in (False, True):
        trainer = EProp(
            w_in, w_rec, populations, readout, detach_reset=False, compile=compile
        )
        for t in range(len(x)):
            trainer(x[t], 1.0)  # one compiled variant: always a weight
        output, counts = trainer.sums()
        (output.sum() + counts.sum()).backward()
        results.append((output.detach(), *_grads(w_in, w_rec, readout)))
    assert results[0][0].abs().sum() > 0
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)

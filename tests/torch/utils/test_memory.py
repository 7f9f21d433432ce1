"""Training with less memory: the bit store, recomputation and the planner."""

import copy
import dataclasses
import math
import sys
import warnings

import pytest
import torch

import norse.torch as norse
from norse.torch.models.vgg import VGG, make_layers
from norse.torch.module.sequential import SequentialState
from norse.torch.utils import memory

DTYPES = (torch.float32, torch.float64)


@pytest.fixture(autouse=True)
def one_thread():
    """These tests run many small operations, which wait for a second thread when the
    machine is busy; one thread keeps them fast (and changes no result)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The bit store ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", (torch.float32, torch.float64, torch.float16, torch.bfloat16)
)
@pytest.mark.parametrize("numel", (1, 7, 8, 9, 4097))
def test_pack_bits_round_trip(dtype, numel):
    x = (torch.rand(numel) > 0.6).to(dtype).reshape(numel, 1)
    packed = memory.pack_bits(x)
    assert packed.bits.dtype == torch.uint8
    assert packed.bits.numel() == (numel + 7) // 8
    restored = memory.unpack_bits(packed)
    assert restored.dtype == dtype and restored.shape == x.shape
    assert torch.equal(restored.view(torch.uint8), x.view(torch.uint8))


def test_pack_bits_layout():
    """Element 8 j + k of the flat tensor is bit k of byte j."""
    x = torch.zeros(16)
    x[[0, 3, 8, 15]] = 1
    packed = memory.pack_bits(x)
    assert packed.bits.tolist() == [0b00001001, 0b10000001]


def test_fast_and_slow_packing_agree():
    ones = torch.rand(8 * 300) > 0.5
    assert torch.equal(
        memory._pack_groups(ones, True), memory._pack_groups(ones, False)
    )


ALL_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_numba_kernels_equal_the_torch_reference(dtype):
    """The one-pass Numba kernels give the bytes of the PyTorch operations, on random
    shapes (lengths that are no multiple of 8, more than one block of the kernel), and
    reject the same tensors."""
    generator = torch.Generator().manual_seed(7)
    block = 8 * memory._KERNEL_BLOCK
    shapes = [(0,), (1,), (5, 3), (2, 7, 9), (block + 13,), (3, block // 3 + 1)]
    shapes += [
        tuple(int(n) for n in torch.randint(1, 40, (3,), generator=generator))
        for _ in range(4)
    ]
    for shape in shapes:
        p = torch.rand(1, generator=generator).item()
        x = (torch.rand(shape, generator=generator) < p).to(dtype)
        assert memory._use_kernels(x)
        packed = memory.pack_bits(x)
        reference = memory._pack_bits_torch(x)
        assert torch.equal(packed.bits, reference.bits), shape
        assert packed.shape == x.shape and packed.dtype == dtype
        for unpack in (memory.unpack_bits, memory._unpack_bits_torch):
            restored = unpack(packed)
            assert restored.shape == x.shape and restored.dtype == dtype
            assert torch.equal(restored.view(torch.uint8), x.view(torch.uint8))
        if x.numel() == 0:
            continue
        flat = x.reshape(-1)
        for position in {0, flat.numel() // 2, flat.numel() - 1}:
            for value in (0.5, -0.0, float("nan"), 2.0, -1.0):
                y = flat.clone()
                y[position] = value
                assert memory.pack_bits(y) is None, (shape, position, value)
                assert memory._pack_bits_torch(y) is None


def test_non_contiguous_tensors_take_the_torch_path():
    x = (torch.rand(40, 30) > 0.5).float().t()
    assert not memory._use_kernels(x)
    packed = memory.pack_bits(x)
    assert torch.equal(memory.unpack_bits(packed), x)


def test_without_numba_the_torch_path_packs_with_one_warning(monkeypatch):
    monkeypatch.setitem(memory._NUMBA, "available", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    x = (torch.rand(3, 1000) > 0.5).to(torch.bfloat16)
    with pytest.warns(RuntimeWarning, match="Numba is unavailable.*same bits"):
        packed = memory.pack_bits(x)
    assert not memory._use_kernels(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once
        assert torch.equal(packed.bits, memory._pack_bits_torch(x).bits)
        assert torch.equal(memory.unpack_bits(packed), x)
        assert memory.pack_bits(x.float() * 0.5) is None


@pytest.mark.parametrize(
    "values",
    (
        [0.0, 1.0, 0.5],
        [0.0, -0.0, 1.0],  # -0.0 would come back as +0.0
        [1.0, float("nan")],
        [1.0, 2.0],
        [0.0, -1.0],
        [1.0, 1.0 + 2**-20],
    ),
)
def test_non_binary_tensors_are_not_packed(values):
    x = torch.tensor(values * 2000)
    assert not memory.is_binary(x)
    assert memory.pack_bits(x) is None
    hooks = memory.bit_store(min_bytes=0)
    stored = hooks.pack_hook(x)
    assert stored is x
    assert hooks.unpack_hook(stored) is x


def test_non_binary_values_after_the_checked_prefix():
    x = torch.zeros(10000)
    x[:5000] = 1
    x[-1] = 0.25
    assert not memory.is_binary(x)
    assert memory.bit_store(min_bytes=0).pack_hook(x) is x


def test_is_binary():
    assert memory.is_binary(torch.tensor([0.0, 1.0, 1.0]))
    assert memory.is_binary(torch.zeros(0))
    assert not memory.is_binary(torch.tensor([0, 1]))  # integers are not spikes
    assert not memory.is_binary(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="tensor must be a torch.Tensor, got list"):
        memory.is_binary([0.0, 1.0])


def test_bit_store_packs_only_plain_binary_activations():
    hooks = memory.bit_store()
    spikes = (torch.rand(64, 100) > 0.8).float()
    stored = hooks.pack_hook(spikes)
    assert isinstance(stored, memory.PackedBits)
    assert stored.bits.numel() == 800
    assert torch.equal(hooks.unpack_hook(stored), spikes)
    parameter = torch.nn.Parameter(torch.zeros(64, 100))
    assert hooks.pack_hook(parameter) is parameter  # alive anyway
    small = torch.ones(10)
    assert hooks.pack_hook(small) is small  # below min_bytes
    strided = spikes.t()
    assert hooks.pack_hook(strided) is strided  # not contiguous
    view = (torch.rand(64, 100) > 0.8).float().reshape(100, 64)  # a view: packed
    assert isinstance(hooks.pack_hook(view), memory.PackedBits)
    rows = torch.nn.Parameter(torch.ones(64, 100))[:32]  # a view of a parameter
    assert hooks.pack_hook(rows) is rows
    with pytest.raises(ValueError, match="min_bytes must be a non-negative int"):
        memory.bit_store(min_bytes=-1)


def test_bit_store_gradients_are_unchanged():
    torch.manual_seed(0)
    weight = torch.randn(100, 50, dtype=torch.float64, requires_grad=True)
    spikes = (torch.rand(64, 100) > 0.8).double()
    signed = torch.randn(64, 100, dtype=torch.float64)
    signed[0, :10] = -0.0

    def grads(store: bool):
        weight.grad = None
        with (
            memory.bit_store()
            if store
            else torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        ):
            loss = ((spikes @ weight).sin() + (signed @ weight).cos()).sum()
        loss.backward()
        return weight.grad.clone()

    assert torch.equal(grads(True), grads(False))


# Recomputation: the same gradients --------------------------------------------------------


def _main_job_network() -> SequentialState:
    """The layers of the MNIST task's network (norse.task.mnist), narrower: batch norms
    over all steps (its gain of 3 as their initial weight) before every LIF layer."""
    p = norse.LIFParameters(
        tau_syn_inv=torch.tensor(500.0),
        tau_mem_inv=torch.tensor(200.0),
        alpha=torch.tensor(20.0),
    )

    def norm(module: torch.nn.Module) -> norse.Lift:
        torch.nn.init.constant_(module.weight, 3.0)
        return norse.Lift(module, fold=True)

    return SequentialState(
        norse.Lift(torch.nn.Conv2d(1, 8, 5, bias=False)),
        norm(torch.nn.BatchNorm2d(8)),
        norse.LIF(p),
        norse.Lift(torch.nn.MaxPool2d(2)),
        norse.Lift(torch.nn.Conv2d(8, 16, 5, bias=False)),
        norm(torch.nn.BatchNorm2d(16)),
        norse.LIF(p),
        norse.Lift(torch.nn.MaxPool2d(2)),
        norse.Lift(torch.nn.Flatten()),
        norse.Lift(torch.nn.Linear(16 * 4 * 4, 32, bias=False)),
        norm(torch.nn.BatchNorm1d(32)),
        norse.LIF(p),
        norse.Lift(torch.nn.Linear(32, 10)),
        norse.LI(),
    )


def _small_vgg() -> torch.nn.Module:
    """The zoo's VGG-11 (eight convolutions, five poolings, the lifted classifier with
    dropout) with fewer channels; weights scaled so that every layer spikes within four
    steps."""
    cfg = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 512, "M"]
    model = VGG(make_layers(cfg), num_classes=10, hidden_size=16, pool_size=1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(20)
            elif isinstance(module, torch.nn.Linear):
                module.weight.mul_(200)
    return model


NETWORKS = {
    "main-job": (_main_job_network, (4, 3, 1, 28, 28), 4.0),
    "vgg11": (_small_vgg, (4, 2, 3, 32, 32), 1.0),
}


def _output(result):
    return result[0] if isinstance(result, tuple) else result


def _step(model, x, seed=1):
    torch.manual_seed(seed)  # the same dropout masks
    model.zero_grad(set_to_none=True)
    out = _output(model(x))
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach()


def _recompute_everything(model, x, chunks=1, recompute=True):
    memory.optimise(model, x, budget="time")
    plan = memory.plan_of(model)
    units = tuple(
        dataclasses.replace(unit, recompute=recompute, chunks=chunks)
        for unit in plan.units
    )
    return memory.apply_plan(model, dataclasses.replace(plan, units=units))


def _assert_same_training_step(plain, optimised, x, exact=True):
    out_plain, out_optimised = _step(plain, x), _step(optimised, x)
    assert torch.equal(out_plain, out_optimised)
    pairs = list(zip(plain.named_parameters(), optimised.named_parameters()))
    for (name, a), _ in pairs:  # every layer takes part (spikes reach the output)
        assert a.grad is not None and a.grad.abs().sum() > 0, name
    for (name, a), (_, b) in pairs:
        if exact:
            assert torch.equal(a.grad, b.grad), name
        else:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    for (name, a), (_, b) in zip(plain.named_buffers(), optimised.named_buffers()):
        assert torch.equal(a, b), name  # batch-norm statistics updated once


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_recomputed_units_give_the_same_gradients_bit_for_bit(network, dtype):
    make, shape, gain = NETWORKS[network]
    torch.manual_seed(0)
    plain = make().to(dtype).train()
    optimised = copy.deepcopy(plain)
    x = torch.rand(*shape, dtype=dtype) * gain
    _recompute_everything(optimised, x)
    assert all(unit.recompute for unit in memory.plan_of(optimised).units)
    assert len(memory.plan_of(optimised).units) >= 4
    _assert_same_training_step(plain, optimised, x)
    _assert_same_training_step(plain, optimised, x)  # a second step, as training does


def test_bits_alone_give_the_same_gradients_bit_for_bit():
    make, shape, gain = NETWORKS["main-job"]
    torch.manual_seed(0)
    plain = make().train()
    optimised = copy.deepcopy(plain)
    x = torch.rand(*shape) * gain
    memory.optimise(optimised, x, budget="time")
    assert not any(unit.recompute for unit in memory.plan_of(optimised).units)
    _assert_same_training_step(plain, optimised, x)


def _conv_lif_stack(width=8, depth=4) -> SequentialState:
    """Convolutions and LIF layers, weights scaled so that every layer spikes."""
    layers = [norse.Lift(torch.nn.Conv2d(1, width, 3, padding=1)), norse.LIF()]
    for _ in range(depth - 1):
        layers += [norse.Lift(torch.nn.Conv2d(width, width, 3, padding=1)), norse.LIF()]
    with torch.no_grad():
        for layer in layers[::2]:
            layer.lifted_module.weight.mul_(20)
    return SequentialState(*layers)


def test_batch_chunks_give_the_same_outputs_and_gradients_to_rounding():
    torch.manual_seed(0)
    plain = _conv_lif_stack().double()
    optimised = copy.deepcopy(plain)
    x = torch.rand(4, 6, 1, 12, 12, dtype=torch.float64) * 4
    _recompute_everything(optimised, x, chunks=4)
    _assert_same_training_step(plain, optimised, x, exact=False)


def test_stored_units_in_batch_chunks_give_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = _conv_lif_stack().double()
    optimised = copy.deepcopy(plain)
    x = torch.rand(4, 6, 1, 12, 12, dtype=torch.float64) * 4
    _recompute_everything(optimised, x, chunks=3, recompute=False)
    assert "store (bits) x3 chunks" in str(memory.plan_of(optimised))
    _assert_same_training_step(plain, optimised, x, exact=False)


def test_chunk_gradients_are_gathered_once_per_backward_pass():
    """The chunks of a unit's input give their gradients to one buffer, returned when
    the last arrives: a graph run backward twice gives the same gradients twice."""
    torch.manual_seed(0)
    plain = _conv_lif_stack(depth=2).double()
    optimised = copy.deepcopy(plain)
    x = torch.rand(3, 5, 1, 12, 12, dtype=torch.float64) * 4
    _recompute_everything(optimised, x, chunks=2)
    inputs = x.clone().requires_grad_()
    out, _ = optimised(inputs)
    first = torch.autograd.grad(out.sum(), inputs, retain_graph=True)[0]
    second = torch.autograd.grad(out.sum(), inputs)[0]
    expected = torch.autograd.grad(plain(inputs)[0].sum(), inputs)[0]
    assert torch.equal(first, second)
    torch.testing.assert_close(first, expected, rtol=1e-12, atol=1e-12)


def test_states_are_threaded_through_recomputed_units():
    """A sequence in two calls: the second starts from the first call's states."""
    torch.manual_seed(0)
    plain = _conv_lif_stack().double()
    optimised = copy.deepcopy(plain)
    x = torch.rand(6, 4, 1, 12, 12, dtype=torch.float64) * 4
    _recompute_everything(optimised, x[:3], chunks=2)

    def run(model):
        model.zero_grad(set_to_none=True)
        first, states = model(x[:3])
        second, states = model(x[3:], states)
        (first.sum() + second.sum() + states[-1].v.sum()).backward()
        return torch.cat([first, second]), states

    out_plain, states_plain = run(plain)
    out_optimised, states_optimised = run(optimised)
    assert torch.equal(out_plain, out_optimised)
    for a, b in zip(states_plain, states_optimised):
        if a is not None:
            torch.testing.assert_close(a.v, b.v, rtol=1e-12, atol=0)
    for a, b in zip(plain.parameters(), optimised.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_inference_and_hooks_run_the_plain_path():
    torch.manual_seed(0)
    model = _conv_lif_stack()
    x = torch.rand(3, 2, 1, 12, 12) * 4
    expected = model(x)[0]
    _recompute_everything(model, x)
    with torch.no_grad():
        assert torch.equal(model(x)[0], expected)
    calls = []
    model[2].register_forward_hook(lambda *args: calls.append(1))
    _step(model, x)
    assert calls == [1]  # a layer with hooks is not recomputed: its hook runs once


# The planner -----------------------------------------------------------------------------


def test_the_memory_plan_recomputes_and_chunks_where_it_pays():
    torch.manual_seed(0)
    model = _conv_lif_stack(depth=4)
    x = torch.rand(4, 8, 1, 12, 12) * 4
    memory.optimise(model, x, budget="memory")
    plan = memory.plan_of(model)
    assert [(u.start, u.stop) for u in plan.units] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert all(u.chunkable for u in plan.units)
    assert any(u.recompute and u.chunks > 1 for u in plan.units)
    assert plan.peak_bytes < 0.5 * plan.plain_peak_bytes
    assert "recompute" in str(plan)


def test_batch_norm_in_training_and_dropout_are_not_chunked():
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm2d(4)
    torch.nn.init.constant_(norm.weight, 3.0)
    model = SequentialState(
        norse.Lift(torch.nn.Conv2d(1, 4, 3)),
        norse.Lift(norm, fold=True),  # statistics over the whole batch
        norse.LIF(),
        norse.Lift(torch.nn.Flatten()),
        norse.Lift(torch.nn.Linear(4 * 10 * 10, 8)),
        norse.Lift(torch.nn.Dropout(0.2)),  # random numbers
        norse.LIF(),
        norse.Lift(torch.nn.Linear(8, 8)),
        norse.LIF(),
    )
    x = torch.rand(4, 4, 1, 12, 12) * 4
    memory.optimise(model, x, budget="memory")
    units = memory.plan_of(model).units
    assert [(u.start, u.stop, u.chunkable) for u in units] == [
        (0, 4, False),
        (4, 7, False),
        (7, 9, True),
    ]
    model.eval()  # batch statistics no longer used: the first unit may be chunked
    memory.optimise(model, x, budget="memory")
    assert memory.plan_of(model).units[0].chunkable


def test_time_budget_measures_and_predicts_the_step():
    torch.manual_seed(0)
    model = _conv_lif_stack(width=4, depth=2)
    x = torch.rand(3, 4, 1, 6, 6) * 4
    memory.optimise(model, x, budget=1.5)
    plan = memory.plan_of(model)
    assert plan.budget == 1.5 and plan.plain_seconds > 0 and plan.seconds > 0
    # the rule: within the budget, or nothing left to give up
    assert plan.seconds <= 1.5 * plan.plain_seconds or all(
        not u.recompute and u.chunks == 1 for u in plan.units
    )
    assert "step time" in str(plan)


def test_a_memory_target_takes_the_fastest_plan_that_reaches_it():
    torch.manual_seed(0)
    model = _conv_lif_stack(width=4, depth=3)
    x = torch.rand(3, 4, 1, 8, 8) * 4
    memory.optimise(model, x, peak=1.0)  # the plain step reaches it
    plan = memory.plan_of(model)
    assert plan.peak == 1.0 and plan.seconds > 0
    assert plan.peak_bytes <= plan.plain_peak_bytes
    memory.optimise(model, x, peak=0.01)  # out of reach: the least peak
    assert memory.plan_of(model).peak_bytes < plan.peak_bytes
    with pytest.raises(ValueError, match="peak must be a fraction in"):
        memory.optimise(model, x, peak=1.5)
    with pytest.raises(ValueError, match="peak is a target instead of a budget"):
        memory.optimise(model, x, budget=1.3, peak=0.5)


def _option(mode, kept, work, seconds):
    return memory._Option(mode, kept, work, seconds)


def test_the_planner_finds_the_least_peak_within_the_time():
    """Two units: the first's work comes while nothing is kept, the second's while the
    first's kept bytes are alive; the least peak within the time is found exactly."""
    first = [
        _option((False, 1), 50, 60, 0.0),
        _option((True, 1), 5, 60, 1.0),
        _option((True, 4), 5, 20, 1.5),
    ]
    second = [_option((False, 1), 10, 40, 0.0), _option((False, 4), 10, 15, 0.2)]
    table = [first, second]
    assert memory._predict_peak(table, [(False, 1), (False, 1)], 0) == 90
    assert memory._choose(table, 0, math.inf) == [(True, 4), (False, 4)]  # 20
    assert memory._choose(table, 0, 1.2) == [(True, 1), (False, 1)]  # 60, fastest
    assert memory._choose(table, 0, 0.5) == [(False, 1), (False, 4)]  # 65
    assert memory._choose(table, 0, 0.0) == [(False, 1), (False, 1)]  # 90
    assert memory._cheapest(table, 7, 26) is None  # the bytes outside the units count


def test_the_predicted_peak_is_near_the_measured_one():
    """The planner measures each unit's forward and backward pass: its prediction of
    what a training step allocates at most is within a fifth of the measurement."""
    torch.manual_seed(0)
    model = _conv_lif_stack(width=8, depth=4)
    x = torch.rand(6, 8, 1, 16, 16) * 4
    memory.optimise(model, x, budget="memory", max_chunks=4)
    _step(model, x)
    plan = memory.plan_of(model)
    measured = _allocated_peak(model, x)
    assert 0.8 * measured <= plan.peak_bytes <= 1.2 * measured


def test_a_model_without_sequential_state_gets_bits_only():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.lif = norse.LIF()
            self.linear = torch.nn.Linear(4 * 10 * 10, 3)

        def forward(self, x):
            z, _ = self.lif(self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2]))
            return self.linear(z.flatten(2))

    torch.manual_seed(0)
    plain = Custom()
    optimised = copy.deepcopy(plain)
    x = torch.rand(3, 4, 1, 12, 12) * 4
    memory.optimise(optimised, x)
    assert memory.plan_of(optimised).units == ()
    _assert_same_training_step(plain, optimised, x)


def test_restore_copies_and_the_state_dict():
    torch.manual_seed(0)
    model = _small_vgg()
    keys = list(model.state_dict())
    x = torch.rand(2, 2, 3, 32, 32)
    memory.optimise(model, x, budget="memory")
    assert list(model.state_dict()) == keys
    assert isinstance(model.features, SequentialState)
    clone = copy.deepcopy(model)
    assert memory.plan_of(clone) == memory.plan_of(model)
    for optimised in (model, clone):
        memory.restore(optimised)
        assert type(optimised.features) is SequentialState
        assert memory.plan_of(optimised) is None
        assert not optimised._forward_hooks and not optimised._forward_pre_hooks


def test_errors_name_the_argument():
    model = _conv_lif_stack(depth=1)
    x = torch.rand(2, 2, 1, 12, 12)
    with pytest.raises(ValueError, match="budget must be 'memory', 'time' or a time"):
        memory.optimise(model, x, budget="fast")
    with pytest.raises(ValueError, match="got 0.5"):
        memory.optimise(model, x, budget=0.5)
    with pytest.raises(ValueError, match="max_chunks must be a positive int, got 0"):
        memory.optimise(model, x, max_chunks=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        memory.optimise("model", x)
    memory.optimise(model, x, budget="time")
    plan = memory.plan_of(model)
    bad = dataclasses.replace(
        plan, units=(dataclasses.replace(plan.units[0], container="nowhere"),)
    )
    with pytest.raises(ValueError, match="'nowhere', which is not a SequentialState"):
        memory.apply_plan(model, bad)
    gap = dataclasses.replace(plan, units=(dataclasses.replace(plan.units[0], stop=1),))
    with pytest.raises(ValueError, match="must cover its 2 layers in order"):
        memory.apply_plan(model, gap)
    assert memory.optimize is memory.optimise


def _allocated_peak(model, x):
    """Peak bytes that a training step allocates (PyTorch's CPU allocator, profiled as
    the planner measures its units, here over the whole step)."""
    model.zero_grad(set_to_none=True)
    peak, _ = memory._allocations(lambda: _step(model, x), [torch.device("cpu")])
    return peak


def test_the_optimised_network_keeps_less_memory():
    peak = _allocated_peak
    torch.manual_seed(0)
    plain = _conv_lif_stack(width=8, depth=4)
    optimised = copy.deepcopy(plain)
    x = torch.rand(6, 8, 1, 16, 16) * 4
    memory.optimise(optimised, x, budget="memory", max_chunks=4)
    _step(plain, x), _step(optimised, x)  # warm-up
    assert peak(optimised, x) < 0.5 * peak(plain, x)

"""The generic module forms, exercised through every core neuron model."""

import copy
import os
import socket
import warnings

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters
from norse.torch.fused.registry import reference_only

# (cell, time module, recurrent cell or None, recurrent module or None, spiking?)
MODELS = {
    "lif": (norse.LIFCell, norse.LIF, norse.LIFRecurrentCell, norse.LIFRecurrent, True),
    "lif_box": (
        norse.LIFBoxCell,
        norse.LIFBox,
        norse.LIFBoxRecurrentCell,
        norse.LIFBoxRecurrent,
        True,
    ),
    "iaf": (norse.IAFCell, norse.IAF, norse.IAFRecurrentCell, norse.IAFRecurrent, True),
    "li": (norse.LICell, norse.LI, None, None, False),
    "li_box": (norse.LIBoxCell, norse.LIBox, None, None, False),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return MODELS[request.param]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cell_loop_equals_time_module(model, dtype):
    cell_cls, time_cls, *_ = model
    torch.manual_seed(0)
    x = (torch.rand(25, 3, 4) * 4).to(dtype)
    cell, layer = cell_cls(), time_cls()
    state, outs = None, []
    for step in x:
        out, state = cell(step, state)
        outs.append(out)
    out_seq, state_seq = layer(x)
    assert out_seq.shape == x.shape and out_seq.dtype == dtype
    torch.testing.assert_close(torch.stack(outs), out_seq)
    for a, b in zip(state, state_seq):
        torch.testing.assert_close(a, b)
        assert a.dtype == dtype and a.shape == (3, 4)


def test_spiking_models_spike_and_backward(model):
    cell_cls, time_cls, _, _, spiking = model
    x = (torch.rand(30, 2, 5) * 5).requires_grad_()
    out, _ = time_cls()(x)
    if spiking:
        assert set(out.unique().tolist()) <= {0.0, 1.0} and out.sum() > 0
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if cell_cls is not norse.IAFCell:
        assert x.grad.abs().sum() > 0


def test_record_states_stacks_every_step(model):
    _, time_cls, *_ = model
    x = torch.rand(7, 2, 3)
    out, states = time_cls(record_states=True)(x)
    _, final = time_cls()(x)
    for field, last in zip(states, final):
        assert field.shape == (7, 2, 3)
        torch.testing.assert_close(field[-1], last)


def test_state_threading_over_chunks(model):
    _, time_cls, *_ = model
    x = torch.rand(20, 2, 3) * 3
    layer = time_cls()
    full, _ = layer(x)
    first, state = layer(x[:8])
    second, _ = layer(x[8:], state)
    torch.testing.assert_close(torch.cat([first, second]), full)


@pytest.mark.parametrize("name", [k for k, v in MODELS.items() if v[2] is not None])
def test_recurrent_forms_agree(name):
    *_, rec_cell_cls, rec_cls, spiking = MODELS[name]
    torch.manual_seed(3)
    rec = rec_cls(4, 6)
    cell = rec_cell_cls(
        4,
        6,
        input_weights=rec.input_weights.detach().clone(),
        recurrent_weights=rec.recurrent_weights.detach().clone(),
    )
    x = torch.rand(15, 2, 4) * 3
    out, state = rec(x)
    assert out.shape == (15, 2, 6) and state.v.shape == (2, 6)
    s, outs = None, []
    for step in x:
        o, s = cell(step, s)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), out)
    out.sum().backward()
    assert rec.input_weights.grad is not None


def test_autapses_are_masked_even_if_weights_change():
    rec = norse.LIFRecurrent(3, 3)
    assert torch.all(rec.recurrent_weights.diagonal() == 0)
    with torch.no_grad():
        rec.recurrent_weights.fill_(1.0)  # e.g. a loaded checkpoint with a diagonal
    # a lone spiking neuron must not excite itself
    state = norse.LIFState(
        z=torch.tensor([[1.0, 0.0, 0.0]]), v=torch.zeros(1, 3), i=torch.zeros(1, 3)
    )
    _, s = rec(torch.zeros(1, 1, 3), state)
    assert s.i[0, 0] == 0 and s.i[0, 1] > 0
    rec.recurrent_weights.grad = None
    out, _ = rec(torch.rand(10, 2, 3) * 5)
    out.sum().backward()
    assert torch.all(rec.recurrent_weights.grad.diagonal() == 0)
    with_autapses = norse.LIFRecurrentCell(3, 3, autapses=True)
    assert with_autapses.autapse_mask is None


def test_fixed_tensor_weights_are_buffers_and_parameters_train():
    w = torch.ones(2, 3)
    cell = norse.LIFRecurrentCell(3, 2, input_weights=w)
    names = dict(cell.named_parameters())
    assert "input_weights" not in names and "recurrent_weights" in names
    assert "input_weights" in dict(cell.named_buffers())
    with pytest.raises(ValueError, match=r"input_weights must have shape \(2, 3\)"):
        norse.LIFRecurrentCell(3, 2, input_weights=torch.ones(3, 2))


def test_parameters_move_with_the_module():
    cell = norse.LIFCell(LIFParameters(tau_mem_inv=torch.tensor([100.0, 50.0])))
    cell = cell.double()
    assert cell.p.tau_mem_inv.dtype == torch.float64
    assert cell.p.method == "super"
    keys = set(cell.state_dict())
    assert {
        "params.tau_mem_inv",
        "params.tau_syn_inv",
        "params.v_th",
        "params.alpha",
    } <= keys
    clone = norse.LIFCell(LIFParameters(tau_mem_inv=torch.tensor([1.0, 1.0]))).double()
    clone.load_state_dict(cell.state_dict())
    torch.testing.assert_close(clone.p.tau_mem_inv, cell.p.tau_mem_inv)
    copied = copy.deepcopy(cell)
    assert copied.p.tau_mem_inv.data_ptr() != cell.p.tau_mem_inv.data_ptr()


def test_norse_1_1_checkpoints_without_parameters_still_load():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), norse.LIFCell())
    legacy = {k: v for k, v in model.state_dict().items() if ".params." not in k}
    model.load_state_dict(legacy, strict=True)


def test_forward_reads_parameters_from_the_module_buffers():
    # replicas (DataParallel) and functional_call substitute buffers; the dynamics must follow
    cell = norse.LIFCell()
    x = torch.ones(1)
    _, base = cell(x)
    _, faster = torch.func.functional_call(
        cell, {"params.tau_mem_inv": torch.tensor(200.0)}, (x,)
    )
    assert base.v.item() == pytest.approx(0.1)
    assert faster.v.item() == pytest.approx(0.2)


def test_trainable_per_neuron_time_constants():
    torch.manual_seed(0)
    tau = torch.nn.Parameter(torch.full((4,), 100.0))
    layer = norse.LIF(LIFParameters(tau_mem_inv=tau))
    assert any(p is tau for p in layer.parameters())
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    x = torch.rand(20, 2, 4) * 3
    before = tau.detach().clone()
    _, state = layer(x)
    state.v.sum().backward()
    assert tau.grad is not None and tau.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(before, tau.detach())


def test_ddp_single_process_carries_parameters(tmp_path):
    import torch.distributed as dist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(
            torch.nn.Linear(3, 4),
            norse.LIFCell(
                LIFParameters(tau_mem_inv=torch.nn.Parameter(torch.full((4,), 80.0)))
            ),
        )
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        out, state = ddp(torch.rand(2, 3) * 10)
        state.v.sum().backward()
        assert model[1].p.tau_mem_inv.grad is not None
    finally:
        dist.destroy_process_group()


def test_first_state_starts_at_rest():
    p = LIFParameters(v_leak=torch.tensor(-0.5))
    state = norse.LIFCell(p).initial_state(torch.zeros(2, 3, dtype=torch.float64))
    assert state.v.shape == (2, 3) and state.v.dtype == torch.float64
    assert torch.all(state.v == -0.5) and torch.all(state.i == 0)
    assert norse.IAFCell().initial_state(torch.zeros(2)).v.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "v_leak",
    [
        torch.tensor(0.1),  # float32 0-dim: float64 states get float32(0.1), widened
        torch.tensor(0.1, dtype=torch.float64),  # rounded once to float32 states
        torch.tensor(0.1, dtype=torch.float16),
        torch.tensor([0.1, -0.2, 0.3]),  # per neuron: broadcast to the batch
        torch.nn.Parameter(torch.tensor(0.3)),  # trainable: detached
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rest_state_rounds_the_parameter_as_a_conversion(v_leak, dtype):
    """A shared start value fills the state directly; the values are those of
    converting the parameter to the input's dtype."""
    cell = norse.LIFCell(LIFParameters(v_leak=v_leak))
    with torch.no_grad():
        state = cell.initial_state(torch.zeros(2, 3, dtype=dtype))
    expected = v_leak.detach().to(dtype).expand(2, 3)
    assert state.v.dtype == dtype and not state.v.requires_grad
    assert torch.equal(state.v, expected)
    state.v.add_(1)  # a state of its own, not a view of the parameter
    assert torch.equal(cell.p.v_leak.detach(), v_leak.detach())


# --- bad input -------------------------------------------------------------------


def test_state_from_another_batch_size_is_rejected():
    cell = norse.LIFCell()
    _, state = cell(torch.rand(4, 10))
    with pytest.raises(ValueError, match=r"state.v has shape \(4, 10\).*\(8, 10\)"):
        cell(torch.rand(8, 10), state)
    layer = norse.LIF()
    _, state = layer(torch.rand(3, 4, 10))
    with pytest.raises(ValueError, match="another batch size"):
        layer(torch.rand(3, 8, 10), state)


def test_wrong_state_type_device_and_dtype():
    cell = norse.LIFCell()
    with pytest.raises(TypeError, match="state must be a state NamedTuple"):
        cell(torch.rand(2), (torch.zeros(2), torch.zeros(2)).__iter__())
    meta_state = norse.LIFFeedForwardState(
        torch.zeros(2, device="meta"), torch.zeros(2, device="meta")
    )
    with pytest.raises(ValueError, match="device meta"):
        cell(torch.rand(2), meta_state)
    complex_state = norse.LIFFeedForwardState(
        torch.zeros(2, dtype=torch.complex64), torch.zeros(2)
    )
    with pytest.raises(TypeError, match="state.v must be a real tensor"):
        cell(torch.rand(2), complex_state)
    # integer states (Norse 1.1 style torch.tensor(0)) promote exactly
    int_state = norse.LIFFeedForwardState(torch.tensor(0), torch.tensor(0))
    z, s = cell(torch.ones(2), int_state)
    assert s.v.dtype == torch.float32 and s.v.tolist() == pytest.approx([0.1, 0.1])


def test_non_float_input_and_missing_time_dimension():
    with pytest.raises(TypeError, match="floating-point.*torch.complex64"):
        norse.LIFCell()(torch.ones(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        norse.LIF()([1.0, 2.0])
    with pytest.raises(ValueError, match="at least 1 dimension"):
        norse.LIF()(torch.tensor(1.0))
    with pytest.raises(ValueError, match="T >= 1"):
        norse.LIF()(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="input_size=3"):
        norse.LIFRecurrent(3, 2)(torch.zeros(5, 2, 4))


def test_invalid_parameters():
    with pytest.raises(ValueError, match=r"p.tau_mem_inv must be .*not NaN.*got nan"):
        norse.LIFCell(LIFParameters(tau_mem_inv=torch.tensor(float("nan"))))
    # Norse 1.1 accepts negative and infinite inverse time constants: a warning here
    with pytest.warns(RuntimeWarning, match=r"p.tau_mem_inv = -100.*grow"):
        norse.LIFCell(LIFParameters(tau_mem_inv=torch.tensor(-100.0)))
    with pytest.warns(RuntimeWarning, match=r"p.tau_syn_inv = inf"):
        norse.LIF(LIFParameters(tau_syn_inv=float("inf")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0: no decay, an ordinary value
        out, _ = norse.LIF(LIFParameters(tau_syn_inv=0.0))(torch.ones(3, 2))
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="p.method must be one of.*got 'nope'"):
        norse.LIF(LIFParameters(method="nope"))
    with pytest.raises(ValueError, match="dt must be a positive"):
        norse.LIFCell(dt=-0.001)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        norse.LIFRecurrentCell(3, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norse.LIFCell(dt=0.01)  # dt * tau_syn_inv = 2: unstable Euler step
    assert any("unstable" in str(w.message) for w in caught)
    cell = norse.LIFCell()
    with pytest.raises(ValueError, match="dt must be a positive"):
        cell.dt = 0


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8])
@pytest.mark.parametrize("module", [norse.LIFCell, norse.LIF, norse.LIBoxCell])
def test_bool_and_integer_spikes_are_computed_in_float32(module, dtype, sparse):
    """Norse 1.1 accepts bool (and integer) spikes, dense or sparse, and returns float32
    states (sparse output for sparse input): the same as the input as float32."""
    spikes = torch.tensor([[1, 0, 1], [1, 1, 0]]).to(dtype)
    given = spikes.to_sparse() if sparse else spikes
    out, state = module()(given)
    expected_out, expected_state = module()(spikes.float())
    # LIF spikes stay sparse; the leaky integrator's output is its (dense) voltage
    assert out.is_sparse is (sparse and module is not norse.LIBoxCell)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.to_dense() if out.is_sparse else out, expected_out)
    for got, want in zip(state, expected_state):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "module",
    [norse.LIFCell, norse.LIF, norse.LIBoxCell, norse.LIFRefracCell, norse.LSNN],
)
def test_backward_through_a_layer_whose_input_needs_no_gradient(module):
    """As in Norse 1.1 the resting voltage requires grad while gradients are on, so the
    output of a first layer can be differentiated; under no_grad nothing changes."""
    x = torch.rand(4, 2, 3) * 3
    out, _ = module()(x)
    assert out.requires_grad
    out.sum().backward()  # Norse 1.1 allows this
    state = module().initial_state(x)
    v = state.lif.v if hasattr(state, "lif") else state.v
    assert v.is_leaf and v.requires_grad
    with torch.no_grad():
        assert not module()(x)[0].requires_grad
    with torch.inference_mode():
        assert not module()(x)[0].requires_grad


@pytest.mark.parametrize("fused", [True, False])
def test_parameter_tensor_that_requires_grad_receives_its_gradient(fused):
    """A parameter tuple holding the caller's tensor (not an nn.Parameter) trains it, as
    in Norse 1.1; the module holds that tensor itself, so in-place updates show."""
    tau = torch.tensor(150.0, requires_grad=True)
    layer = norse.LIF(LIFParameters(tau_mem_inv=tau, v_th=torch.tensor(0.2)))
    assert layer.p.tau_mem_inv is tau
    x = torch.rand(20, 2, 3)
    if fused:
        out, _ = layer(x)
    else:
        with reference_only():
            out, _ = layer(x)
    out.sum().backward()
    assert tau.grad is not None and tau.grad != 0
    with torch.no_grad():
        tau -= 10.0
    assert float(layer.p.tau_mem_inv) == 140.0
    assert "params.tau_mem_inv" in layer.state_dict()


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize(
    "make", [norse.LIF, norse.LI, norse.LSNN, lambda: norse.LSNNRecurrent(3, 3)]
)
def test_fused_states_require_grad_as_the_reference(make, record_states):
    """A fused kernel returns every state field from one autograd node; fields that
    depend on nothing requiring grad (LIF's current for an input without grad) come
    back without, as from the reference loop and in Norse 1.1 (so .numpy() works)."""
    layer = make()
    layer.record_states = record_states
    for x in (torch.rand(6, 2, 3), torch.rand(6, 2, 3).requires_grad_()):
        _, fused = layer(x)
        with reference_only():
            _, reference = layer(x)
        got = {f: t.requires_grad for f, t in zip(fused._fields, fused)}
        want = {f: t.requires_grad for f, t in zip(reference._fields, reference)}
        assert got == want
    _, state = norse.LIF()(torch.rand(6, 2, 3))
    state.i.numpy()  # no gradient to record for the current


def test_fused_state_flags_follow_the_threshold_method():
    """With a Heaviside threshold the spikes carry no gradient, with a surrogate they
    do: the flags of one layer must not be taken for the other (same step function)."""
    x = torch.rand(6, 2, 3, dtype=torch.float64).requires_grad_()
    for method in ("heaviside", "super", "heaviside"):
        layer = norse.LIFRecurrent(3, 4, p=LIFParameters(method=method)).double()
        _, fused = layer(x)
        with reference_only():
            _, reference = layer(x)
        got = [t.requires_grad for t in fused]
        assert got == [t.requires_grad for t in reference], method
        assert fused.z.requires_grad is (method != "heaviside")

"""The reference cases: every public callable of Norse 1.1, described once as data.

``scripts/record_norse_references.py`` records each case on real Norse 1.1.0 and
``tests/test_norse_references.py`` replays it on this package (``reference_replay.py``
defines the spec nodes ``T``, ``call``, ``Ref``, ``Gen``, ``Weights``, ``Step``,
``Carry``). Case names are ``family/callable/variant``; the family names the ``.npz``
file that stores it.

Neuron models are rows of :data:`NEURONS` (parameter ranges, state fields, step functions,
modules) from which every form is generated: the feed-forward and recurrent step
functions and the cell, time, recurrent cell and recurrent time modules, with default
parameters and with random ones (0-d and per-neuron tensors, every numeric field a leaf
that requires a gradient).

Random parameters keep ``method="super"`` with ``alpha=1``: Norse 1.1's SuperSpike
ignores ``alpha`` (its surrogate is always ``1/(|x|+1)^2``) while this package honours it,
so at ``alpha=1`` the gradients can be compared; with the default ``alpha=100`` they
differ on purpose (:data:`SUPERSPIKE`).

``known`` marks deliberate differences (Norse 1.1 bugs this package fixes): pairs of a
key pattern (``out:<key>`` or ``grad:<leaf>``, fnmatch; ``error`` for an exception) and a
tag of :data:`REASONS`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Dict, List, Optional, Tuple

from reference_replay import Call, Carry, Case, Gen, Ref, Step, T, Weights, call

B, N, H, STEPS = 2, 3, 4, 5  # batch, features, hidden neurons, time steps
F = "norse.torch.functional"
M = "norse.torch.module"

# Deliberate differences from Norse 1.1 (Norse bugs fixed here): tag -> reason. A case
# marks them in ``known`` as (key pattern, tag); the test id names the tags.
REASONS = {
    "superspike": "SuperSpike honours alpha (Norse 1.1 ignores it: 1/(|x|+1)^2)",
    "adex_encoder": "lif_adex_current_encoder returns the Euler-updated adaptation",
    "stdp_sensor": "the STDP sensor's post trace decays with tau_ac_inv",
    "coba": "CobaLIF's recurrent step adds the input conductances (Norse 1.1 drops them)",
    "population": "population_encode's centres are differentiable in scale",
    "presets": "the Izhikevich presets dap, accomodation and inhibition_induced_bursting "
    "(norse/torch/functional/izhikevich.py docstring)",
    "adjoint": "adjoint steps are EventProp's transposed Euler step "
    "(norse/torch/functional/adjoint/lif_adjoint.py, 'Differences to Norse 1.1')",
    "adjoint_cell": "method='adjoint' runs in LIF modules (Norse 1.1 raised ValueError)",
    "mc_refrac": "lif_mc_refrac multiplies the coupling by dt and refractory compartments "
    "cannot spike (norse/torch/functional/lif_mc_refrac.py docstring)",
    "adex_refrac": "a spike that the refractory period suppresses adds no adaptation "
    "(Norse 1.1 adds adaptation_spike); its formula also passes a gradient through the "
    "refractory mask",
    "temporal_scales": "temporal_scale_distribution with max_scale spans [min, max] "
    "(Norse 1.1 inverted the ratio; norse/torch/functional/receptive_field.py)",
}
SUPERSPIKE = "superspike"
ADEX_ENCODER = "adex_encoder"
STDP_SENSOR = "stdp_sensor"
COBA = "coba"
POPULATION = "population"
PRESETS_CHANGED = "presets"
ADJOINT = "adjoint"
ADJOINT_CELL = "adjoint_cell"
MC_REFRAC = "mc_refrac"
ADEX_REFRAC = "adex_refrac"
TEMPORAL_SCALES = "temporal_scales"
ALPHA_GRADS = (("grad:*", SUPERSPIKE),)

Range = Tuple[float, float]
SPIKES = "spikes"  # a field of 0/1 spikes
COUNTER = "counter"  # a refractory counter: 0, 1, 2 or 3


def leaf(spec: Any, shape: Tuple[int, ...]) -> T:
    """A leaf of ``shape`` drawn from a range, :data:`SPIKES` or :data:`COUNTER`."""
    if spec == SPIKES:
        return T(shape, spikes=0.4)
    if spec == COUNTER:
        return T(shape, 0.0, 4.0, floor=True)
    return T(shape, *spec)


def tree(
    path: str, fields: Dict[str, Any], shape: Tuple[int, ...], **fixed: Any
) -> Any:
    """``path(**fields, **fixed)`` with a leaf of ``shape`` per field; a ``(path,
    fields)`` pair builds a nested tuple (``LIFRefracParameters.lif``)."""
    return call(
        path,
        **{
            name: tree(*spec, shape)
            if isinstance(spec[-1], dict)
            else leaf(spec, shape)
            for name, spec in fields.items()
        },
        **fixed,
    )


# ---------------------------------------------------------------------------- neurons


@dataclasses.dataclass(frozen=True)
class Neuron:
    """A neuron model in Norse's forms (``None``: Norse 1.1 lacks that form)."""

    family: str
    params: Tuple[str, Dict[str, Any]]  # parameter tuple and random ranges
    ff_state: Tuple[str, Dict[str, Any]]
    rec_state: Optional[Tuple[str, Dict[str, Any]]] = None
    ff_step: Optional[str] = None
    rec_step: Optional[str] = None
    cell: Optional[str] = None
    time: Optional[str] = None
    rec_cell: Optional[str] = None
    rec_time: Optional[str] = None
    drive: Range = (-2.0, 8.0)  # feed-forward input currents
    weights: Range = (-1.0, 3.0)  # recurrent input weights (the inputs are spikes)
    spiking: bool = True
    coupling: bool = False  # multi-compartment: a g_coupling matrix after the weights


LIF_P = {
    "tau_syn_inv": (100.0, 300.0),
    "tau_mem_inv": (50.0, 150.0),
    "v_leak": (-0.2, 0.2),
    "v_th": (0.4, 1.0),
    "v_reset": (-0.3, 0.1),
    "alpha": (1.0, 1.0),
}
ADEX_P = {
    **LIF_P,
    "delta_T": (0.3, 1.0),
    "adaptation_current": (1.0, 6.0),
    "adaptation_spike": (0.01, 0.5),
    "tau_ada_inv": (1.0, 50.0),
}
LIF_FF = {"v": (-0.5, 1.0), "i": (-1.0, 4.0)}
LIF_REC = {"z": SPIKES, **LIF_FF}
LIFP = f"{F}.lif.LIFParameters"
ADEXP = f"{F}.lif_adex.LIFAdExParameters"
REFRACP = f"{F}.lif_refrac.LIFRefracParameters"
COBA_P = {
    "tau_syn_exc_inv": (0.1, 0.5),
    "tau_syn_inh_inv": (0.1, 0.5),
    "c_m_inv": (3.0, 7.0),
    "g_l": (0.1, 0.4),
    "e_rev_I": (-110.0, -90.0),
    "e_rev_E": (50.0, 70.0),
    "v_rest": (-25.0, -15.0),
    "v_reset": (-75.0, -65.0),
    "v_thresh": (-12.0, -8.0),
    "alpha": (1.0, 1.0),
}
COBA_FF = {"v": (-25.0, -8.0), "g_e": (0.0, 5.0), "g_i": (0.0, 5.0)}


def _only(fields: Dict[str, Range], *names: str) -> Dict[str, Range]:
    return {name: fields[name] for name in names}


NEURONS: List[Neuron] = [
    Neuron(
        "lif", (LIFP, LIF_P),
        (f"{F}.lif.LIFFeedForwardState", LIF_FF), (f"{F}.lif.LIFState", LIF_REC),
        f"{F}.lif.lif_feed_forward_step", f"{F}.lif.lif_step",
        f"{M}.lif.LIFCell", f"{M}.lif.LIF", f"{M}.lif.LIFRecurrentCell", f"{M}.lif.LIFRecurrent",
    ),
    Neuron(
        "li",
        (f"{F}.leaky_integrator.LIParameters",
         _only(LIF_P, "tau_syn_inv", "tau_mem_inv", "v_leak")),
        (f"{F}.leaky_integrator.LIState", LIF_FF), None,
        f"{F}.leaky_integrator.li_feed_forward_step", None,
        f"{M}.leaky_integrator.LICell", f"{M}.leaky_integrator.LI", spiking=False,
    ),
    Neuron(
        "li_box",
        (f"{F}.leaky_integrator_box.LIBoxParameters", _only(LIF_P, "tau_mem_inv", "v_leak")),
        (f"{F}.leaky_integrator_box.LIBoxState", {"v": (-1.0, 1.0)}), None,
        f"{F}.leaky_integrator_box.li_box_feed_forward_step", None,
        f"{M}.leaky_integrator_box.LIBoxCell", spiking=False,
    ),
    Neuron(
        "lif_box",
        (f"{F}.lif_box.LIFBoxParameters",
         _only(LIF_P, "tau_mem_inv", "v_leak", "v_th", "v_reset", "alpha")),
        (f"{F}.lif_box.LIFBoxFeedForwardState", {"v": (-0.5, 1.0)}), None,
        f"{F}.lif_box.lif_box_feed_forward_step", None, f"{M}.lif_box.LIFBoxCell",
        drive=(-5.0, 25.0),
    ),
    Neuron(
        "iaf",
        (f"{F}.iaf.IAFParameters",
         {"v_th": (0.5, 1.0), "v_reset": (-0.3, 0.1), "alpha": (1.0, 1.0)}),
        (f"{F}.iaf.IAFFeedForwardState", {"v": (-0.5, 1.0)}),
        (f"{F}.iaf.IAFState", {"z": SPIKES, "v": (-0.5, 1.0)}),
        f"{F}.iaf.iaf_feed_forward_step", f"{F}.iaf.iaf_step",
        f"{M}.iaf.IAFCell", f"{M}.iaf.IAF", drive=(-0.5, 1.0), weights=(-0.5, 1.0),
    ),
    Neuron(
        "lsnn",
        (f"{F}.lsnn.LSNNParameters",
         {**LIF_P, "tau_adapt_inv": (10.0, 100.0), "beta": (0.5, 2.0)}),
        (f"{F}.lsnn.LSNNFeedForwardState", {**LIF_FF, "b": (0.5, 1.5)}),
        (f"{F}.lsnn.LSNNState", {**LIF_REC, "b": (0.5, 1.5)}),
        f"{F}.lsnn.lsnn_feed_forward_step", f"{F}.lsnn.lsnn_step",
        f"{M}.lsnn.LSNNCell", f"{M}.lsnn.LSNN",
        f"{M}.lsnn.LSNNRecurrentCell", f"{M}.lsnn.LSNNRecurrent",
    ),
    Neuron(
        "lif_ex", (f"{F}.lif_ex.LIFExParameters", {**LIF_P, "delta_T": (0.3, 1.0)}),
        (f"{F}.lif_ex.LIFExFeedForwardState", LIF_FF), (f"{F}.lif_ex.LIFExState", LIF_REC),
        f"{F}.lif_ex.lif_ex_feed_forward_step", f"{F}.lif_ex.lif_ex_step",
        f"{M}.lif_ex.LIFExCell", f"{M}.lif_ex.LIFEx",
        f"{M}.lif_ex.LIFExRecurrentCell", f"{M}.lif_ex.LIFExRecurrent",
    ),
    Neuron(
        "lif_adex", (ADEXP, ADEX_P),
        (f"{F}.lif_adex.LIFAdExFeedForwardState", {**LIF_FF, "a": (-0.5, 0.5)}),
        (f"{F}.lif_adex.LIFAdExState", {**LIF_REC, "a": (-0.5, 0.5)}),
        f"{F}.lif_adex.lif_adex_feed_forward_step", f"{F}.lif_adex.lif_adex_step",
        f"{M}.lif_adex.LIFAdExCell", f"{M}.lif_adex.LIFAdEx",
        f"{M}.lif_adex.LIFAdExRecurrentCell", f"{M}.lif_adex.LIFAdExRecurrent",
    ),
    Neuron(
        "lif_refrac", (REFRACP, {"lif": (LIFP, LIF_P), "rho_reset": (1.0, 4.0)}),
        (f"{F}.lif_refrac.LIFRefracFeedForwardState",
         {"lif": (f"{F}.lif.LIFFeedForwardState", LIF_FF), "rho": COUNTER}),
        (f"{F}.lif_refrac.LIFRefracState",
         {"lif": (f"{F}.lif.LIFState", LIF_REC), "rho": COUNTER}),
        f"{F}.lif_refrac.lif_refrac_feed_forward_step", f"{F}.lif_refrac.lif_refrac_step",
        f"{M}.lif_refrac.LIFRefracCell", None,
        f"{M}.lif_refrac.LIFRefracRecurrentCell", f"{M}.lif_refrac.LIFRefracRecurrent",
    ),
    Neuron(
        "lif_adex_refrac",
        (f"{F}.lif_adex_refrac.LIFAdExRefracParameters",
         {"lif_adex": (ADEXP, ADEX_P), "rho_reset": (1.0, 4.0)}),
        (f"{F}.lif_adex_refrac.LIFAdExRefracFeedForwardState",
         {"lif_adex": (f"{F}.lif_adex.LIFAdExFeedForwardState", {**LIF_FF, "a": (-0.5, 0.5)}),
          "rho": COUNTER}),
        (f"{F}.lif_adex_refrac.LIFAdExRefracState",
         {"lif_adex": (f"{F}.lif_adex.LIFAdExState", {**LIF_REC, "a": (-0.5, 0.5)}),
          "rho": COUNTER}),
        f"{F}.lif_adex_refrac.lif_adex_refrac_feed_forward_step",
        f"{F}.lif_adex_refrac.lif_adex_refrac_step",
        f"{M}.lif_adex_refrac.LIFAdExRefracCell", None,
        f"{M}.lif_adex_refrac.LIFAdExRefracRecurrentCell",
        f"{M}.lif_adex_refrac.LIFAdExRefracRecurrent",
    ),
    Neuron(
        "coba_lif", (f"{F}.coba_lif.CobaLIFParameters", COBA_P),
        (f"{F}.coba_lif.CobaLIFFeedForwardState", COBA_FF),
        (f"{F}.coba_lif.CobaLIFState", {"z": SPIKES, **COBA_FF}),
        f"{F}.coba_lif.coba_lif_feed_forward_step", f"{F}.coba_lif.coba_lif_step",
        drive=(-30.0, 60.0), weights=(-20.0, 40.0),
    ),
    Neuron(
        "lif_mc", (LIFP, LIF_P),
        (f"{F}.lif.LIFFeedForwardState", LIF_FF), (f"{F}.lif.LIFState", LIF_REC),
        f"{F}.lif_mc.lif_mc_feed_forward_step", f"{F}.lif_mc.lif_mc_step",
        rec_cell=f"{M}.lif_mc.LIFMCRecurrentCell", coupling=True,
    ),
    Neuron(
        "lif_mc_refrac", (REFRACP, {"lif": (LIFP, LIF_P), "rho_reset": (1.0, 4.0)}),
        (f"{F}.lif_refrac.LIFRefracFeedForwardState",
         {"lif": (f"{F}.lif.LIFFeedForwardState", LIF_FF), "rho": COUNTER}),
        (f"{F}.lif_refrac.LIFRefracState",
         {"lif": (f"{F}.lif.LIFState", LIF_REC), "rho": COUNTER}),
        f"{F}.lif_mc_refrac.lif_mc_refrac_feed_forward_step",
        f"{F}.lif_mc_refrac.lif_mc_refrac_step",
        rec_cell=f"{M}.lif_mc_refrac.LIFMCRefracRecurrentCell", coupling=True,
    ),
]  # fmt: skip


def _known(neuron: Neuron, default: bool) -> Tuple[Tuple[str, str], ...]:
    return ALPHA_GRADS if default and neuron.spiking else ()


def _coupling(size: int, param: bool = False) -> T:
    return T((size, size), -0.5, 0.5, param=param)


def _name(path: str) -> str:
    return path.rsplit(".", 1)[1]


def _step_cases(n: Neuron, path: str, recurrent: bool) -> List[Case]:
    """A step function over :data:`STEPS` steps from a random state: default, 0-d and
    per-neuron parameters (the last with another ``dt``)."""
    size = H if recurrent else N
    extra = (_coupling(size),) if n.coupling else ()
    if recurrent:
        x = T((STEPS, B, N), spikes=0.5)
        weights = (T((H, N), *n.weights), T((H, H), -1.0, 1.0), *extra)
        state = n.rec_state
    else:
        x, weights, state = T((STEPS, B, N), *n.drive), extra, n.ff_state
    cases = []
    for variant, p, kwargs in (
        ("default", call(n.params[0]), ()),
        ("scalar", tree(*n.params, ()), ()),
        ("tensor", tree(*n.params, (size,)), (("dt", 0.0005),)),
    ):
        cases.append(
            Case(
                f"{n.family}/{_name(path)}/{variant}", path,
                (Step(x), Carry(tree(*state, (B, size))), *weights, p), kwargs,
                steps=STEPS, known=_known(n, variant == "default"),
            )
        )  # fmt: skip
    return cases


def _module_cases(n: Neuron, path: str, recurrent: bool, time: bool) -> List[Case]:
    """A module: default parameters (with and without an input that requires a
    gradient), 0-d parameters from its own first state, per-neuron parameters from a
    random state. Cells run :data:`STEPS` steps; time modules take all at once."""
    size = H if recurrent else N
    x_range = {"spikes": 0.5} if recurrent else dict(zip(("lo", "hi"), n.drive))
    ctor: tuple = (N, H) if recurrent else ()

    def weights() -> Dict[str, Any]:
        if not recurrent:
            return {}
        coupling = {"g_coupling": _coupling(H, param=True)} if n.coupling else {}
        return {
            "input_weights": T((H, N), *n.weights, param=True),
            "recurrent_weights": T((H, H), -1.0, 1.0, param=True),
            **coupling,
        }

    state = n.rec_state if recurrent else n.ff_state
    cases = []
    for variant, kwargs, grad, initial in (
        ("default", {}, True, None),
        ("default-nograd", {}, False, None),
        ("scalar", {"p": tree(*n.params, ())}, True, None),
        ("tensor-state", {"p": tree(*n.params, (size,)), "dt": 0.0005}, True,
         tree(*state, (B, size))),
    ):  # fmt: skip
        module = call(path, *ctor, **kwargs, **weights())
        x = T((STEPS, B, N), grad=grad, **x_range)
        if time:
            args: tuple = (x,) if initial is None else (x, initial)
            case = Case(f"{n.family}/{_name(path)}/{variant}", module, args)
        else:
            case = Case(
                f"{n.family}/{_name(path)}/{variant}",
                module,
                (Step(x), Carry(initial)),
                steps=STEPS,
            )
        # Only default parameters differ (SuperSpike's alpha), where a gradient is taken.
        default = variant == "default" or (variant == "default-nograd" and recurrent)
        cases.append(dataclasses.replace(case, known=_known(n, default)))
    return cases


def neuron_cases(n: Neuron) -> List[Case]:
    cases = []
    if n.ff_step:
        cases += _step_cases(n, n.ff_step, recurrent=False)
    if n.rec_step:
        cases += _step_cases(n, n.rec_step, recurrent=True)
    for path, recurrent, time in (
        (n.cell, False, False),
        (n.time, False, True),
        (n.rec_cell, True, False),
        (n.rec_time, True, True),
    ):
        if path:
            cases += _module_cases(n, path, recurrent, time)
    return cases


def _neuron(family: str) -> Neuron:
    return next(n for n in NEURONS if n.family == family)


def _steps(name: str, fn: Any, *args: Any, known=(), **kwargs: Any) -> Case:
    return Case(name, fn, args, tuple(kwargs.items()), steps=STEPS, known=known)


def _once(name: str, fn: Any, *args: Any, known=(), seed=None, **kwargs: Any) -> Case:
    return Case(name, fn, args, tuple(kwargs.items()), seed=seed, known=known)


def lif_extra_cases() -> List[Case]:
    """LIF beyond the generated forms: every surrogate method, the current encoder, the
    integrals, the sparse step, bool input and the adjoint (which Norse 1.1 rejects as a
    ``method`` inside the step)."""
    lif = _neuron("lif")
    x, state = T((STEPS, B, N), *lif.drive), tree(*lif.ff_state, (B, N))
    step = f"{F}.lif.lif_feed_forward_step"
    cases = [
        _steps(
            f"lif/lif_feed_forward_step/method-{method}", step, Step(x), Carry(state),
            tree(LIFP, {**LIF_P, "alpha": (0.5, 3.0)}, (), method=method)
            if method != "heaviside"
            else call(LIFP, method=method),
        )
        for method in ("heaviside", "triangle", "tanh", "circ", "heavi_erfc")
    ]  # fmt: skip
    cases += [
        _steps(f"lif/lif_feed_forward_step/method-{method}", step, Step(x), Carry(state),
               call(LIFP, method=method))
        for method in ("adjoint", "unknown")
    ]  # fmt: skip
    cases += [
        _steps("lif/lif_feed_forward_step/bool-input", step,
               Step(T((STEPS, B, N), spikes=0.6, dtype="bool")), Carry(state),
               tree(LIFP, LIF_P, ())),
        _steps("lif/lif_current_encoder/scalar", f"{F}.lif.lif_current_encoder", Step(x),
               Carry(T((B, N), -0.5, 1.0)), tree(LIFP, LIF_P, ())),
        _once("lif/lif_feed_forward_integral/scalar", f"{F}.lif.lif_feed_forward_integral",
              x, state, tree(LIFP, LIF_P, ())),
        _once("lif/lif_step_integral/scalar", f"{F}.lif.lif_step_integral",
              T((STEPS, B, N), spikes=0.5), tree(*lif.rec_state, (B, H)),
              T((H, N), -1.0, 3.0), T((H, H)), tree(LIFP, LIF_P, ())),
        _once("lif/lif_feed_forward_step_sparse/scalar", f"{F}.lif.lif_feed_forward_step_sparse",
              call("torch.Tensor.to_sparse", T((B, N), 0.0, 8.0, grad=False)), state,
              tree(LIFP, LIF_P, ())),
        _steps("lif/LIFCell/method-adjoint", call(f"{M}.lif.LIFCell", p=call(LIFP, method="adjoint")),
               Step(x), Carry(None), known=(("error", ADJOINT_CELL),)),
        _steps("lif/LIFCell/bool-input", call(f"{M}.lif.LIFCell"),
               Step(T((STEPS, B, N), spikes=0.6, dtype="bool")), Carry(None)),
        _steps("lif/LIFCell/parameter-fields", call(f"{M}.lif.LIFCell", p=call(LIFP, **{
            name: T((), *LIF_P[name], param=True) for name in LIF_P})),
            Step(x), Carry(None)),
        _once("lif/lif_step_sparse/scalar", f"{F}.lif.lif_step_sparse",
              call("torch.Tensor.to_sparse", T((B, N), spikes=0.5, grad=False)),
              tree(*lif.rec_state, (B, H)), T((H, N), -1.0, 3.0), T((H, H)),
              tree(LIFP, LIF_P, ())),
        _once("lif_refrac/compute_refractory_update/call",
              f"{F}.lif_refrac.compute_refractory_update",
              tree(*_neuron("lif_refrac").ff_state, (B, N)), T((B, N), spikes=0.5),
              T((B, N)), tree(REFRACP, {"lif": (LIFP, LIF_P), "rho_reset": (1.0, 4.0)}, ())),
        _once("lif_adex_refrac/compute_refractory_update/call",
              f"{F}.lif_adex_refrac.compute_refractory_update",
              tree(*_neuron("lif_adex_refrac").ff_state, (B, N)), T((B, N), spikes=0.5),
              T((B, N)), tree(*_neuron("lif_adex_refrac").params, ())),
        _steps("lsnn/ada_lif_step/scalar", f"{F}.lsnn.ada_lif_step",
               Step(T((STEPS, B, N), spikes=0.5)), Carry(tree(*_neuron("lsnn").rec_state, (B, H))),
               T((H, N), -1.0, 3.0), T((H, H)), tree(*_neuron("lsnn").params, ())),
    ]  # fmt: skip
    return cases


def leaky_integrator_cases() -> List[Case]:
    """The leaky integrators with input weights (no recurrence) and LILinearCell."""
    li_p = _only(LIF_P, "tau_syn_inv", "tau_mem_inv", "v_leak")
    box_p = _only(LIF_P, "tau_mem_inv", "v_leak")
    li, box = f"{F}.leaky_integrator", f"{F}.leaky_integrator_box"
    x = T((STEPS, B, N), spikes=0.5)
    return [
        _steps("li/li_step/scalar", f"{li}.li_step", Step(x),
               Carry(tree(f"{li}.LIState", LIF_FF, (B, H))), T((H, N), -1.0, 3.0),
               tree(f"{li}.LIParameters", li_p, ())),
        _steps("li/li_step/default", f"{li}.li_step", Step(x),
               Carry(tree(f"{li}.LIState", LIF_FF, (B, H))), T((H, N), -1.0, 3.0)),
        _steps("li_box/li_box_step/tensor", f"{box}.li_box_step", Step(x),
               Carry(tree(f"{box}.LIBoxState", {"v": (-1.0, 1.0)}, (B, H))),
               T((H, N), -1.0, 3.0), tree(f"{box}.LIBoxParameters", box_p, (H,)), dt=0.002),
        _steps("li/LILinearCell/scalar", call(
            f"{M}.leaky_integrator.LILinearCell", N, H, p=tree(f"{li}.LIParameters", li_p, ()),
            attrs={"input_weights": T((H, N), -1.0, 3.0)}), Step(x), Carry(None)),
        _steps("li/LILinearCell/default", call(
            f"{M}.leaky_integrator.LILinearCell", N, H,
            attrs={"input_weights": T((H, N), -1.0, 3.0)}), Step(x), Carry(None)),
    ]  # fmt: skip


def lif_box_cases() -> List[Case]:
    """The box LIF with the subtractive reset and with ``alpha=0`` (valid in Norse 1.1)."""
    n = _neuron("lif_box")
    path = f"{F}.lif_box.LIFBoxParameters"
    fields = _only(LIF_P, "tau_mem_inv", "v_leak", "v_th", "v_reset", "alpha")
    subtract = tree(path, fields, (), reset_method=Ref(f"{F}.reset.reset_subtract"))
    zero = tree(path, {**fields, "alpha": (0.0, 0.0)}, ())
    x = T((STEPS, B, N), *n.drive)
    state = tree(*n.ff_state, (B, N))
    return [
        _steps("lif_box/lif_box_feed_forward_step/reset-subtract", n.ff_step, Step(x),
               Carry(state), subtract),
        _steps("lif_box/lif_box_feed_forward_step/alpha-0", n.ff_step, Step(x),
               Carry(state), zero, known=ALPHA_GRADS),
        _steps("lif_box/LIFBoxCell/alpha-0", call(n.cell, p=zero), Step(x), Carry(None),
               known=ALPHA_GRADS),
    ]  # fmt: skip


def encoder_cases() -> List[Case]:
    """Current encoders of the LIF family, run from a random voltage."""
    v = T((B, N), -0.5, 0.9)
    x = T((STEPS, B, N), -2.0, 8.0)
    ex_p = tree(f"{F}.lif_ex.LIFExParameters", {**LIF_P, "delta_T": (0.3, 1.0)}, ())
    return [
        _steps("lif_ex/lif_ex_current_encoder/scalar", f"{F}.lif_ex.lif_ex_current_encoder",
               Step(x), Carry(v), ex_p),
        _once("lif_ex/lif_ex_current_encoder/default", f"{F}.lif_ex.lif_ex_current_encoder",
              T((B, N), 0.0, 8.0), v, known=ALPHA_GRADS),
        _once("lif_adex/lif_adex_current_encoder/scalar", f"{F}.lif_adex.lif_adex_current_encoder",
              T((B, N), 0.0, 8.0), v, T((B, N), -0.5, 0.5), tree(ADEXP, ADEX_P, ()),
              known=(("out:out.2", ADEX_ENCODER), ("grad:*", ADEX_ENCODER))),
    ]  # fmt: skip


def adjoint_cases() -> List[Case]:
    """The adjoint steps (hand-written backward passes) and the LSNN adjoint modules."""
    cases = []
    for family, ff_step, rec_step in (
        ("lif", "lif_adjoint.lif_feed_forward_adjoint_step", "lif_adjoint.lif_adjoint_step"),
        ("lif_refrac", "lif_refrac_adjoint.lif_refrac_feed_forward_adjoint_step",
         "lif_refrac_adjoint.lif_refrac_adjoint_step"),
        ("lsnn", "lsnn_adjoint.lsnn_feed_forward_adjoint_step", "lsnn_adjoint.lsnn_adjoint_step"),
    ):  # fmt: skip
        n = dataclasses.replace(
            _neuron(family), family="adjoint", ff_step=f"{F}.adjoint.{ff_step}",
            rec_step=f"{F}.adjoint.{rec_step}", cell=None, time=None, rec_cell=None,
            rec_time=None,
        )  # fmt: skip
        cases += neuron_cases(n)
    lsnn = _neuron("lsnn")
    for path, recurrent, time in (
        (lsnn.cell, False, False), (lsnn.time, False, True),
        (lsnn.rec_cell, True, False), (lsnn.rec_time, True, True),
    ):  # fmt: skip
        for case in _module_cases(lsnn, path, recurrent, time):
            if case.name.endswith(("/default", "/scalar")):
                module = dataclasses.replace(
                    case.fn, kwargs=case.fn.kwargs + (("adjoint", True),)
                )
                name = case.name.replace("lsnn/", "adjoint/") + "-adjoint"
                cases.append(dataclasses.replace(case, name=name, fn=module))
    return cases


IZ_P = {
    "a": (0.01, 0.1), "b": (0.1, 0.3), "c": (-70.0, -50.0), "d": (0.0, 8.0),
    "sq": (0.03, 0.05), "mn": (4.0, 6.0), "bias": (100.0, 150.0), "v_th": (25.0, 35.0),
    "tau_inv": (150.0, 300.0), "alpha": (1.0, 1.0),
}  # fmt: skip
IZP = f"{F}.izhikevich.IzhikevichParameters"
IZ_STATE = f"{F}.izhikevich.IzhikevichState"
IZ_FF = {"v": (-70.0, 25.0), "u": (-16.0, -10.0)}
PRESETS = (
    "tonic_spiking", "phasic_spiking", "tonic_bursting", "phasic_bursting", "mixed_mode",
    "spike_frequency_adaptation", "class_1_exc", "class_2_exc", "spike_latency",
    "subthreshold_oscillation", "resonator", "integrator", "rebound_spike", "rebound_burst",
    "threshold_variability", "bistability", "dap", "accomodation",
    "inhibition_induced_spiking", "inhibition_induced_bursting",
)  # fmt: skip


def izhikevich_cases() -> List[Case]:
    """Izhikevich: the steps, every preset behaviour in a cell, random behaviours in all
    four module forms, and ``create_izhikevich_spiking_behavior``."""
    iz = f"{F}.izhikevich"
    x = T((STEPS, B, N), 0.0, 40.0)
    spikes = T((STEPS, B, N), spikes=0.5)
    w_in, w_rec = T((H, N), 0.0, 40.0), T((H, H), -10.0, 10.0)
    drive = T((STEPS, B, N), 0.0, 150.0)  # from rest, 5 steps of 0.25 ms need a lot
    rec_state = {"z": SPIKES, **IZ_FF}
    cases = []
    for variant, p, shape in (
        ("default", Ref(f"{iz}.tonic_spiking.p"), None),
        ("scalar", tree(IZP, IZ_P, ()), ()),
        ("tensor", tree(IZP, IZ_P, (N,)), (N,)),
    ):
        known = ALPHA_GRADS if variant == "default" else ()
        cases.append(
            _steps(
                f"izhikevich/izhikevich_feed_forward_step/{variant}",
                f"{iz}.izhikevich_feed_forward_step",
                Step(x),
                Carry(tree(IZ_STATE, IZ_FF, (B, N))),
                p,
                known=known,
            )
        )
        p_rec = tree(IZP, IZ_P, (H,)) if shape else p
        cases.append(_steps(f"izhikevich/izhikevich_recurrent_step/{variant}",
                            f"{iz}.izhikevich_recurrent_step", Step(spikes),
                            Carry(tree(f"{iz}.IzhikevichRecurrentState", rec_state, (B, H))),
                            w_in, w_rec, p_rec, known=known))  # fmt: skip
    # dap's changed reset (d) shows only after its first spike: a longer drive
    long_drive = T((40, B, N), 100.0, 500.0)
    for preset in PRESETS:
        changed = preset in ("dap", "accomodation", "inhibition_induced_bursting")
        known = ALPHA_GRADS + ((("out:*", PRESETS_CHANGED),) if changed else ())
        cases.append(
            _steps(
                f"izhikevich/IzhikevichCell/{preset}",
                call(f"{M}.izhikevich.IzhikevichCell", Ref(f"{iz}.{preset}")),
                Step(long_drive if preset == "dap" else drive),
                Carry(None),
                known=known,
            )
        )
    behaviour = call(
        f"{iz}.IzhikevichSpikingBehavior",
        p=tree(IZP, IZ_P, ()),
        s=tree(IZ_STATE, IZ_FF, ()),
    )
    weights = {
        "input_weights": T((H, N), 0.0, 80.0, param=True),
        "recurrent_weights": T((H, H), -10.0, 10.0, param=True),
    }
    tonic = Ref(f"{iz}.tonic_spiking")
    for cls, recurrent in (
        ("IzhikevichCell", False),
        ("Izhikevich", False),
        ("IzhikevichRecurrentCell", True),
        ("IzhikevichRecurrent", True),
    ):
        ctor = (N, H) if recurrent else ()
        extra = weights if recurrent else {}
        inputs = spikes if recurrent else drive
        for variant, method, known in (
            ("default", tonic, ALPHA_GRADS),
            ("random", behaviour, ()),
        ):
            module = call(f"{M}.izhikevich.{cls}", *ctor, method, **extra)
            if cls.endswith("Cell"):
                cases.append(
                    _steps(
                        f"izhikevich/{cls}/{variant}",
                        module,
                        Step(inputs),
                        Carry(None),
                        known=known,
                    )
                )
            else:
                cases.append(
                    _once(f"izhikevich/{cls}/{variant}", module, inputs, known=known)
                )
    cases.append(
        _once(
            "izhikevich/create_izhikevich_spiking_behavior/call",
            f"{iz}.create_izhikevich_spiking_behavior",
            0.02,
            0.2,
            -65.0,
            6.0,
            -70.0,
            -14.0,
            tau_inv=200.0,
        )
    )
    return cases  # fmt: skip


def coba_cases() -> List[Case]:
    """CobaLIFCell: from its own first state and from a random state without input (the
    input conductances are where Norse 1.1 is wrong)."""
    coba = _neuron("coba_lif")
    p = tree(f"{F}.coba_lif.CobaLIFParameters", COBA_P, ())
    attrs = {
        "input_weights": T((H, N), -20.0, 40.0),
        "recurrent_weights": T((H, H), -20.0, 40.0),
    }
    cell = f"{M}.coba_lif.CobaLIFCell"
    both = (("out:*", COBA), ("grad:*", COBA))
    return [
        _steps("coba_lif/CobaLIFCell/default", call(cell, N, H, attrs=attrs),
               Step(T((STEPS, B, N), spikes=0.5)), Carry(None), known=both),
        _steps("coba_lif/CobaLIFCell/scalar", call(cell, N, H, p=p, dt=0.002, attrs=attrs),
               Step(T((STEPS, B, N), spikes=0.5)), Carry(None), known=both),
        _steps("coba_lif/CobaLIFCell/no-input",
               call(cell, N, H, p=p, attrs=attrs), Step(T((STEPS, B, N), value=0.0)),
               Carry(tree(*coba.rec_state, (B, H)))),
        _steps("coba_lif/coba_lif_step/no-input", f"{F}.coba_lif.coba_lif_step",
               Step(T((STEPS, B, N), value=0.0)), Carry(tree(*coba.rec_state, (B, H))),
               T((H, N), -20.0, 40.0), T((H, H), -20.0, 40.0), p),
    ]  # fmt: skip


def adex_refrac_cases() -> List[Case]:
    """Refractory AdEx without a refractory period (``rho_reset=0`` from ``rho=0``): the
    fixed Norse 1.1 bug (adaptation of suppressed spikes) cannot show, the rest must match."""
    n = _neuron("lif_adex_refrac")
    p = call(n.params[0], lif_adex=tree(ADEXP, ADEX_P, ()), rho_reset=T(value=0.0))
    ff = dataclasses.replace(
        n, ff_state=(n.ff_state[0], {**n.ff_state[1], "rho": (0.0, 0.0)})
    )
    rec = dataclasses.replace(
        n, rec_state=(n.rec_state[0], {**n.rec_state[1], "rho": (0.0, 0.0)})
    )
    return [
        _steps("lif_adex_refrac/lif_adex_refrac_feed_forward_step/no-refractory", n.ff_step,
               Step(T((STEPS, B, N), *n.drive)), Carry(tree(*ff.ff_state, (B, N))), p),
        _steps("lif_adex_refrac/lif_adex_refrac_step/no-refractory", n.rec_step,
               Step(T((STEPS, B, N), spikes=0.5)), Carry(tree(*rec.rec_state, (B, H))),
               T((H, N), *n.weights), T((H, H)), p),
        _steps("lif_adex_refrac/LIFAdExRefracCell/no-refractory", call(n.cell, p=p),
               Step(T((STEPS, B, N), *n.drive)), Carry(tree(*ff.ff_state, (B, N)))),
    ]  # fmt: skip


def encode_cases() -> List[Case]:
    """Encoders (random ones seeded by a generator or ``torch.manual_seed``)."""
    enc, menc = f"{F}.encode", f"{M}.encode"
    current = T((B, N), 0.0, 8.0)
    unit, signed = T((B, N), 0.0, 1.0), T((B, N), -1.0, 1.0)
    p = tree(LIFP, LIF_P, ())
    return [
        _once("encode/constant_current_lif_encode/default", f"{enc}.constant_current_lif_encode",
              current, STEPS, known=ALPHA_GRADS),
        _once("encode/constant_current_lif_encode/scalar", f"{enc}.constant_current_lif_encode",
              current, STEPS, p, dt=0.0005),
        _once("encode/poisson_encode/generator", f"{enc}.poisson_encode", unit, STEPS,
              f_max=300.0, generator=Gen(1)),
        _once("encode/poisson_encode/manual_seed", f"{enc}.poisson_encode", unit, STEPS, seed=3),
        _once("encode/poisson_encode/float32", f"{enc}.poisson_encode",
              T((B, N), 0.0, 1.0, dtype="float32"), STEPS, f_max=300.0, generator=Gen(12)),
        _once("encode/PoissonEncoder/float32", call(f"{menc}.PoissonEncoder", STEPS),
              T((B, N), 0.0, 1.0, dtype="float32"), seed=13),
        _once("encode/poisson_encode_step/generator", f"{enc}.poisson_encode_step", unit,
              f_max=500.0, dt=0.002, generator=Gen(2)),
        _once("encode/signed_poisson_encode/generator", f"{enc}.signed_poisson_encode", signed,
              STEPS, f_max=300.0, generator=Gen(4)),
        _once("encode/signed_poisson_encode_step/generator", f"{enc}.signed_poisson_encode_step",
              signed, generator=Gen(5)),
        _once("encode/population_encode/default", f"{enc}.population_encode", unit, 5),
        _once("encode/population_encode/scale-int", f"{enc}.population_encode", unit, 5, 2),
        _once("encode/population_encode/scale-tensor", f"{enc}.population_encode", unit, 5,
              T(value=2.0), known=(("grad:a2", POPULATION),)),
        _once("encode/population_encode/functions", f"{enc}.population_encode", unit, 4,
              kernel=Ref(f"{enc}.gaussian_rbf"), distance_function=Ref(f"{enc}.euclidean_distance")),
        _once("encode/gaussian_rbf/default", f"{enc}.gaussian_rbf", T((B, N), 0.0, 3.0)),
        _once("encode/gaussian_rbf/sigma", f"{enc}.gaussian_rbf", T((B, N), 0.0, 3.0), 0.7),
        _once("encode/euclidean_distance/call", f"{enc}.euclidean_distance", unit, signed),
        _once("encode/spike_latency_encode/call", f"{enc}.spike_latency_encode",
              T((STEPS, B, N), spikes=0.3)),
        _once("encode/spike_latency_lif_encode/default", f"{enc}.spike_latency_lif_encode",
              current, STEPS, known=ALPHA_GRADS),
        _once("encode/spike_latency_lif_encode/scalar", f"{enc}.spike_latency_lif_encode",
              current, STEPS, p, dt=0.0005),
        _once("encode/ConstantCurrentLIFEncoder/scalar",
              call(f"{menc}.ConstantCurrentLIFEncoder", STEPS, p=p), current),
        _once("encode/PoissonEncoder/manual_seed", call(f"{menc}.PoissonEncoder", STEPS, f_max=300.0),
              unit, seed=6),
        _once("encode/PoissonEncoderStep/manual_seed", call(f"{menc}.PoissonEncoderStep", f_max=300.0),
              unit, seed=7),
        _once("encode/SignedPoissonEncoder/manual_seed",
              call(f"{menc}.SignedPoissonEncoder", STEPS, f_max=300.0), signed, seed=8),
        _once("encode/SignedPoissonEncoderStep/manual_seed",
              call(f"{menc}.SignedPoissonEncoderStep", f_max=300.0), signed, seed=9),
        _once("encode/PopulationEncoder/scale", call(f"{menc}.PopulationEncoder", 5, scale=2), unit),
        _once("encode/SpikeLatencyEncoder/call", call(f"{menc}.SpikeLatencyEncoder"),
              T((STEPS, B, N), spikes=0.3)),
        _once("encode/SpikeLatencyLIFEncoder/scalar",
              call(f"{menc}.SpikeLatencyLIFEncoder", STEPS, p=p), current),
    ]  # fmt: skip


def decode_cases() -> List[Case]:
    # float32, every neuron spiking often enough: Norse 1.1's backward fails otherwise.
    spikes = T((STEPS, B, N), spikes=0.8, dtype="float32")
    s2t = f"{F}.spikes_to_times_decoder.ToSpikeTimes.apply"
    decoder = f"{M}.spikes_to_times_decoder.SpikesToTimesDecoder"
    return [
        _once("decode/sum_decode/default", f"{F}.decode.sum_decode", T((STEPS, B, N))),
        _once("decode/sum_decode/dimension", f"{F}.decode.sum_decode", T((STEPS, B, N)), 2),
        _once("decode/ToSpikeTimes/count-2", s2t, spikes, call("torch.tensor", 2)),
        _once("decode/ToSpikeTimes/count-1", s2t,
              T((STEPS, B, N), spikes=0.8, dtype="float32"), 1),
        _once("decode/SpikesToTimesDecoder/default", call(decoder), spikes),
        _once("decode/SpikesToTimesDecoder/count-2", call(
            decoder, spike_count=call("torch.tensor", 2), convert_indices_to_times=False), spikes),
        _once("decode/SpikesToTimesDecoder/dt", call(decoder, dt=0.002), spikes),
    ]  # fmt: skip


def stdp_cases() -> List[Case]:
    """STDP (linear and 2-d convolution, every weight dependence) and the sensors."""
    stdp = f"{F}.stdp"
    cases = []
    for kind, pre, post, w, extra in (
        ("linear", (B, N), (B, H), (H, N), {}),
        ("conv2d", (B, 2, 5, 5), (B, 3, 3, 3), (3, 2, 3, 3), {"convolutional": True}),
        ("conv2d-padded", (B, 2, 4, 4), (B, 3, 2, 2), (3, 2, 3, 3),
         {"convolutional": True, "padding": 1, "stride": 2}),
    ):  # fmt: skip
        fn = f"{stdp}.stdp_step_{kind.split('-')[0]}"
        for algorithm, more in (
            ("additive", {}), ("additive_step", {}), ("multiplicative_pow", {"mu": 0.5}),
            ("multiplicative_relu", {}), ("additive-softbound", {"hardbound": False}),
        ):  # fmt: skip
            if kind != "linear" and algorithm not in ("additive", "multiplicative_pow"):
                continue
            p = call(
                f"{stdp}.STDPParameters", a_pre=T((), 0.5, 1.5), a_post=T((), 0.5, 1.5),
                tau_pre_inv=T((), 10.0, 50.0), tau_post_inv=T((), 10.0, 50.0),
                eta_plus=T((), 0.02, 0.2), eta_minus=T((), 0.02, 0.2),
                stdp_algorithm=algorithm.split("-")[0], **more, **extra,
            )  # fmt: skip
            state = call(f"{stdp}.STDPState", T(pre, 0.0, 1.0), T(post, 0.0, 1.0))
            cases.append(_steps(
                f"stdp/stdp_step_{kind}/{algorithm}", fn, Step(T((STEPS, *pre), spikes=0.5)),
                Step(T((STEPS, *post), spikes=0.5)), Carry(T(w, 0.0, 1.0), "0"),
                Carry(state, "1"), p,
            ))  # fmt: skip
    cases.append(_steps(
        "stdp/stdp_step_linear/default", f"{stdp}.stdp_step_linear",
        Step(T((STEPS, B, N), spikes=0.5)), Step(T((STEPS, B, H), spikes=0.5)),
        Carry(T((H, N), 0.0, 1.0), "0"),
        Carry(call(f"{stdp}.STDPState", T((B, N), 0.0, 1.0), T((B, H), 0.0, 1.0)), "1"),
    ))  # fmt: skip
    sensor = f"{F}.stdp_sensor"
    sensor_p = {"eta_p": (0.5, 1.5), "eta_m": (0.5, 1.5), "tau_ac_inv": (5.0, 50.0),
                "tau_c_inv": (5.0, 50.0)}  # fmt: skip
    sensor_state = call(f"{sensor}.STDPSensorState", a_pre=T((B, N), 0.0, 1.0),
                        a_post=T((B, N), 0.0, 1.0))  # fmt: skip
    for variant, p, known in (
        ("default", call(f"{sensor}.STDPSensorParameters"), ()),
        ("scalar", tree(f"{sensor}.STDPSensorParameters", sensor_p, ()),
         (("out:*.a_post", STDP_SENSOR), ("grad:*", STDP_SENSOR))),
        ("equal-taus", call(f"{sensor}.STDPSensorParameters", T((), 0.5, 1.5), T((), 0.5, 1.5),
                            T(value=20.0), T(value=20.0)), ()),
    ):  # fmt: skip
        cases.append(_steps(
            f"stdp/stdp_sensor_step/{variant}", f"{sensor}.stdp_sensor_step",
            Step(T((STEPS, B, N), spikes=0.5)), Step(T((STEPS, B, N), spikes=0.5)),
            Carry(sensor_state, ""), p, known=known,
        ))  # fmt: skip
    return cases


def plasticity_cases() -> List[Case]:
    """Tsodyks-Markram short-term plasticity and the correlation sensors (batch 1:
    Norse 1.1 broadcasts the pre-synaptic spikes against the hidden dimension)."""
    tm = f"{F}.tsodyks_makram"
    cs = f"{F}.correlation_sensor"
    tm_p = {"tau_f_inv": (10.0, 40.0), "tau_s_inv": (30.0, 70.0), "tau_d_inv": (1.0, 5.0),
            "U": (0.2, 0.6)}  # fmt: skip
    tm_state = call(
        f"{tm}.TsodyksMakramState", u=T((B, N), 0.0, 0.5), x=T((B, N), 0.5, 1.0)
    )
    cs_p = {"eta_p": (0.5, 1.5), "eta_m": (0.5, 1.5), "tau_ac_inv": (5.0, 50.0),
            "tau_c_inv": (5.0, 50.0)}  # fmt: skip

    def sensor_state(pre: int, post: int, grad: bool = True) -> Call:
        return call(f"{cs}.CorrelationSensorState", post_pre=T((1, pre, post), spikes=0.5),
                    correlation_trace=T((1, pre, post), 0.0, 1.0, grad=grad),
                    anti_correlation_trace=T((1, pre, post), 0.0, 1.0, grad=grad))  # fmt: skip

    lif_corr = f"{F}.lif_correlation"
    corr_p = call(
        f"{lif_corr}.LIFCorrelationParameters",
        tree(LIFP, LIF_P, ()),
        tree(f"{cs}.CorrelationSensorParameters", cs_p, ()),
        tree(f"{cs}.CorrelationSensorParameters", cs_p, ()),
    )
    corr_state = call(
        f"{lif_corr}.LIFCorrelationState",
        tree(f"{F}.lif.LIFState", LIF_REC, (1, H)),
        sensor_state(N, H),
        sensor_state(H, H),
    )
    linear = call(
        "torch.nn.Linear",
        2 * N * H,
        N * H,
        attrs={
            "weight": T((N * H, 2 * N * H), -0.2, 0.2),
            "bias": T((N * H,), -0.2, 0.2),
        },
    )
    spikes_in, spikes_out = T((STEPS, 1, N), spikes=0.5), T((STEPS, 1, H), spikes=0.5)
    return [
        _steps("stp/stp_step/default", f"{tm}.stp_step", Step(T((STEPS, B, N), spikes=0.5)),
               Carry(tm_state), call(f"{tm}.TsodyksMakramParameters")),
        _steps("stp/stp_step/scalar", f"{tm}.stp_step", Step(T((STEPS, B, N), spikes=0.5)),
               Carry(tm_state), tree(f"{tm}.TsodyksMakramParameters", tm_p, ()), dt=0.002),
        _steps("stp/stp_step/tensor", f"{tm}.stp_step", Step(T((STEPS, B, N), spikes=0.5)),
               Carry(tm_state), tree(f"{tm}.TsodyksMakramParameters", tm_p, (N,))),
        _steps("correlation/correlation_sensor_step/default", f"{cs}.correlation_sensor_step",
               Step(spikes_in), Step(spikes_out), Carry(sensor_state(N, H), "")),
        _steps("correlation/correlation_sensor_step/scalar", f"{cs}.correlation_sensor_step",
               Step(spikes_in), Step(spikes_out), Carry(sensor_state(N, H), ""),
               tree(f"{cs}.CorrelationSensorParameters", cs_p, ()), dt=0.002),
        _once("correlation/correlation_based_update/update", f"{cs}.correlation_based_update",
              4, linear, T((H, N)), sensor_state(N, H, grad=False), 0.1, 2),
        _once("correlation/correlation_based_update/skip", f"{cs}.correlation_based_update",
              3, linear, T((H, N)), sensor_state(N, H, grad=False), 0.1, 2),
        _steps("correlation/lif_correlation_step/default", f"{lif_corr}.lif_correlation_step",
               Step(spikes_in), Carry(corr_state), T((H, N), -1.0, 3.0), T((H, H)),
               known=ALPHA_GRADS),
        _steps("correlation/lif_correlation_step/scalar", f"{lif_corr}.lif_correlation_step",
               Step(spikes_in), Carry(corr_state), T((H, N), -1.0, 3.0), T((H, H)), corr_p),
        _steps("correlation/LIFCorrelation/scalar",
               call(f"{M}.lif_correlation.LIFCorrelation", N, H, p=corr_p),
               Step(spikes_in), T((H, N), -1.0, 3.0), T((H, H)), Carry(None)),
    ]  # fmt: skip


def composition_cases() -> List[Case]:
    """Lift, SequentialState, RecurrentSequential and regularization."""
    lif_p = tree(LIFP, LIF_P, ())
    ff_state = tree(f"{F}.lif.LIFFeedForwardState", LIF_FF, (B, N))
    x = T((STEPS, B, N), -2.0, 8.0)

    def linear(inputs: int, outputs: int) -> Call:
        return call(
            "torch.nn.Linear",
            inputs,
            outputs,
            attrs={
                "weight": T((outputs, inputs), -1.0, 2.0),
                "bias": T((outputs,), -0.5, 0.5),
            },
        )

    seq, reg = f"{M}.sequential", f"{F}.regularization"
    spikes = T((B, N), spikes=0.5)
    voltages = call(f"{F}.lif.LIFFeedForwardState", T((B, N)), T((B, N)))
    step_voltages = call(
        f"{F}.lif.LIFFeedForwardState", T((STEPS, B, N)), T((STEPS, B, N))
    )
    return [
        _once("lift/lift/lif", call(f"{F}.lift.lift", Ref(f"{F}.lif.lif_feed_forward_step"),
                                    p=lif_p), x, state=ff_state),
        _once("lift/lift/li", call(f"{F}.lift.lift", Ref(f"{F}.leaky_integrator.li_feed_forward_step")),
              x, state=tree(f"{F}.leaky_integrator.LIState", LIF_FF, (B, N))),
        _once("lift/Lift/cell", call(f"{M}.lift.Lift", call(f"{M}.lif.LIFCell", p=lif_p)), x),
        _once("lift/Lift/cell-state", call(f"{M}.lift.Lift", call(f"{M}.lif.LIFCell", p=lif_p)),
              (x, ff_state)),
        _once("lift/Lift/linear", call(f"{M}.lift.Lift", linear(N, H)), x),
        _steps("sequential/SequentialState/cells",
               call(f"{seq}.SequentialState", linear(N, H), call(f"{M}.lif.LIFCell", p=lif_p),
                    call(f"{M}.leaky_integrator.LICell")), Step(x), Carry(None)),
        _steps("sequential/SequentialState/hidden",
               call(f"{seq}.SequentialState", linear(N, H), call(f"{M}.lif.LIFCell", p=lif_p),
                    return_hidden=True), Step(x), Carry(None)),
        _once("sequential/SequentialState/time",
              call(f"{seq}.SequentialState", call(f"{M}.lift.Lift", linear(N, H)),
                   call(f"{M}.lif.LIF", p=lif_p), call(f"{M}.leaky_integrator.LI")), x),
        _steps("sequential/RecurrentSequential/cells",
               call(f"{seq}.RecurrentSequential", linear(N, N), call(f"{M}.lif.LIFCell", p=lif_p)),
               Step(x), Carry(None)),
        _once("regularization/regularize_step/spikes", f"{reg}.regularize_step", spikes, voltages),
        _once("regularization/regularize_step/voltages", f"{reg}.regularize_step", spikes,
              voltages, Ref(f"{reg}.voltage_accumulator"), T((B, N))),
        _once("regularization/spike_accumulator/state", f"{reg}.spike_accumulator", spikes,
              None, T(())),
        _once("regularization/voltage_accumulator/default", f"{reg}.voltage_accumulator",
              spikes, voltages),
        _steps("regularization/RegularizationCell/spikes",
               call(f"{M}.regularization.RegularizationCell"),
               Step(T((STEPS, B, N), spikes=0.5)), Step(step_voltages)),
        _steps("regularization/RegularizationCell/voltages",
               call(f"{M}.regularization.RegularizationCell", Ref(f"{reg}.voltage_accumulator")),
               Step(T((STEPS, B, N), spikes=0.5)), Step(step_voltages)),
    ]  # fmt: skip


def _float32(node: Any) -> Any:
    """``node`` with every float leaf in float32 (to meet the float32 weights a module
    draws)."""
    if isinstance(node, T):
        return (
            dataclasses.replace(node, dtype="float32")
            if node.dtype == "float64"
            else node
        )
    if isinstance(node, Call):
        return dataclasses.replace(
            node,
            args=tuple(_float32(a) for a in node.args),
            kwargs=tuple((k, _float32(v)) for k, v in node.kwargs),
        )
    return node


def lift_cases() -> List[Case]:
    """``lift`` of every feed-forward step function and ``Lift`` of every cell, with
    0-d random parameters (``alpha=1``: the gradients are comparable)."""
    # fmt: off
    cases = []
    refrac_known = {
        "lif_adex_refrac": (("out:*", ADEX_REFRAC), ("grad:*", ADEX_REFRAC)),
        "lif_mc_refrac": (("out:*", MC_REFRAC), ("grad:*", MC_REFRAC)),
    }
    for n in NEURONS:
        known = refrac_known.get(n.family, ())
        x = T((STEPS, B, N), *n.drive)
        state = tree(*n.ff_state, (B, N))
        if n.ff_step and n.family not in ("lif", "li"):
            extra = {"g_coupling": _coupling(N)} if n.coupling else {}
            cases.append(_once(
                f"lift/lift/{n.family}", call(f"{F}.lift.lift", Ref(n.ff_step),
                                              p=tree(*n.params, ())),
                x, state=state, **extra, known=known))
        if n.cell and n.family != "lif":
            cases.append(_once(f"lift/Lift/{_name(n.cell)}",
                               call(f"{M}.lift.Lift", call(n.cell, p=tree(*n.params, ()))),
                               x, known=known))
    iz = f"{F}.izhikevich"
    behaviour = call(f"{iz}.IzhikevichSpikingBehavior", p=tree(IZP, IZ_P, ()),
                     s=tree(IZ_STATE, IZ_FF, ()))
    lif_p = tree(LIFP, LIF_P, ())
    spikes = T((STEPS, B, N), spikes=0.5)
    cases += [
        _once("lift/lift/izhikevich",
              call(f"{F}.lift.lift", Ref(f"{iz}.izhikevich_feed_forward_step"),
                   p=tree(IZP, IZ_P, ())),
              T((STEPS, B, N), 0.0, 40.0), state=tree(IZ_STATE, IZ_FF, (B, N))),
        _once("lift/lift/lif-recurrent",
              call(f"{F}.lift.lift", Ref(f"{F}.lif.lif_step"), p=lif_p), spikes,
              state=tree(*_neuron("lif").rec_state, (B, H)),
              input_weights=T((H, N), -1.0, 3.0), recurrent_weights=T((H, H))),
        _once("lift/Lift/IzhikevichCell",
              call(f"{M}.lift.Lift", call(f"{M}.izhikevich.IzhikevichCell", behaviour)),
              T((STEPS, B, N), 0.0, 150.0)),
        _once("lift/Lift/LIFRecurrentCell",
              call(f"{M}.lift.Lift", call(f"{M}.lif.LIFRecurrentCell", N, H, p=lif_p,
                                          input_weights=T((H, N), -1.0, 3.0, param=True),
                                          recurrent_weights=T((H, H), param=True))),
              spikes),
        _once("lift/Lift/sequential-state",
              call(f"{M}.lift.Lift", call(f"{M}.sequential.SequentialState",
                                          call("torch.nn.Linear", N, H, attrs={
                                              "weight": T((H, N), -1.0, 2.0),
                                              "bias": T((H,), -0.5, 0.5)}),
                                          call(f"{M}.lif.LIFCell", p=lif_p))),
              T((STEPS, B, N), -2.0, 8.0)),
    ]
    # fmt: on
    return cases


def container_cases() -> List[Case]:
    """SequentialState and RecurrentSequential beyond the basics, the regularization
    variants and the base classes of ``norse.torch.module.snn`` with Norse's own step
    functions."""
    # fmt: off
    seq, reg, snn = f"{M}.sequential", f"{F}.regularization", f"{M}.snn"
    lif_p = tree(LIFP, LIF_P, ())
    x = T((STEPS, B, N), -2.0, 8.0)
    spikes = T((STEPS, B, N), spikes=0.5)
    ff_state = tree(f"{F}.lif.LIFFeedForwardState", LIF_FF, (B, N))
    rec_state = tree(*_neuron("lif").rec_state, (B, H))

    def linear(inputs: int, outputs: int) -> Call:
        return call("torch.nn.Linear", inputs, outputs, attrs={
            "weight": T((outputs, inputs), -1.0, 2.0), "bias": T((outputs,), -0.5, 0.5)})

    rnn = call("torch.nn.RNN", N, H, attrs={
        "weight_ih_l0": T((H, N)), "weight_hh_l0": T((H, H)), "bias_ih_l0": T((H,)),
        "bias_hh_l0": T((H,))})
    lif_rec = {"input_weights": T((H, N), -1.0, 3.0, param=True),
               "recurrent_weights": T((H, H), param=True)}
    step_voltages = call(f"{F}.lif.LIFFeedForwardState", T((STEPS, B, N)), T((STEPS, B, N)))
    return [
        _steps("sequential/SequentialState/initial-state",
               call(f"{seq}.SequentialState", linear(N, N), call(f"{M}.lif.LIFCell", p=lif_p)),
               Step(x), Carry([None, ff_state])),
        _once("sequential/SequentialState/rnn",
              call(f"{seq}.SequentialState", rnn, call(f"{M}.lif.LIF", p=lif_p),
                   return_hidden=True), x),
        _once("sequential/SequentialState/seeded",
              Weights(call(f"{seq}.SequentialState",
                           call(f"{M}.lift.Lift", call("torch.nn.Conv2d", 2, 3, 2)),
                           call("torch.nn.Flatten", 2),
                           call(f"{M}.lif.LIFRecurrent", 24, H, p=_float32(lif_p))), seed=5),
              T((STEPS, B, 2, 3, 5), -2.0, 8.0, dtype="float32")),
        _steps("sequential/RecurrentSequential/output-0",
               call(f"{seq}.RecurrentSequential", linear(N, N),
                    call(f"{M}.lif.LIFCell", p=lif_p), output_modules=0),
               Step(x), Carry(None)),
        _steps("sequential/RecurrentSequential/output-list",
               call(f"{seq}.RecurrentSequential", linear(N, N),
                    call(f"{M}.lif.LIFCell", p=lif_p), output_modules=[0, 1]),
               Step(x), Carry(None)),
        _steps("sequential/RecurrentSequential/initial-cache",
               call(f"{seq}.RecurrentSequential", linear(N, H),
                    call(f"{M}.lif.LIFRecurrentCell", H, N, p=lif_p, **{
                        "input_weights": T((N, H), -1.0, 3.0, param=True),
                        "recurrent_weights": T((N, N), param=True)})),
               Step(x), Carry(call(f"{seq}.RecurrentSequentialState",
                                   T((B, N), 0.0, 1.0), [None, None]))),
        _steps("sequential/RecurrentSequential/state-without-cache",
               call(f"{seq}.RecurrentSequential", linear(N, N), call(f"{M}.lif.LIFCell", p=lif_p)),
               Step(x), Carry(call(f"{seq}.RecurrentSequentialState"))),
        _once("sequential/RecurrentSequentialState/call", f"{seq}.RecurrentSequentialState",
              T((B, N))),
        _once("regularization/spike_accumulator/default", f"{reg}.spike_accumulator",
              T((B, N), spikes=0.5), None),
        _once("regularization/voltage_accumulator/state", f"{reg}.voltage_accumulator",
              T((B, N), spikes=0.5), call(f"{F}.lif.LIFFeedForwardState", T((B, N)), T((B, N))),
              T((B, N))),
        _once("regularization/regularize_step/spikes-state", f"{reg}.regularize_step",
              T((B, N), spikes=0.5), None, state=T(())),
        _steps("regularization/RegularizationCell/initial-state",
               call(f"{M}.regularization.RegularizationCell", state=T((), 0.0, 5.0)),
               Step(T((STEPS, B, N), spikes=0.5)), Step(step_voltages)),
        _steps("regularization/RegularizationCell/voltages-state",
               call(f"{M}.regularization.RegularizationCell", Ref(f"{reg}.voltage_accumulator"),
                    T((B, N))),
               Step(T((STEPS, B, N), spikes=0.5)), Step(step_voltages)),
        _steps("snn/SNNCell/state", call(f"{snn}.SNNCell", Ref(f"{F}.lif.lif_feed_forward_step"),
                                         Ref("torch.zeros_like"), lif_p, dt=0.0005),
               Step(x), Carry(ff_state)),
        _steps("snn/SNNCell/fallback",
               call(f"{snn}.SNNCell", Ref(f"{F}.leaky_integrator_box.li_box_feed_forward_step"),
                    Ref(f"{F}.leaky_integrator_box.LIBoxState"),
                    tree(f"{F}.leaky_integrator_box.LIBoxParameters",
                         _only(LIF_P, "tau_mem_inv", "v_leak"), ())),
               Step(x), Carry(None)),
        _once("snn/SNN/record-states",
              call(f"{snn}.SNN", Ref(f"{F}.lif.lif_feed_forward_step"), Ref("torch.zeros_like"),
                   lif_p, record_states=True), x, ff_state),
        _steps("snn/SNNRecurrentCell/weights",
               call(f"{snn}.SNNRecurrentCell", Ref(f"{F}.lif.lif_step"), Ref("torch.zeros_like"),
                    N, H, lif_p, **lif_rec), Step(spikes), Carry(rec_state)),
        _steps("snn/SNNRecurrentCell/seeded",
               Weights(call(f"{snn}.SNNRecurrentCell", Ref(f"{F}.lif.lif_step"),
                            Ref("torch.zeros_like"), N, H, _float32(lif_p), autapses=True),
                       seed=6),
               Step(_float32(spikes)), Carry(_float32(rec_state))),
        _once("snn/SNNRecurrent/record-states",
              call(f"{snn}.SNNRecurrent", Ref(f"{F}.lif.lif_step"), Ref("torch.zeros_like"),
                   N, H, lif_p, record_states=True, **lif_rec), spikes, rec_state),
        _once("lif/LIF/record-states", call(f"{M}.lif.LIF", p=lif_p, record_states=True),
              x, ff_state),
        _once("lif/LIFRecurrent/autapses",
              call(f"{M}.lif.LIFRecurrent", N, H, p=lif_p, autapses=True, **lif_rec),
              spikes, rec_state),
        _steps("lif/LIFRecurrentCell/seeded",
               Weights(call(f"{M}.lif.LIFRecurrentCell", N, H, p=_float32(lif_p)), seed=7),
               Step(_float32(spikes)), Carry(_float32(rec_state))),
        _once("lsnn/LSNNRecurrent/seeded-record-states",
              Weights(call(f"{M}.lsnn.LSNNRecurrent", N, H, record_states=True,
                           p=_float32(tree(*_neuron("lsnn").params, ()))), seed=8),
              _float32(spikes), _float32(tree(*_neuron("lsnn").rec_state, (B, H)))),
    ] + seeded_weight_cases()  # fmt: on


def seeded_weight_cases() -> List[Case]:
    """Every module that draws its own weights, drawn from a seed (float32): the drawn
    values are compared, then replaced by Norse's and differentiated."""
    # fmt: off
    spikes = T((STEPS, B, N), spikes=0.5, dtype="float32")
    cases = [
        _steps(f"{n.family}/{_name(n.rec_cell)}/seeded",
               Weights(call(n.rec_cell, N, H, p=_float32(tree(*n.params, ()))), seed=index,
                       scale=6.0),
               Step(spikes), Carry(None))
        for index, n in enumerate(NEURONS) if n.rec_cell and n.family not in ("lif", "lsnn")
    ]
    iz = f"{F}.izhikevich"
    behaviour = call(f"{iz}.IzhikevichSpikingBehavior", p=_float32(tree(IZP, IZ_P, ())),
                     s=_float32(tree(IZ_STATE, IZ_FF, ())))
    coba = f"{F}.coba_lif.CobaLIFParameters"
    li_p = _float32(tree(f"{F}.leaky_integrator.LIParameters",
                         _only(LIF_P, "tau_syn_inv", "tau_mem_inv", "v_leak"), ()))
    cases += [
        _steps("izhikevich/IzhikevichRecurrentCell/seeded",
               Weights(call(f"{M}.izhikevich.IzhikevichRecurrentCell", N, H, behaviour,
                            autapses=True), seed=20, scale=30.0),
               Step(T((STEPS, B, N), spikes=0.5, dtype="float32")), Carry(None)),
        _steps("coba_lif/CobaLIFCell/seeded",
               Weights(call(f"{M}.coba_lif.CobaLIFCell", N, H,
                            p=_float32(tree(coba, COBA_P, ()))), seed=21, scale=20.0),
               Step(spikes), Carry(None), known=(("out:*", COBA), ("grad:*", COBA))),
        _steps("li/LILinearCell/seeded",
               Weights(call(f"{M}.leaky_integrator.LILinearCell", N, H, p=li_p), seed=22),
               Step(spikes), Carry(None)),
        _once("filter/ExpFilter/seeded",
              Weights(call(f"{M}.exp_filter.ExpFilter", N, H), seed=23),
              T((STEPS, B, N), dtype="float32")),
        _once("conv/LConv2d/seeded", Weights(call(f"{M}.conv.LConv2d", 2, 3, 3), seed=24),
              T((STEPS, B, 2, 6, 6), dtype="float32")),
    ]
    # fmt: on
    return cases


def initial_state_cases() -> List[Case]:
    """``initial_state`` of every neuron module, for a float32 input (the state a module
    starts from without one: values, dtypes, ``requires_grad`` flags)."""
    paths = [
        (path, recurrent, time)
        for n in NEURONS
        for path, recurrent, time in (
            (n.cell, False, False), (n.time, False, True),
            (n.rec_cell, True, False), (n.rec_time, True, True),
        )
        if path
    ]  # fmt: skip
    iz = f"{M}.izhikevich"
    paths += [
        (f"{iz}.IzhikevichCell", False, False),
        (f"{iz}.Izhikevich", False, True),
        (f"{iz}.IzhikevichRecurrentCell", True, False),
        (f"{iz}.IzhikevichRecurrent", True, True),
    ]
    cases = []
    for path, recurrent, time in paths:
        ctor: tuple = (N, H) if recurrent else ()
        if "izhikevich" in path:
            ctor += (Ref(f"{F}.izhikevich.tonic_spiking"),)
        shape = (STEPS, B, N) if time else (B, N)
        cases.append(
            _once(
                f"initial_state/{_name(path)}/float32",
                f"{path}.initial_state",
                call(path, *ctor),
                T(shape, dtype="float32"),
            )
        )
    return cases


def sparse_and_adjoint_cases() -> List[Case]:
    """The sparse steps and modules (sparse input), the sparse and multi-compartment
    adjoint steps, and the current encoders beyond ``lif_current_encoder``."""
    # fmt: off
    adj = f"{F}.adjoint"
    lif, refrac, mc = _neuron("lif"), _neuron("lif_refrac"), _neuron("lif_mc")
    lif_p, refrac_p = tree(LIFP, LIF_P, ()), tree(*refrac.params, ())

    def sparse(shape, **kwargs) -> Call:
        return call("torch.Tensor.to_sparse", T(shape, grad=False, **kwargs))

    weights = (T((H, N), -1.0, 3.0), T((H, H)))
    ex_p = tree(f"{F}.lif_ex.LIFExParameters", {**LIF_P, "delta_T": (0.3, 1.0)}, (N,))
    adjoint = (("grad:*", ADJOINT),)
    return [
        _once("lif_refrac/lif_refrac_step_sparse/scalar", f"{F}.lif_refrac.lif_refrac_step_sparse",
              sparse((B, N), spikes=0.5), tree(*refrac.rec_state, (B, H)), *weights, refrac_p),
        _steps("lif/LIFCell/sparse", call(f"{M}.lif.LIFCell", p=lif_p),
               Step(sparse((STEPS, B, N), lo=0.0, hi=8.0)), Carry(tree(*lif.ff_state, (B, N)))),
        _steps("lif/LIFCell/sparse-no-state", call(f"{M}.lif.LIFCell", p=lif_p),
               Step(sparse((STEPS, B, N), lo=0.0, hi=8.0)), Carry(None)),
        _steps("lif/LIFRecurrentCell/sparse",
               call(f"{M}.lif.LIFRecurrentCell", N, H, p=lif_p,
                    input_weights=T((H, N), -1.0, 3.0, param=True),
                    recurrent_weights=T((H, H), param=True)),
               Step(sparse((STEPS, B, N), spikes=0.5)), Carry(tree(*lif.rec_state, (B, H)))),
        _once("lif/LIF/sparse", call(f"{M}.lif.LIF", p=lif_p),
              sparse((STEPS, B, N), lo=0.0, hi=8.0), tree(*lif.ff_state, (B, N))),
        _once("lif/LIFRecurrent/sparse",
              call(f"{M}.lif.LIFRecurrent", N, H, p=lif_p,
                   input_weights=T((H, N), -1.0, 3.0, param=True),
                   recurrent_weights=T((H, H), param=True)),
              sparse((STEPS, B, N), spikes=0.5), tree(*lif.rec_state, (B, H))),
        _steps("lif_refrac/LIFRefracRecurrentCell/sparse",
               call(f"{M}.lif_refrac.LIFRefracRecurrentCell", N, H, p=refrac_p,
                    input_weights=T((H, N), -1.0, 3.0, param=True),
                    recurrent_weights=T((H, H), param=True)),
               Step(sparse((STEPS, B, N), spikes=0.5)), Carry(tree(*refrac.rec_state, (B, H)))),
        _once("adjoint/lif_feed_forward_adjoint_step_sparse/scalar",
              f"{adj}.lif_adjoint.lif_feed_forward_adjoint_step_sparse",
              sparse((B, N), lo=0.0, hi=8.0), tree(*lif.ff_state, (B, N)), lif_p, known=adjoint),
        _once("adjoint/lif_adjoint_step_sparse/scalar", f"{adj}.lif_adjoint.lif_adjoint_step_sparse",
              sparse((B, N), spikes=0.5), tree(*lif.rec_state, (B, H)), *weights, lif_p,
              known=adjoint),
        _once("adjoint/lif_refrac_adjoint_step_sparse/scalar",
              f"{adj}.lif_refrac_adjoint.lif_refrac_adjoint_step_sparse",
              sparse((B, N), spikes=0.5), tree(*refrac.rec_state, (B, H)), *weights, refrac_p,
              known=adjoint),
        _steps("adjoint/lif_mc_adjoint_step/scalar", f"{adj}.lif_mc_adjoint.lif_mc_adjoint_step",
               Step(T((STEPS, B, N), spikes=0.5)), Carry(tree(*mc.rec_state, (B, H))), *weights,
               _coupling(H), lif_p, known=adjoint),
        _steps("adjoint/lif_mc_refrac_adjoint/scalar",
               f"{adj}.lif_mc_refrac_adjoint.lif_mc_refrac_adjoint",
               Step(T((STEPS, B, N), spikes=0.5)), Carry(tree(*refrac.rec_state, (B, H))),
               *weights, _coupling(H), refrac_p,
               known=(("out:*", MC_REFRAC), *adjoint)),
        _steps("lif_ex/lif_ex_current_encoder/tensor", f"{F}.lif_ex.lif_ex_current_encoder",
               Step(T((STEPS, B, N), -2.0, 8.0)), Carry(T((B, N), -0.5, 0.9)), ex_p, dt=0.0005),
        _once("lif_adex/lif_adex_current_encoder/default", f"{F}.lif_adex.lif_adex_current_encoder",
              T((B, N), 0.0, 8.0), T((B, N), -0.5, 0.9), T((B, N), -0.5, 0.5),
              known=(("out:out.2", ADEX_ENCODER), ("grad:*", ADEX_ENCODER))),
        _once("lif_adex/lif_adex_current_encoder/tensor", f"{F}.lif_adex.lif_adex_current_encoder",
              T((B, N), 0.0, 8.0), T((B, N), -0.5, 0.9), T((B, N), -0.5, 0.5),
              tree(ADEXP, ADEX_P, (N,)), dt=0.0005,
              known=(("out:out.2", ADEX_ENCODER), ("grad:*", ADEX_ENCODER))),
        _once("lif_box/LIFBoxState/call", f"{F}.lif_box.LIFBoxState", T((B, N), spikes=0.5),
              T((B, N))),
        # The state-tuple methods of the parameters (norse.torch.utils.pytree.StateTuple)
        _once("lif/LIFParameters.broadcast/scalar", f"{LIFP}.broadcast", lif_p, T((B, N))),
        _once("lif/LIFParameters.broadcast/same-shape", f"{LIFP}.broadcast",
              tree(LIFP, LIF_P, (B, N)), T((B, N))),
        _once("lif/LIFParameters.broadcast/mismatch", f"{LIFP}.broadcast",
              tree(LIFP, LIF_P, (N,)), T((B, H))),
        _once("lif/LIFParameters.float/scalar", f"{LIFP}.float", lif_p),
        _once("lif/LIFParameters.int/scalar", f"{LIFP}.int", tree(LIFP, LIF_P, (N,))),
        _once("lif/LIFParameters.to/cpu", f"{LIFP}.to", lif_p, "cpu"),
        _once("utils/broadcast_input/scalar", "norse.torch.utils.pytree.broadcast_input",
              T(()), T((B, N))),
        _once("utils/broadcast_input/number", "norse.torch.utils.pytree.broadcast_input",
              0.5, T((B, N))),
        _once("utils/clone_tensor/tensor", "norse.torch.utils.clone.clone_tensor", T((B, N))),
        _once("utils/clone_tensor/number", "norse.torch.utils.clone.clone_tensor", 0.5),
        _once("utils/clone_tensor/device", "norse.torch.utils.clone.clone_tensor", T((B, N)),
              "cpu"),
        _once("lif_box/LIFBoxParameters.broadcast/scalar",
              f"{F}.lif_box.LIFBoxParameters.broadcast",
              tree(f"{F}.lif_box.LIFBoxParameters",
                   _only(LIF_P, "tau_mem_inv", "v_leak", "v_th", "v_reset", "alpha"), ()),
              T((B, N))),
    ]  # fmt: on


def elementwise_cases() -> List[Case]:
    """Thresholds and surrogate gradients, logic, reset and the exponential filter."""
    th, lg, rs = f"{F}.threshold", f"{F}.logical", f"{F}.reset"
    x = T((B, 6), -2.0, 2.0)
    z1, z2, z3 = (T((B, 6), spikes=0.5) for _ in range(3))
    v = T((B, 6), -1.0, 2.0)
    cases = [
        _once("threshold/heaviside/call", f"{F}.heaviside.heaviside", x),
        _once("threshold/super_fn/default", f"{F}.superspike.super_fn", x, known=ALPHA_GRADS),
        _once("threshold/super_fn/alpha-1", f"{F}.superspike.super_fn", x, 1.0),
        _once("threshold/triangle_fn/default", f"{th}.triangle_fn", x),
        _once("threshold/triangle_fn/alpha", f"{th}.triangle_fn", x, 2.0),
        _once("threshold/heavi_tanh_fn/k", f"{th}.heavi_tanh_fn", x, 2.0),
        _once("threshold/heavi_circ_fn/k", f"{th}.heavi_circ_fn", x, 0.5),
        _once("threshold/heavi_erfc_fn/k", f"{th}.heavi_erfc_fn", x, 1.5),
        _once("threshold/logistic_fn/manual_seed", f"{th}.logistic_fn", x, 1.0, seed=10),
        _once("threshold/circ_dist_fn/manual_seed", f"{th}.circ_dist_fn", x, 0.5, seed=11),
        _once("threshold/sign/triangle", f"{th}.sign", x, "triangle", 0.7),
        _once("threshold/threshold/super-alpha-1", f"{th}.threshold", x, "super", 1.0),
        _once("threshold/threshold/unknown", f"{th}.threshold", x, "unknown", 1.0),
        _once("logical/logical_and/call", f"{lg}.logical_and", z1, z2),
        _once("logical/logical_or/call", f"{lg}.logical_or", z1, z2, known=ALPHA_GRADS),
        _once("logical/logical_xor/call", f"{lg}.logical_xor", z1, z2),
        _once("logical/muller_c/call", f"{lg}.muller_c", z1, z2, z3, known=ALPHA_GRADS),
        _once("logical/posedge_detector/call", f"{lg}.posedge_detector", z1, z2),
        _once("reset/reset_value/call", f"{rs}.reset_value", z1, v, T(()), T(())),
        _once("reset/reset_subtract/call", f"{rs}.reset_subtract", z1, v, T(()), T((6,))),
        _once("filter/exp_filter_step/float", f"{F}.filter.exp_filter_step", v, x, 0.7),
        _once("filter/exp_filter_step/int", f"{F}.filter.exp_filter_step",
              T((B, 6), -5.0, 5.0, floor=True, dtype="int64"),
              T((B, 6), -5.0, 5.0, floor=True, dtype="int64"), 0.5),
        _once("filter/ExpFilter/linear", call(
            f"{M}.exp_filter.ExpFilter", N, H,
            attrs={"linear.weight": T((H, N)), "linear.bias": T((H,))}), T((STEPS, B, N))),
        _once("filter/ExpFilter/weights", call(
            f"{M}.exp_filter.ExpFilter", N, H, tau_filter_inv=500.0, dt=0.002,
            input_weights=T((H, N), dtype="float32", grad=False), bias=False),
            T((STEPS, B, N), dtype="float32")),
    ]  # fmt: skip
    cases += [
        _once(f"threshold/threshold/{method}", f"{th}.threshold", x, method, 0.7)
        for method in ("heaviside", "triangle", "tanh", "circ", "heavi_erfc")
    ]
    # The autograd functions themselves, with a 0-d tensor parameter that asks for a
    # gradient (Norse's backward passes return none for it).
    cases += [
        _once(f"threshold/{cls}/apply", f"{module}.{cls}.apply", x, T((), lo, hi),
              seed=12 if cls in ("Logistic", "CircDist") else None)
        for module, cls, lo, hi in (
            (f"{F}.superspike", "SuperSpike", 1.0, 1.0), (th, "Triangle", 0.5, 1.5),
            (th, "HeaviTanh", 0.5, 2.0), (th, "HeaviCirc", 0.3, 1.0),
            (th, "HeaviErfc", 0.5, 2.0), (th, "Logistic", 0.5, 2.0),
            (th, "CircDist", 0.3, 1.0),
        )
    ]  # fmt: skip
    return cases


def receptive_field_cases() -> List[Case]:
    """Receptive fields (float32: Norse 1.1 samples their grids in the default dtype)."""
    rf = f"{F}.receptive_field"

    def f32(shape=(), lo=-1.0, hi=1.0, grad=True) -> T:
        return T(shape, lo, hi, dtype="float32", grad=grad)

    combos = call("torch.tensor", [[1.5, 0.3, 1.2, 0.0, 0.0], [2.0, 1.0, 0.7, 1.0, 0.0],
                                   [1.0, 0.5, 1.0, 1.0, 1.0]])  # fmt: skip
    return [
        _once("receptive_field/gaussian_kernel/call", f"{rf}.gaussian_kernel", 7,
              call(f"{rf}.covariance_matrix", f32((), 0.5, 2.0), f32((), 0.5, 2.0),
                   f32((), 0.0, 3.0)), domain=3),
        _once("receptive_field/spatial_receptive_field/plain", f"{rf}.spatial_receptive_field",
              f32((), 1.0, 2.0), f32((), 0.0, 3.0), f32((), 0.5, 2.0), 9),
        _once("receptive_field/spatial_receptive_field/derived", f"{rf}.spatial_receptive_field",
              f32((), 1.0, 2.0), f32((), 0.0, 3.0), f32((), 0.5, 2.0), 9, 1, 1, 4.0),
        _once("receptive_field/spatial_receptive_fields_with_derivatives/call",
              f"{rf}.spatial_receptive_fields_with_derivatives", combos, 7, domain=3.0),
        _once("receptive_field/spatial_parameters/derivatives", f"{rf}.spatial_parameters",
              call("torch.tensor", [1.0, 2.0]), call("torch.tensor", [0.0, 1.0]),
              call("torch.tensor", [0.5, 1.0]), 1),
        _once("receptive_field/temporal_scale_distribution/default",
              f"{rf}.temporal_scale_distribution", 4),
        _once("receptive_field/temporal_scale_distribution/max",
              f"{rf}.temporal_scale_distribution", 4, min_scale=0.5, max_scale=4.0),
        _once("receptive_field/SpatialReceptiveField2d/call",
              call(f"{M}.receptive_field.SpatialReceptiveField2d", 2, 7, combos, domain=3.0,
                   optimize_fields=False), f32((B, 2, 9, 9))),
        _once("conv/LConv2d/call", call(f"{M}.conv.LConv2d", 2, 3, 3, attrs={
            "weight": T((3, 2, 3, 3, 1))}), T((STEPS, B, 2, 6, 6))),
    ]  # fmt: skip


def receptive_field_module_cases() -> List[Case]:
    """The derivative helpers, the sampled and parameterized spatial fields (their
    generating parameters are the module's own, stored as leaves) and the temporal
    receptive field (float32)."""
    rf, mrf = f"{F}.receptive_field", f"{M}.receptive_field"

    def f32(shape=(), lo=-1.0, hi=1.0, grad=True) -> T:
        return T(shape, lo, hi, dtype="float32", grad=grad)

    # fmt: off
    field = call(f"{rf}.spatial_receptive_field", f32((), 1.0, 2.0, False),
                 f32((), 0.0, 3.0, False), f32((), 0.5, 2.0, False), 7)
    combos = call("torch.tensor", [[1.5, 0.3, 1.2, 0.0, 0.0], [2.0, 1.0, 0.7, 1.0, 0.0]])
    generators = {"scales": f32((2,), 1.0, 2.0, False), "angles": f32((2,), 0.0, 3.0, False),
                  "ratios": call("torch.tensor", [0.5, 1.0])}
    image = f32((B, 2, 9, 9))
    cases = [
        _once("receptive_field/derive_kernel/call", f"{rf}.derive_kernel", f32((7, 7)),
              f32((), 0.0, 3.0)),
        _once("receptive_field/calculate_normalization/gamma", f"{rf}.calculate_normalization",
              2, f32((), 0.5, 2.0), 0.5),
        _once("receptive_field/calculate_normalization/default",
              f"{rf}.calculate_normalization", 1, 1.5),
        _once("receptive_field/derive_spatial_receptive_field_single/dx-dy",
              f"{rf}.derive_spatial_receptive_field_single", field, f32((), 1.0, 2.0),
              f32((), 0.0, 3.0), 2, 1),
        _once("receptive_field/derive_spatial_receptive_field/list",
              f"{rf}.derive_spatial_receptive_field", field, f32((), 1.0, 2.0),
              f32((), 0.0, 3.0), [(0, 0), (1, 0), (0, 2)]),
        _once("receptive_field/spatio_temporal_parameters/call",
              f"{rf}.spatio_temporal_parameters", call("torch.tensor", [1.0, 2.0]),
              call("torch.tensor", [0.0, 1.0]), call("torch.tensor", [0.5, 1.0]), 1,
              call("torch.tensor", [1.0, 4.0])),
        _once("receptive_field/SpatialReceptiveField2d/optimized",
              Weights(call(f"{mrf}.SpatialReceptiveField2d", 2, 5, combos, domain=2.0,
                           padding=1)), image),
        _once("receptive_field/SpatialReceptiveField2d/optimized-input-grad",
              call(f"{mrf}.SpatialReceptiveField2d", 2, 5, combos, domain=2.0, padding=1),
              image),
        _once("receptive_field/SpatialReceptiveField2d/no-aggregate",
              f"{mrf}.SpatialReceptiveField2d", 2, 5, combos, aggregate=False,
              optimize_fields=False),
    ]
    for cls in ("SampledSpatialReceptiveField2d", "ParameterizedSpatialReceptiveField2d"):
        cases += [
            _once(f"receptive_field/{cls}/optimized",
                  Weights(call(f"{mrf}.{cls}", 2, 5, **generators, derivatives=1, domain=3.0)),
                  image),
            _once(f"receptive_field/{cls}/fixed-list",
                  Weights(call(f"{mrf}.{cls}", 2, 5, **generators, derivatives=[(0, 0), (1, 1)],
                               optimize_scales=False, optimize_angles=False)), image),
            _once(f"receptive_field/{cls}/derivatives-tensor", f"{mrf}.{cls}", 2, 5,
                  **generators, derivatives=call("torch.tensor", [[0, 0]])),
        ]
    temporal = f"{mrf}.TemporalReceptiveField"
    cases += [
        _steps("receptive_field/TemporalReceptiveField/default",
               Weights(call(temporal, (N,), 3)), Step(f32((STEPS, B, N), 0.0, 50.0)),
               Carry(None)),
        _steps("receptive_field/TemporalReceptiveField/2d-min-scale",
               Weights(call(temporal, (2, 3), 2, min_scale=2.0, c=1.2, dt=0.002)),
               Step(f32((STEPS, B, 2, 3), 0.0, 50.0)), Carry(None)),
        _steps("receptive_field/TemporalReceptiveField/max-scale",
               Weights(call(temporal, (N,), 3, max_scale=4.0), store=False),
               Step(f32((STEPS, B, N), 0.0, 50.0)), Carry(None),
               known=(("out:*", TEMPORAL_SCALES), ("grad:*", TEMPORAL_SCALES))),
        _steps("receptive_field/TemporalReceptiveField/time-constants",
               Weights(call(temporal, (N,), 2, time_constants=f32((2, N), 50.0, 200.0, False))),
               Step(f32((STEPS, B, N), 0.0, 50.0)), Carry(None)),
        _steps("receptive_field/TemporalReceptiveField/lif-box",
               Weights(call(temporal, (N,), 2, activation=Ref(f"{M}.lif_box.LIFBoxCell"),
                            activation_state_map=Ref(f"{F}.lif_box.LIFBoxParameters"))),
               Step(f32((STEPS, B, N), 0.0, 2.0)), Carry(None), known=ALPHA_GRADS),
    ]
    # fmt: on
    return cases


def model_cases() -> List[Case]:
    """The networks of ``norse.torch.models`` (float32): weights drawn from a seed and
    stored as leaves (``Weights``; VGG's 10^8 are only drawn), in evaluation mode where
    dropout would draw, scaled where the deep networks would not spike."""
    models = "norse.torch.models"
    conv = f"{models}.conv"
    images = T((8, 1, 1, 16, 16), 0.0, 20.0, dtype="float32")
    return [
        _once("models/ConvNet/tanh",
              Weights(call(f"{conv}.ConvNet", feature_size=16, method="tanh"), init=False),
              images),
        _once("models/ConvNet/default",
              Weights(call(f"{conv}.ConvNet", feature_size=16), store=False), images,
              known=ALPHA_GRADS),
        _once("models/ConvNet/float64-output",
              Weights(call(f"{conv}.ConvNet", feature_size=16, dtype=Ref("torch.float64")),
                      store=False), images, known=ALPHA_GRADS),
        _once("models/ConvNet4/default",
              Weights(call(f"{conv}.ConvNet4", feature_size=16), store=False), images,
              known=ALPHA_GRADS),
        _once("models/vgg11_bn/tiny",
              Weights(call(f"{models}.vgg.vgg11_bn", num_classes=3), store=False, eval=True,
                      scale=5.0),
              T((12, 1, 3, 32, 32), 0.0, 9.0, floor=True, dtype="float32", grad=False)),
        _once("models/make_layers/batch-norm",
              Weights(call(f"{models}.vgg.make_layers", [4, "M", 8], batch_norm=True),
                      store=False), T((STEPS, B, 3, 6, 6), 0.0, 8.0, dtype="float32"),
              known=ALPHA_GRADS),
        _once("models/make_layers/lif-last",
              Weights(call(f"{models}.vgg.make_layers", [4]), store=False),
              T((STEPS, B, 3, 6, 6), 0.0, 8.0, dtype="float32"), known=ALPHA_GRADS),
        _once("models/MobileNetV2/small",
              Weights(call(f"{models}.mobilenet.MobileNetV2", num_classes=3, width_mult=0.5,
                           inverted_residual_setting=[[1, 8, 2, 1]]),
                      store=False, eval=True, scale=3.0),
              T((10, 1, 3, 16, 16), 0.0, 8.0, dtype="float32"), known=ALPHA_GRADS),
        _once("models/mobilenet_v2/residual-after-lif",
              Weights(call(f"{models}.mobilenet.mobilenet_v2", num_classes=3, width_mult=0.25,
                           inverted_residual_setting=[[1, 8, 1, 1]]), store=False, eval=True),
              T((3, 1, 3, 16, 16), 0.0, 8.0, dtype="float32"), known=ALPHA_GRADS),
        _once("models/ConvBNReLU/train",
              Weights(call(f"{models}.mobilenet.ConvBNReLU", 3, 4, Ref("torch.nn.BatchNorm2d")),
                      store=False), T((STEPS, B, 3, 6, 6), 0.0, 8.0, dtype="float32"),
              known=ALPHA_GRADS),
        _once("models/InvertedResidual/train",
              Weights(call(f"{models}.mobilenet.InvertedResidual", 4, 4, 1, 2,
                           Ref("torch.nn.BatchNorm2d")), store=False),
              T((STEPS, B, 4, 6, 6), 0.0, 8.0, dtype="float32"), known=ALPHA_GRADS),
    ]  # fmt: skip


# Deliberate differences by case: (case pattern, key pattern, tag of REASONS).
DELIBERATE = [
    ("lif_adex_refrac/[lL][iI][fF]*", "out:*", ADEX_REFRAC),
    ("lif_adex_refrac/[lL][iI][fF]*", "grad:*", ADEX_REFRAC),
    ("lif_adex_refrac/*/no-refractory", "grad:*rho*", ADEX_REFRAC),
    ("lif_mc_refrac/*", "out:*", MC_REFRAC),
    ("lif_mc_refrac/*", "grad:*", MC_REFRAC),
    ("coba_lif/coba_lif_step/[dst]*", "out:*", COBA),
    ("coba_lif/coba_lif_step/[dst]*", "grad:*", COBA),
    ("coba_lif/*/no-input", "grad:a0", COBA),
    ("adjoint/*", "grad:*", ADJOINT),
    ("stdp/stdp_sensor_step/equal-taus", "grad:a3.[23]", STDP_SENSOR),
    ("receptive_field/temporal_scale_distribution/max", "out:*", TEMPORAL_SCALES),
    ("encode/population_encode/[df]*", "grad:a0", POPULATION),
]  # fmt: skip
# Refractory AdEx cases in which no spike falls into a refractory period: the results
# match (the gradients still differ: the fix's formula passes one through the mask).
NOT_SUPPRESSED = {
    "lif_adex_refrac/LIFAdExRefracCell/tensor-state",
    "lif_adex_refrac/LIFAdExRefracRecurrentCell/default-nograd",
    "lif_adex_refrac/LIFAdExRefracRecurrentCell/scalar",
    "lif_adex_refrac/lif_adex_refrac_feed_forward_step/no-refractory",
    "lif_adex_refrac/lif_adex_refrac_step/no-refractory",
    "lif_adex_refrac/LIFAdExRefracCell/no-refractory",
}


def _with_deliberate(case: Case) -> Case:
    extra = tuple(
        (key, tag)
        for pattern, key, tag in DELIBERATE
        if fnmatch.fnmatch(case.name, pattern)
        and not (key == "out:*" and case.name in NOT_SUPPRESSED)
        and not (key == "grad:*" and case.name.endswith("/no-refractory"))
        and (key, tag) not in case.known
    )
    return dataclasses.replace(case, known=case.known + extra) if extra else case


CASES: List[Case] = [
    _with_deliberate(case)
    for case in (
        [case for n in NEURONS for case in neuron_cases(n)]
        + lif_extra_cases() + leaky_integrator_cases() + lif_box_cases() + encoder_cases() + adjoint_cases() + izhikevich_cases()
        + coba_cases() + adex_refrac_cases() + encode_cases() + decode_cases()
        + stdp_cases() + plasticity_cases() + composition_cases() + lift_cases()
        + container_cases() + sparse_and_adjoint_cases() + initial_state_cases()
        + elementwise_cases()
        + receptive_field_cases() + receptive_field_module_cases() + model_cases()
    )
]  # fmt: skip

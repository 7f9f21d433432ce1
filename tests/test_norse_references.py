"""This package against results recorded from real Norse 1.1.0.

Every case of ``tests/norse_references/reference_cases.py`` was run on Norse 1.1.0 by
``scripts/record_norse_references.py`` (regenerate: see ``tests/norse_references/README.md``)
which stored its random inputs, every output and state field (per step) and the
gradients of a fixed weighted sum of them with respect to every leaf: the input, the
initial state fields, the weights and every parameter field. Each test replays one case
here with the stored inputs and compares:

* the structure: the same keys, container types (state tuples by name), dtypes, shapes
  and ``requires_grad`` flags;
* the values: 0/1 results (spikes) exactly, float64 to 1e-12 and gradients to 1e-10
  (relative to the field's largest value; float32 results to 1e-5);
* errors: where Norse raised, this package raises the same exception type.

Deliberate differences (``known`` in a case: Norse 1.1 bugs fixed here) are left out of
the comparison and must still differ, so that the list stays exact. Known gaps and
unexplained mismatches are strict xfails listed in :data:`EXPECTED_FAILURES`.
"""

import fnmatch
import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

REFERENCES = Path(__file__).parent / "norse_references"
sys.path.insert(0, str(REFERENCES))

import reference_cases  # noqa: E402
import reference_replay  # noqa: E402

# The cases that differ from Norse: reason -> case-name patterns (fnmatch). Strict xfails,
# so a change shows up as XPASS and its entry must go. "deliberate" entries are listed on
# docs/compatibility.md. The known gaps (a)-(g) of issue 13 pass
# now and have no entry; their cases: (a) */scalar and */tensor-state of every module and
# lif/LIFCell/parameter-fields, (b) */default-nograd, (c) lif/*/bool-input,
# (d) lif_box/*/alpha-0, (e) filter/exp_filter_step/int, (f) coba_lif/CobaLIFCell/no-input,
# (g) encode/spike_latency_lif_encode/*.
EXPECTED_FAILURES: Dict[str, List[str]] = {
    # Deliberate (docs/compatibility.md, "Precision"): Norse 1.1 rounds these through
    # float32 even for float64 input; here everything stays in the input's dtype.
    "deliberate (precision): Norse builds the first state in float32 (LIF/LI time "
    "modules, the recurrent LIF forms) or keeps it 0-d float32 (LIFAdExCell: exp() of the "
    "first step in float32); here it has the input's dtype": [
        "lif/LIF/scalar", "lif/LIFRecurrentCell/scalar", "lif/LIFRecurrent/scalar",
        "li/LI/scalar", "lif_refrac/LIFRefracRecurrent/scalar", "lif_adex/LIFAdExCell/default*",
        "sequential/SequentialState/time", "lift/Lift/LIFRecurrentCell",
        "sequential/SequentialState/rnn", "sequential/RecurrentSequential/initial-cache",
    ],
    "deliberate (precision): Norse's constant-current and Poisson encoders return "
    "float32 for any input; here the input's dtype": [
        "encode/constant_current_lif_encode/*", "encode/ConstantCurrentLIFEncoder/*",
        "encode/poisson_encode*/[gm]*", "encode/PoissonEncoder*/manual_seed",
    ],
    "deliberate (precision): Norse's population_encode centres are float32 "
    "(torch.linspace of a tensor scale)": [
        "encode/population_encode/default", "encode/population_encode/functions",
    ],
    "deliberate (precision): Norse's heavi_erfc divides by a float32 sqrt(pi)": [
        "*heavi_erfc*", "*HeaviErfc*",
    ],
    "deliberate (precision): Norse's preset behaviours start at u = float32(v) * b "
    "rounded in float32 arithmetic; here u = v * b rounded once to float32": [
        f"izhikevich/IzhikevichCell/{preset}" for preset in (
            "phasic_spiking", "phasic_bursting", "class_2_exc", "subthreshold_oscillation",
            "inhibition_induced_spiking", "resonator", "rebound_spike", "rebound_burst",
            "threshold_variability", "bistability",
        )
    ],
    "deliberate: lif_step_integral returns every step's spikes, as Norse's docstring "
    "says; Norse 1.1 returns the last step's only": [
        "lif/lif_step_integral/scalar",
    ],
    # Deliberate (docs/compatibility.md): Norse 1.1 raises (or returns a tuple that the
    # next layer cannot take) where this package runs.
    "deliberate: the model zoo's blocks are SequentialState and return (output, list "
    "of states); Norse 1.1's make_layers and ConvBNReLU are torch.nn.Sequential and "
    "pass LIF's (spikes, state) tuple on, so its MobileNetV2 residual blocks fail": [
        "models/make_layers/*", "models/ConvBNReLU/*",
        "models/mobilenet_v2/residual-after-lif",
    ],
    "deliberate: calls that raise in Norse 1.1 run here (spatio_temporal_parameters, "
    "SpatialReceptiveField2d(aggregate=False), derivatives as a tensor, "
    "RecurrentSequential with a list of outputs or no cache, the sparse refractory "
    "steps, broadcast_input and clone_tensor of a number)": [
        "receptive_field/spatio_temporal_parameters/call",
        "receptive_field/SpatialReceptiveField2d/no-aggregate",
        "receptive_field/*/derivatives-tensor",
        "sequential/RecurrentSequential/output-list",
        "sequential/RecurrentSequential/state-without-cache",
        "lif_refrac/lif_refrac_step_sparse/scalar",
        "adjoint/lif_refrac_adjoint_step_sparse/scalar",
        "utils/broadcast_input/number", "utils/clone_tensor/number",
    ],
    "deliberate: initial_state returns every field at the state's shape; Norse 1.1 "
    "returns some as 0-d tensors (v = clone(v_leak) or v_reset, LSNN's b, the "
    "Izhikevich behaviour's state) next to full-shape ones; the first-step results "
    "agree": [
        f"initial_state/{module}/float32" for module in (
            "LIFCell", "LICell", "LIBoxCell", "LIFBoxCell", "IAFCell", "IAF", "LSNNCell",
            "LSNNRecurrentCell", "LIFAdExCell", "LIFRefracRecurrentCell",
            "LIFAdExRefracCell", "IzhikevichCell", "Izhikevich",
        )
    ],
    "deliberate (precision): ConvNet runs its convolutions and linear layers on all "
    "steps at once (time folded into the batch: other float32 sums); float64 output "
    "voltages differ from Norse 1.1's in the last float32 bit (the float32 cases agree)": [
        "models/ConvNet/float64-output",
    ],
}  # fmt: skip

RTOL = {torch.float64: 1e-12, torch.float32: 1e-5}
GRAD_RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}


@functools.lru_cache(maxsize=None)
def _stored(family: str) -> Dict[str, np.ndarray]:
    """The arrays of ``<family>.npz`` (empty if it is missing)."""
    path = REFERENCES / f"{family}.npz"
    if not path.exists():
        return {}
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def _params():
    """One parameter per case; deliberate differences are named in the id."""
    for case in reference_cases.CASES:
        marks = [
            pytest.mark.xfail(strict=True, reason=reason)
            for reason, patterns in EXPECTED_FAILURES.items()
            if any(fnmatch.fnmatch(case.name, pattern) for pattern in patterns)
        ]
        tags = sorted({tag for _, tag in case.known})
        name = case.name + (f"~{'~'.join(tags)}" if tags else "")
        yield pytest.param(case, id=name, marks=marks[:1])


def _dense(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach()
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    return tensor.to(torch.float64)


def _close(ours: torch.Tensor, ref: torch.Tensor, rtol: float) -> bool:
    """Equal for 0/1 results (spikes) and non-finite values, else within ``rtol`` of the
    reference, relative to the element and to the field's largest value."""
    ours, ref = _dense(ours), ref.to(torch.float64)
    if ours.shape != ref.shape:
        return False
    finite = torch.isfinite(ref)
    if not torch.equal(finite, torch.isfinite(ours)):
        return False
    if not torch.equal(ref[~finite], ours[~finite]):
        return False
    ref, ours = ref[finite], ours[finite]
    if ((ref == 0) | (ref == 1)).all():
        return torch.equal(ours, ref)
    scale = ref.abs().max().item() if ref.numel() else 0.0
    return bool(((ours - ref).abs() <= rtol * (ref.abs() + scale)).all())


def _describe(ours: torch.Tensor, ref: torch.Tensor) -> str:
    ours, ref = _dense(ours), ref.to(torch.float64)
    if ours.shape != ref.shape:
        return f"shape {tuple(ours.shape)} vs Norse {tuple(ref.shape)}"
    worst = (ours - ref).abs().flatten().nan_to_num(float("inf")).argmax()
    ours_value, ref_value = ours.flatten()[worst].item(), ref.flatten()[worst].item()
    return (
        f"max |diff| {abs(ours_value - ref_value):.3g} at flat {worst.item()}: "
        f"ours {ours_value:.17g} vs Norse {ref_value:.17g}"
    )


def _is_known(case, name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern, _ in case.known)


def _error_problems(case, meta: dict, ours) -> List[str]:
    """Where either side raised: the same exception type (or, for a deliberate
    difference, not the same)."""
    ref_type = (meta["error"] or "no error").split(":")[0]
    our_type = (ours.error or "no error").split(":")[0]
    if _is_known(case, "error"):
        return ["error: no longer differs from Norse"] if ref_type == our_type else []
    if ref_type == our_type:
        return []
    return [
        f"error: ours {ours.error or 'none'!r} vs Norse {meta['error'] or 'none'!r}"
    ]


def _field_problems(case, part: str, meta: dict, stored: dict, mine: dict) -> List[str]:
    """Keys, dtypes, ``requires_grad`` flags and values of ``part`` (outputs/grads)."""
    prefix, rtols = ("out", RTOL) if part == "outputs" else ("grad", GRAD_RTOL)
    reference = {entry[0]: entry for entry in meta[part]}
    ours = {entry[0]: entry for entry in reference_replay.pack(mine)[0]}
    problems = []
    for key in sorted(set(reference) | set(ours)):
        name = f"{prefix}:{key}"
        if _is_known(case, name):
            continue
        if key not in ours or key not in reference:
            problems.append(
                f"{name}: {'missing here' if key in reference else 'not in Norse'}"
            )
            continue
        _, ref_dtype, _, ref_grad = reference[key]
        _, our_dtype, _, our_grad = ours[key]
        if ref_dtype != our_dtype:
            problems.append(f"{name}: dtype {our_dtype} vs Norse {ref_dtype}")
        if part == "outputs" and ref_grad != our_grad:
            problems.append(f"{name}: requires_grad {our_grad} vs Norse {ref_grad}")
        value = torch.as_tensor(mine[key], dtype=torch.float64)
        rtol = rtols.get(reference_replay.DTYPES.get(ref_dtype.split("/")[0]), 1e-12)
        if not _close(value, stored[part][key], rtol):
            problems.append(f"{name}: {_describe(value, stored[part][key])}")
    return problems


def _known_problems(case, meta: dict, stored: dict, ours) -> List[str]:
    """Each deliberate difference must still show in at least one of its fields (where
    the case has such fields: a case without gradients has none to differ)."""
    problems = []
    for pattern, tag in case.known:
        if pattern == "error":
            continue
        part, prefix = (
            ("grads", "grad") if pattern.startswith("grad:") else ("outputs", "out")
        )
        if part == "grads" and meta["grad_error"]:
            continue
        mine = getattr(ours, part)
        keys = [k for k in stored[part] if fnmatch.fnmatch(f"{prefix}:{k}", pattern)]
        if keys and not any(
            k not in mine
            or not _close(torch.as_tensor(mine[k]), stored[part][k], 1e-12)
            for k in keys
        ):
            reason = reference_cases.REASONS[tag]
            problems.append(f"{pattern} no longer differs from Norse ({reason})")
    return problems


def compare(case, meta: dict, stored: Dict[str, Dict[str, torch.Tensor]]) -> List[str]:
    """The differences between a replay of ``case`` here and the Norse recording."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = reference_replay.run(case, stored["inputs"])
    if meta["error"] or ours.error:
        return _error_problems(case, meta, ours)
    problems = [
        f"type {key}: ours {ours.types.get(key)} vs Norse {meta['types'].get(key)}"
        for key in sorted(set(meta["types"]) | set(ours.types))
        if meta["types"].get(key) != ours.types.get(key)
    ]
    # A backward pass that fails in Norse 1.1 (a crash of its own) may work here.
    if ours.grad_error and not meta["grad_error"]:
        problems.append(f"backward: ours {ours.grad_error!r}, Norse passed")
    if meta["grad_error"]:
        ours.grads = {}
    problems += _field_problems(case, "outputs", meta, stored, ours.outputs)
    problems += _field_problems(case, "grads", meta, stored, ours.grads)
    return problems + _known_problems(case, meta, stored, ours)


def test_recordings_match_the_cases():
    """Every case is recorded, from its current spec, and nothing else is."""
    index = json.loads((REFERENCES / "index.json").read_text())
    assert index["norse"] == "1.1.0"
    families = {case.family for case in reference_cases.CASES}
    recorded = {key.split("|")[0] for f in families for key in _stored(f)}
    names = {case.name for case in reference_cases.CASES}
    assert len(names) == len(reference_cases.CASES), "duplicate case names"
    tags = {tag for case in reference_cases.CASES for _, tag in case.known}
    assert tags <= set(reference_cases.REASONS), tags - set(reference_cases.REASONS)
    assert recorded == names, (
        f"not recorded: {sorted(names - recorded)[:5]}; "
        f"stale: {sorted(recorded - names)[:5]}"
    )


@pytest.mark.parametrize("case", list(_params()))
def test_matches_norse(case):
    npz = _stored(case.family)
    if f"{case.name}|meta" not in npz:
        pytest.fail("not recorded: run scripts/record_norse_references.py")
    meta, stored = reference_replay.load_case(case.name, npz)
    assert meta["spec"] == case.spec(), "the case changed since it was recorded"
    # One thread, as the recording: the same order of float32 sums (and no OpenMP
    # overhead on the tiny tensors of the cases).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problems = compare(case, meta, stored)
    finally:
        torch.set_num_threads(threads)
    assert not problems, "\n".join(problems)

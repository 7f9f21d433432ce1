from norse.torch.utils import (
    clone,
)  # Norse 1.1 path: norse.torch.utils.clone.clone_tensor
from norse.torch.utils import (
    pytree,
)  # Norse 1.1 path: norse.torch.utils.pytree.StateTuple and its metaclass
from norse.torch.utils import (
    state,
)  # Norse 1.1 path: norse.torch.utils.state._is_module_stateful
from norse.torch.utils import (
    anomaly,
)  # norse.torch.utils.anomaly.detect_anomaly, reachable after import norse.torch


def __getattr__(name: str):
    # ONNX export of one time step, imported on first use: the neuron modules import
    # this package, and the exporter imports them.
    if name == "to_onnx":
        from norse.torch.utils.export_onnx import to_onnx

        return to_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``torch.nn.Module`` forms of the neuron models and the tools to compose them.

The catalogue below is imported by name. A file added to this package exports the names
in its ``__all__`` without an entry here (see
:func:`~norse.torch.functional.exports.export_declared` and the docs page "Adding a
neuron model").
"""

from norse.torch.functional.exports import export_declared as _export_declared

from norse.torch.module.iaf import IAF, IAFCell, IAFRecurrent, IAFRecurrentCell
from norse.torch.module.leaky_integrator import LI, LICell, LILinearCell
from norse.torch.module.leaky_integrator_box import LIBox, LIBoxCell
from norse.torch.module.lif import LIF, LIFCell, LIFRecurrent, LIFRecurrentCell
from norse.torch.module.lif_box import (
    LIFBox,
    LIFBoxCell,
    LIFBoxRecurrent,
    LIFBoxRecurrentCell,
)
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell

# Time-parallel neurons: fixed-point LIF, parallel spiking neurons (PSN family)
from norse.torch.module.parallel import LIFFixedPoint
from norse.torch.module.psn import MaskedPSN, PSN, SlidingPSN, SlidingPSNCell

# Encoders and decoders
from norse.torch.module.decode import MaxDecoder, SumDecoder
from norse.torch.module.encode import (
    ConstantCurrentLIFEncoder,
    PoissonEncoder,
    PoissonEncoderStep,
    PopulationEncoder,
    SignedPoissonEncoder,
    SignedPoissonEncoderStep,
    SpikeLatencyEncoder,
    SpikeLatencyLIFEncoder,
)
from norse.torch.module.spikes_to_times_decoder import SpikesToTimesDecoder

# Izhikevich neurons
from norse.torch.module.izhikevich import (
    Izhikevich,
    IzhikevichCell,
    IzhikevichRecurrent,
    IzhikevichRecurrentCell,
)

# Composition: lifting over time, state-threading chains, regularisation, convolution
from norse.torch.module.conv import LConv2d
from norse.torch.module.lift import Lift
from norse.torch.module.regularization import RegularizationCell
from norse.torch.module.sequential import (
    RecurrentSequential,
    RecurrentSequentialState,
    SequentialState,
)

# Correlation-sensing LIF layer and exponential filter
from norse.torch.module.exp_filter import ExpFilter
from norse.torch.module.lif_correlation import LIFCorrelation

# Adaptive, exponential, refractory, multi-compartment and conductance-based LIF neurons
from norse.torch.module.coba_lif import (
    CobaLIF,
    CobaLIFCell,
    CobaLIFFeedForwardCell,
    CobaLIFRecurrent,
    CobaLIFRecurrentCell,
)
from norse.torch.module.lif_adex import (
    LIFAdEx,
    LIFAdExCell,
    LIFAdExRecurrent,
    LIFAdExRecurrentCell,
)
from norse.torch.module.lif_adex_refrac import (
    LIFAdExRefrac,
    LIFAdExRefracCell,
    LIFAdExRefracRecurrent,
    LIFAdExRefracRecurrentCell,
)
from norse.torch.module.lif_ex import (
    LIFEx,
    LIFExCell,
    LIFExRecurrent,
    LIFExRecurrentCell,
)
from norse.torch.module.lif_mc import (
    LIFMC,
    LIFMCCell,
    LIFMCRecurrent,
    LIFMCRecurrentCell,
)
from norse.torch.module.lif_mc_refrac import (
    LIFMCRefrac,
    LIFMCRefracCell,
    LIFMCRefracRecurrent,
    LIFMCRefracRecurrentCell,
)
from norse.torch.module.lif_refrac import (
    LIFRefrac,
    LIFRefracCell,
    LIFRefracRecurrent,
    LIFRefracRecurrentCell,
)
from norse.torch.module.lsnn import LSNN, LSNNCell, LSNNRecurrent, LSNNRecurrentCell

# Receptive fields (scale-space)
from norse.torch.module.receptive_field import (
    ParameterizedSpatialReceptiveField2d,
    SampledSpatialReceptiveField2d,
    SpatialReceptiveField2d,
    TemporalReceptiveField,
)

# Synaptic delays
from norse.torch.module.delay import Delay, DelayCell

# Event-driven linear layer for binary spike input
from norse.torch.module.sparse import SpikeLinear


# Files added later (and those not listed above) export their __all__ too
_export_declared(__name__, __path__, globals())

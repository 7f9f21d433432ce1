"""The equations: parameters, states and step functions of every neuron model, plus
thresholds, encoders, decoders and plasticity rules, as plain functions."""

# Thresholds and surrogate gradients
from norse.torch.functional.heaviside import heaviside

# Neuron models
from norse.torch.functional.iaf import (
    IAFFeedForwardState,
    IAFParameters,
    IAFState,
    iaf_feed_forward_step,
    iaf_step,
)
from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
    li_step,
)
from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    LIBoxState,
    li_box_feed_forward_step,
    li_box_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_current_encoder,
    lif_feed_forward_integral,
    lif_feed_forward_step,
    lif_feed_forward_step_sparse,
    lif_step,
    lif_step_integral,
    lif_step_sparse,
)
from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    LIFBoxState,
    lif_box_feed_forward_step,
    lif_box_step,
)
from norse.torch.functional.logical import (
    logical_and,
    logical_or,
    logical_xor,
    muller_c,
    posedge_detector,
)
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.functional.threshold import (
    circ_dist_fn,
    heavi_circ_fn,
    heavi_erfc_fn,
    heavi_tanh_fn,
    logistic_fn,
    sign,
    super_fn,
    superspike_fn,
    threshold,
    triangle_fn,
)

# Encoders and decoders
from norse.torch.functional.decode import max_decode, sum_decode
from norse.torch.functional.encode import (
    constant_current_lif_encode,
    euclidean_distance,
    gaussian_rbf,
    poisson_encode,
    poisson_encode_step,
    population_encode,
    signed_poisson_encode,
    signed_poisson_encode_step,
    spike_latency_encode,
    spike_latency_lif_encode,
)
from norse.torch.functional.spikes_to_times_decoder import ToSpikeTimes

# Izhikevich neurons and their 20 named spiking behaviours
from norse.torch.functional.izhikevich import (
    IzhikevichParameters,
    IzhikevichRecurrentState,
    IzhikevichSpikingBehavior,
    IzhikevichState,
    accomodation,
    bistability,
    class_1_exc,
    class_2_exc,
    create_izhikevich_spiking_behavior,
    dap,
    inhibition_induced_bursting,
    inhibition_induced_spiking,
    integrator,
    izhikevich_feed_forward_step,
    izhikevich_recurrent_step,
    mixed_mode,
    phasic_bursting,
    phasic_spiking,
    rebound_burst,
    rebound_spike,
    resonator,
    spike_frequency_adaptation,
    spike_latency,
    subthreshold_oscillation,
    threshold_variability,
    tonic_bursting,
    tonic_spiking,
)

# Lifting over time and regularisation
from norse.torch.functional.lift import lift
from norse.torch.functional.regularization import (
    regularize_step,
    spike_accumulator,
    voltage_accumulator,
)

# Plasticity: correlation and STDP sensors, STDP, short-term plasticity; filters
from norse.torch.functional.correlation_sensor import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    correlation_based_update,
    correlation_sensor_step,
)
from norse.torch.functional.filter import exp_filter_step
from norse.torch.functional.lif_correlation import (
    LIFCorrelationParameters,
    LIFCorrelationState,
    lif_correlation_step,
)
from norse.torch.functional.stdp import (
    STDPParameters,
    STDPState,
    stdp_step_conv2d,
    stdp_step_linear,
)
from norse.torch.functional.stdp_sensor import (
    STDPSensorParameters,
    STDPSensorState,
    stdp_sensor_step,
)
from norse.torch.functional.tsodyks_makram import (
    TsodyksMakramParameters,
    TsodyksMakramState,
    stp_step,
)

# Adaptive, exponential, refractory, multi-compartment and conductance-based LIF neurons
from norse.torch.functional.coba_lif import (
    CobaLIFFeedForwardState,
    CobaLIFParameters,
    CobaLIFState,
    coba_lif_feed_forward_step,
    coba_lif_step,
)
from norse.torch.functional.lif_adex import (
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExState,
    lif_adex_current_encoder,
    lif_adex_feed_forward_step,
    lif_adex_step,
)
from norse.torch.functional.lif_adex_refrac import (
    LIFAdExRefracFeedForwardState,
    LIFAdExRefracParameters,
    LIFAdExRefracState,
    lif_adex_refrac_feed_forward_step,
    lif_adex_refrac_step,
)
from norse.torch.functional.lif_ex import (
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExState,
    lif_ex_current_encoder,
    lif_ex_feed_forward_step,
    lif_ex_step,
)
from norse.torch.functional.lif_mc import lif_mc_feed_forward_step, lif_mc_step
from norse.torch.functional.lif_mc_refrac import (
    lif_mc_refrac_feed_forward_step,
    lif_mc_refrac_step,
)
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
    lif_refrac_feed_forward_step,
    lif_refrac_step,
    lif_refrac_step_sparse,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNState,
    ada_lif_step,
    lsnn_feed_forward_step,
    lsnn_step,
)

# Receptive fields (scale-space)
from norse.torch.functional.receptive_field import (
    gaussian_kernel,
    spatial_receptive_field,
    spatial_receptive_fields_with_derivatives,
)

# Synaptic delays
from norse.torch.functional.delay import DelayState, delay_sequence, delay_step

# Adjoint (EventProp) gradients
from norse.torch.functional.adjoint.lif_adjoint import (
    LIFAdjointFunction,
    LIFFeedForwardAdjointFunction,
    LIFFeedForwardSparseAdjointFunction,
    LIFSparseAdjointFunction,
    lif_adjoint_step,
    lif_adjoint_step_sparse,
    lif_feed_forward_adjoint_step,
    lif_feed_forward_adjoint_step_sparse,
)
from norse.torch.functional.adjoint.lif_refrac_adjoint import (
    LIFAdjointRefracFeedForwardFunction,
    LIFAdjointRefracFunction,
    LIFSparseAdjointRefracFunction,
    lif_refrac_adjoint_step,
    lif_refrac_adjoint_step_sparse,
    lif_refrac_feed_forward_adjoint_step,
)
from norse.torch.functional.adjoint.lif_mc_refrac_adjoint import (
    LIFMCRefracAdjointFunction,
    lif_mc_refrac_adjoint,
)
from norse.torch.functional.adjoint.lsnn_adjoint import (
    LSNNAdjointFunction,
    LSNNFeedForwardAdjointFunction,
    lsnn_adjoint_step,
    lsnn_feed_forward_adjoint_step,
)

# Norse 1.1 exposes the SuperSpike module as an attribute of the package
from norse.torch.functional import superspike

# Event-driven weight products for binary spike input
from norse.torch.functional.sparse import spike_linear

# Files added later (and those not listed above) export their __all__ too
from norse.torch.functional.exports import export_declared as _export_declared  # noqa: E402

_export_declared(__name__, __path__, globals())

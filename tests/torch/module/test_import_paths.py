"""Norse 1.1 code imports the parameter and state tuples (and step functions) of a
model from its module file too (``from norse.torch.module.lif import LIFState``); those
names stay importable there."""

import importlib

import pytest

NAMES = {
    "lif": ["LIFParameters", "LIFState", "LIFFeedForwardState", "lif_step"],
    "lif_ex": ["LIFExParameters", "LIFExState", "LIFExFeedForwardState"],
    "lif_adex": ["LIFAdExParameters", "LIFAdExState", "LIFAdExFeedForwardState"],
    "lif_adex_refrac": ["LIFAdExRefracParameters", "LIFAdExRefracState"],
    "lif_box": ["LIFBoxParameters", "LIFBoxState", "LIFBoxFeedForwardState"],
    "lif_refrac": ["LIFRefracParameters", "LIFRefracState", "lif_refrac_step"],
    "iaf": ["IAFParameters", "IAFState", "IAFFeedForwardState"],
    "lsnn": ["LSNNParameters", "LSNNState", "LSNNFeedForwardState", "lsnn_step"],
    "coba_lif": ["CobaLIFParameters", "CobaLIFState", "CobaLIFFeedForwardState"],
    "leaky_integrator": ["LIParameters", "LIState", "li_feed_forward_step"],
    "leaky_integrator_box": ["LIBoxParameters", "LIBoxState"],
}


@pytest.mark.parametrize("module", sorted(NAMES))
def test_the_tuples_stay_importable_from_the_module_file(module):
    found = importlib.import_module(f"norse.torch.module.{module}")
    functional = importlib.import_module(f"norse.torch.functional.{module}")
    for name in NAMES[module]:
        assert getattr(found, name) is getattr(functional, name), name

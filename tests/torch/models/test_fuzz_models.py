"""Fuzzing of the model zoo (hypothesis): random constructor arguments and random
inputs (shapes, channels, image sizes, dtypes, NaN/Inf, empty batches, wrong types) for
``ConvNet``, ``ConvNet4``, ``VGG`` (with a small feature extractor) and ``MobileNetV2``
(narrow, two blocks).

Accepted outcomes: a result, or a ``ValueError``/``TypeError`` with a message; valid
arguments and inputs must give a result of shape ``(T, batch, classes)``. The number of
inputs tried is printed at the end of the run (the ``fuzz`` fixture of
``tests/conftest.py`` counts them).
"""

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from norse.torch.models import ConvNet, ConvNet4, MobileNetV2
from norse.torch.models.vgg import VGG, make_layers

FUZZ = settings(settings.get_profile("fuzz"), max_examples=12)  # tests/conftest.py
NOT_NUMBERS = (None, "abc", [1.0, 2.0], {"x": 1}, True, object())
BAD_COUNTS = st.sampled_from((0, -1, 2.0, float("nan"), *NOT_NUMBERS))
#: A two-block MobileNetV2 setting (t, c, n, s): cheap, with a residual block.
SETTING = [[1, 8, 1, 1], [2, 8, 2, 2]]


@functools.lru_cache(maxsize=None)
def _model(kind: str, size: int) -> torch.nn.Module:
    """One model per kind (built once: the fuzzing is about the inputs)."""
    torch.manual_seed(0)
    if kind == "ConvNet":
        return ConvNet(num_channels=1, feature_size=size).eval()
    if kind == "ConvNet4":
        return ConvNet4(num_channels=2, feature_size=size).eval()
    if kind == "VGG":
        return VGG(
            make_layers([512, "M"]), num_classes=3, hidden_size=8, pool_size=1
        ).eval()
    return MobileNetV2(
        num_classes=3, width_mult=0.25, inverted_residual_setting=SETTING
    ).eval()


CHANNELS = {"ConvNet": 1, "ConvNet4": 2, "VGG": 3, "MobileNetV2": 3}


@st.composite
def images(draw, kind, size):
    """Mostly valid image sequences ``(T, batch, C, H, W)``; otherwise another number
    of dimensions or channels, a size too small for the network, another dtype, NaN,
    an empty batch or no tensor. Drawn as ``(shape, dtype, flaw)``, built by
    :func:`_build` (short reports)."""
    steps, batch = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    shape = [steps, batch, CHANNELS[kind], size, size]
    dtype = torch.float32
    flaw = draw(
        st.sampled_from((None, None, "ndim", "channels", "small", "dtype", "nan", "empty", "junk"))
    )  # fmt: skip
    if flaw == "ndim":
        shape = shape[draw(st.integers(1, 2)) :]
    elif flaw == "channels":
        shape[2] += 1
    elif flaw == "small":
        shape[3] = shape[4] = draw(st.integers(1, 4))
    elif flaw == "dtype":
        dtype = draw(
            st.sampled_from((torch.float64, torch.int64, torch.bool, torch.float16))
        )
    elif flaw == "empty":
        shape[draw(st.sampled_from((0, 1)))] = 0
    elif flaw == "junk":
        return draw(st.sampled_from(NOT_NUMBERS)), dtype, flaw
    return tuple(shape), dtype, flaw


def _build(shape, dtype, flaw):
    if flaw == "junk":
        return shape
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    if flaw == "nan":
        x.view(-1)[0] = float("nan")
    return x.to(dtype)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("kind", ["ConvNet", "ConvNet4", "VGG", "MobileNetV2"])
def test_forward(fuzz, data, kind):
    size = 16 if kind.startswith("ConvNet") else 8
    model = _model(kind, size)
    shape, dtype, flaw = data.draw(images(kind, size))
    x, valid = _build(shape, dtype, flaw), flaw in (None, "nan")
    with torch.no_grad():
        out = fuzz.call("model zoo", model, x, expect_result=valid)
    if out is not None and isinstance(x, torch.Tensor):
        classes = 10 if kind.startswith("ConvNet") else 3
        assert out.shape == (x.shape[0], x.shape[1], classes)
        if valid and bool(torch.isfinite(x).all()):
            assert bool(torch.isfinite(out).all())


@FUZZ
@given(data=st.data())
def test_convnet_construction(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            num_channels=(st.integers(1, 3), BAD_COUNTS),
            feature_size=(
                st.integers(16, 20),
                st.one_of(st.integers(-1, 15), BAD_COUNTS),
            ),
            method=(
                st.sampled_from(("super", "triangle")),
                st.sampled_from(("relu", 3)),
            ),
            dtype=(
                st.sampled_from((torch.float32, torch.float64)),
                st.sampled_from(("float", None)),
            ),
        ),
    )
    model = fuzz.call("model zoo", ConvNet, **args, expect_result=not broken)
    assert (model is None) == bool(broken), f"accepted invalid {broken}"
    if model is not None:
        x = torch.rand(
            1, 1, args["num_channels"], args["feature_size"], args["feature_size"]
        )
        with torch.no_grad():
            assert model(x).dtype == args["dtype"]


@FUZZ
@given(data=st.data())
def test_vgg_construction(fuzz, data):
    cfg_valid = st.lists(st.sampled_from((8, 16, "M")), min_size=0, max_size=3).map(
        lambda cfg: [*cfg, 512]
    )
    cfg_broken = st.sampled_from(([8, "X"], [0], [-8], [8.5], ["M", None]))
    args, broken = fuzz.arguments(
        data,
        dict(
            cfg=(cfg_valid, cfg_broken),
            num_classes=(st.integers(1, 4), BAD_COUNTS),
            hidden_size=(st.integers(1, 8), BAD_COUNTS),
            pool_size=(st.integers(1, 2), BAD_COUNTS),
        ),
    )
    features = fuzz.call(
        "model zoo", make_layers, args.pop("cfg"), data.draw(st.booleans()),
        expect_result="cfg" not in broken,
    )  # fmt: skip
    if features is None:
        assert "cfg" in broken
        return
    model = fuzz.call("model zoo", VGG, features, **args, expect_result=not broken)
    assert (model is None) == bool(broken - {"cfg"}), f"accepted invalid {broken}"
    if model is not None:
        with torch.no_grad():
            out = model.eval()(torch.rand(1, 1, 3, 16, 16))
        assert out.shape == (1, 1, args["num_classes"])


@FUZZ
@given(data=st.data())
def test_mobilenet_construction(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            num_classes=(st.integers(1, 4), BAD_COUNTS),
            width_mult=(
                st.sampled_from((0.25, 0.5)),
                st.sampled_from((0, -1.0, float("nan"), float("inf"), "wide", None)),
            ),
            inverted_residual_setting=(
                st.just(SETTING),
                st.sampled_from(
                    (
                        [],
                        [[1, 8, 1]],
                        [[1, 8, 1, 3]],
                        [[0, 8, 1, 1]],
                        [[1, -8, 1, 1]],
                        [[1, 8, -1, 1]],
                        "setting",
                        [None],
                    )
                ),
            ),  # fmt: skip
            round_nearest=(st.sampled_from((4, 8)), BAD_COUNTS),
        ),
    )
    model = fuzz.call("model zoo", MobileNetV2, **args, expect_result=not broken)
    assert (model is None) == bool(broken), f"accepted invalid {broken}"
    if model is not None:
        with torch.no_grad():
            out = model.eval()(torch.rand(1, 2, 3, 8, 8))
        assert out.shape == (1, 2, args["num_classes"])

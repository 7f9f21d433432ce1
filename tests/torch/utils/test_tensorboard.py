"""The TensorBoard hooks write events that TensorBoard reads back."""

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.utils import tensorboard as hooks

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def _spike_sequence(calls=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.rand(4, 6, generator=generator) < 0.3).float() for _ in range(calls)]


class _Replay(torch.nn.Module):
    """Returns given spikes as (spikes, state), so the logged values are known."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, x, state=None):
        return self.outputs.pop(0), state


def _run(tmp_path, make_hook, outputs):
    writer = SummaryWriter(log_dir=str(tmp_path))
    module = _Replay(outputs)
    module.register_forward_hook(make_hook("layer", writer))
    for _ in range(len(module.outputs)):
        module(torch.zeros(1))
    writer.close()
    events = EventAccumulator(
        str(tmp_path), size_guidance={"scalars": 0, "histograms": 0, "images": 0}
    )
    events.Reload()
    return events


def test_activity_mean_and_sum_are_logged_per_call(tmp_path):
    spikes = _spike_sequence()
    means = _run(tmp_path / "mean", hooks.hook_spike_activity_mean, spikes)
    sums = _run(tmp_path / "sum", hooks.hook_spike_activity_sum, spikes)
    logged_mean = means.Scalars("layer")
    logged_sum = sums.Scalars("layer")
    assert [e.step for e in logged_mean] == [0, 1, 2]
    assert [e.value for e in logged_mean] == pytest.approx(
        [s.mean().item() for s in spikes]
    )
    assert [e.value for e in logged_sum] == pytest.approx(
        [s.sum().item() for s in spikes]
    )


@pytest.mark.parametrize(
    "make_hook, reduce",
    [
        (hooks.hook_spike_histogram_mean, torch.mean),
        (hooks.hook_spike_histogram_sum, torch.sum),
    ],
)
def test_histograms_of_per_neuron_activity(tmp_path, make_hook, reduce):
    spikes = _spike_sequence(calls=2)
    events = _run(tmp_path, make_hook, spikes)
    logged = events.Histograms("layer")
    assert [e.step for e in logged] == [0, 1]
    for event, s in zip(logged, spikes):
        per_neuron = reduce(s, 0)
        histogram = event.histogram_value
        assert histogram.num == per_neuron.numel()  # one value per neuron
        assert histogram.sum == pytest.approx(per_neuron.sum().item())
        assert histogram.max == pytest.approx(per_neuron.max().item())


def test_spike_image(tmp_path):
    spikes = [torch.eye(5, 7), torch.zeros(5, 7)]
    events = _run(tmp_path, hooks.hook_spike_image, spikes)
    images = events.Images("layer")
    assert [(i.step, i.height, i.width) for i in images] == [(0, 5, 7), (1, 5, 7)]

    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)))
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    assert (pixels > 127).astype(float).tolist() == torch.eye(5, 7).tolist()


def test_hooks_on_a_norse_layer_in_time(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path))
    layer = norse.LIF()
    layer.register_forward_hook(hooks.hook_spike_activity_sum("lif", writer))
    layer.register_forward_hook(hooks.hook_spike_image("lif_image", writer))
    spikes, _ = layer(torch.full((20, 2, 3), 2.0))  # (T, batch, neurons)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Scalars("lif")[0].value == spikes.sum().item() > 0
    image = events.Images("lif_image")[0]
    assert (image.height, image.width) == (20, 6)  # time x (batch * neurons)


def test_clear_errors():
    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    module = Plain()
    module.register_forward_hook(
        hooks.hook_spike_activity_sum("plain", SummaryWriterStub())
    )
    with pytest.raises(TypeError, match=r"returns \(spikes, state\); Plain returned"):
        module(torch.ones(2))
    with pytest.raises(TypeError, match="writer must be a SummaryWriter"):
        hooks.hook_spike_image("x", object())
    with pytest.raises(TypeError, match="key must be a str"):
        hooks.hook_spike_activity_mean(3, SummaryWriterStub())


class SummaryWriterStub:
    def add_scalar(self, *args, **kwargs):
        pass

"""The TensorBoard hooks: what they hand the writer (Norse 1.1's calls) and the events
that TensorBoard reads back."""

import io

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.utils import tensorboard as hooks
from norse.torch.utils.tensorboard import tensorboard as norse_path


class _RecordingWriter:
    """Records the calls, with exactly the arguments of Norse 1.1's calls (no keywords)."""

    def __init__(self):
        self.calls = []

    def add_scalar(self, key, value, step):
        self.calls.append(("scalar", key, value, step))

    def add_histogram(self, key, value, step):
        self.calls.append(("histogram", key, value, step))

    def add_image(self, key, value, step):
        self.calls.append(("image", key, value, step))


def test_norse_import_path_is_the_same_module():
    assert norse_path.hook_spike_image is hooks.hook_spike_image
    assert norse.hook_spike_activity_mean is norse_path.hook_spike_activity_mean


@pytest.mark.parametrize(
    "make_hook, kind, reduce",
    [
        (hooks.hook_spike_activity_mean, "scalar", torch.mean),
        (hooks.hook_spike_activity_sum, "scalar", torch.sum),
        (hooks.hook_spike_histogram_mean, "histogram", torch.mean),
        (hooks.hook_spike_histogram_sum, "histogram", torch.sum),
    ],
)
def test_writer_gets_the_reduced_spikes_as_a_tensor(make_hook, kind, reduce):
    writer = _RecordingWriter()
    cell = norse.LIFCell()
    cell.register_forward_hook(make_hook("lif", writer))
    state, outputs = None, []
    for _ in range(6):
        z, state = cell(torch.ones(3, 2) * 2, state)
        outputs.append(z)
    assert [(c[0], c[1], c[3]) for c in writer.calls] == [
        (kind, "lif", step) for step in range(6)
    ]
    for call, z in zip(writer.calls, outputs):
        value = call[2]
        assert isinstance(value, torch.Tensor) and value.dim() == 0
        assert not value.requires_grad
        torch.testing.assert_close(value, reduce(z))
    assert sum(z.sum() for z in outputs) > 0  # the values were not all zero


def test_image_is_a_grey_chw_image_of_the_spikes():
    writer = _RecordingWriter()
    cell = norse.LIFCell()
    cell.register_forward_hook(hooks.hook_spike_image("lif", writer))
    z, _ = cell(torch.ones(2) * 10)  # unbatched: one row
    assert writer.calls[0][2].shape == (1, 1, 2)
    assert torch.equal(writer.calls[0][2], z.reshape(1, 1, 2))
    layer = norse.LIF()
    layer.register_forward_hook(hooks.hook_spike_image("lif", writer))
    z, _ = layer(torch.rand(5, 2, 3) * 4)  # (time, batch, neurons)
    assert torch.equal(writer.calls[1][2], z.reshape(1, 10, 3))
    assert hooks.tensorboard._as_image(torch.tensor(1.0)).shape == (1, 1, 1)
    image = torch.rand(1, 4, 5)
    assert torch.equal(hooks.tensorboard._as_image(image), image)  # kept as it is


def test_each_kind_of_hook_counts_its_own_steps():
    # Norse 1.1 shares one counter between the mean activity and both histogram hooks,
    # so a layer with two of them logs every other step; here each kind counts alone
    writer = _RecordingWriter()
    cell = norse.LIFCell()
    cell.register_forward_hook(hooks.hook_spike_activity_mean("a", writer))
    cell.register_forward_hook(hooks.hook_spike_histogram_mean("h", writer))
    cell.register_forward_hook(hooks.hook_spike_histogram_sum("s", writer))
    state = None
    for _ in range(2):
        _, state = cell(torch.ones(2), state)
    assert [(c[1], c[3]) for c in writer.calls] == [
        ("a", 0),
        ("h", 0),
        ("s", 0),
        ("a", 1),
        ("h", 1),
        ("s", 1),
    ]
    assert cell.norse_hook_spike_activity_mean == 2  # Norse 1.1's attribute name


def test_list_output_and_integer_spikes():
    class ListOutput(torch.nn.Module):
        def forward(self, x):
            return [x, None]

    writer = _RecordingWriter()
    module = ListOutput()
    module.register_forward_hook(hooks.hook_spike_activity_mean("m", writer))
    module(torch.tensor([1, 0, 0, 1]))
    torch.testing.assert_close(writer.calls[0][2], torch.tensor(0.5))


def _tensorboard():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter, EventAccumulator


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
    SummaryWriter, EventAccumulator = _tensorboard()
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
def test_histograms_of_the_activity_of_each_call(tmp_path, make_hook, reduce):
    # Norse 1.1: one value per call (the mean or the sum of all spikes)
    spikes = _spike_sequence(calls=2)
    events = _run(tmp_path, make_hook, spikes)
    logged = events.Histograms("layer")
    assert [e.step for e in logged] == [0, 1]
    for event, s in zip(logged, spikes):
        histogram = event.histogram_value
        assert histogram.num == 1
        assert histogram.sum == pytest.approx(reduce(s).item())


def test_spike_image(tmp_path):
    spikes = [torch.eye(5, 7), torch.zeros(5, 7)]
    events = _run(tmp_path, hooks.hook_spike_image, spikes)
    images = events.Images("layer")
    assert [(i.step, i.height, i.width) for i in images] == [(0, 5, 7), (1, 5, 7)]

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)))
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    assert (pixels > 127).astype(float).tolist() == torch.eye(5, 7).tolist()


def test_hooks_on_a_norse_layer_in_time(tmp_path):
    SummaryWriter, EventAccumulator = _tensorboard()
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
    assert (image.height, image.width) == (40, 3)  # (time * batch) x neurons


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


class SummaryWriterStub:
    def add_scalar(self, *args, **kwargs):
        pass

"""Plots render to PNG with Agg and draw something (the image is not blank)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import norse.torch as norse  # noqa: E402
from norse.torch.functional.izhikevich import tonic_spiking  # noqa: E402
from norse.torch.utils import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_figure():
    plt.figure(figsize=(4, 3))
    yield
    plt.close("all")


def _render(tmp_path, name="figure.png", figure=None) -> np.ndarray:
    path = tmp_path / name
    (figure or plt.gcf()).savefig(path, dpi=50)
    return matplotlib.image.imread(path)


def _assert_not_blank(image: np.ndarray) -> None:
    rgb = image[..., :3]
    # a blank canvas is one colour; a plot has ink (dark pixels) in many places
    assert rgb.std() > 0.02
    assert (rgb.mean(-1) < 0.5).mean() > 0.002


def _spikes(steps=40, neurons=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, neurons, generator=generator) < 0.2).float()


def test_importable_from_the_documented_paths():
    from norse.torch.utils.plot import plot_spikes_2d  # noqa: F401

    for name in plot.__all__:
        assert getattr(norse, name) is getattr(plot, name)


def test_heatmap_2d(tmp_path):
    ax = plot.plot_heatmap_2d(torch.randn(28, 20), show_colorbar=True)
    image = ax.get_images()[0].get_array()
    assert image.shape == (20, 28)  # neurons on y, time on x
    _assert_not_blank(_render(tmp_path))


def test_spikes_2d_detaches_and_draws_black_on_white(tmp_path):
    spikes = _spikes().requires_grad_()
    ax = plot.plot_spikes_2d(spikes)
    assert ax.get_images()[0].get_cmap().name == "binary"
    _assert_not_blank(_render(tmp_path))


def test_raster_with_rates(tmp_path):
    rates = torch.linspace(0.0, 0.5, 10)
    generator = torch.Generator().manual_seed(1)
    spikes = (torch.rand(200, 10, generator=generator) < rates).float()
    ax, ax_rate = plot.plot_raster(spikes, dt=0.001, sort_by_rate=True, title="t")
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == int(spikes.sum())
    bars = [bar.get_width() for bar in ax_rate.patches]
    assert len(bars) == 10
    # sorted by rate, in Hz: the first bar is the most active neuron
    assert bars[0] == pytest.approx(spikes.mean(0).max().item() / 0.001)
    assert bars == sorted(bars, reverse=True)
    assert ax.get_xlabel() == "time (s)"
    _assert_not_blank(_render(tmp_path, figure=ax.figure))


def test_raster_on_given_axes_and_max_neurons(tmp_path):
    figure, axes = plt.subplots(1, 2)
    ax, ax_rate = plot.plot_raster(_spikes(neurons=30), axes=axes, max_neurons=5)
    assert ax is axes[0] and ax_rate is axes[1]
    assert len(ax_rate.patches) == 5
    single, none = plot.plot_raster(_spikes().reshape(40, 3, 4), axes=axes[0])
    assert none is None and single is axes[0]
    _assert_not_blank(_render(tmp_path, figure=figure))


def test_raster_errors():
    with pytest.raises(ValueError, match="time, neurons"):
        plot.plot_raster(torch.ones(5))
    with pytest.raises(ValueError, match="dt"):
        plot.plot_raster(_spikes(), dt=0)
    with pytest.raises(TypeError, match="spikes must be a torch.Tensor"):
        plot.plot_raster([[0, 1]])


def test_histogram(tmp_path):
    _, state = norse.LIF()(torch.ones(10, 50) + torch.randn(10, 50))
    ax = plot.plot_histogram_2d(state.v, bins=10)
    assert len(ax.patches) == 10
    _assert_not_blank(_render(tmp_path))


def test_neuron_states(tmp_path):
    data = torch.ones(30, 3) * torch.tensor([0.0, 0.5, 1.5])
    _, states = norse.LIF(record_states=True)(data)
    ax = plot.plot_neuron_states(states, "v", "i")
    assert len(ax.get_lines()) == 6  # two variables x three neurons
    assert [t.get_text() for t in ax.get_legend().get_texts()][:1] == ["v"]
    _assert_not_blank(_render(tmp_path))


def test_neuron_states_errors():
    _, states = norse.LIF(record_states=True)(torch.ones(5, 2))
    with pytest.raises(ValueError, match="at least one"):
        plot.plot_neuron_states(states)
    with pytest.raises(ValueError, match="no variable 'w'"):
        plot.plot_neuron_states(states, "w")


def test_heatmap_3d_in_any_dimension_order(tmp_path):
    data = torch.rand(3, 8, 8)
    ax = plot.plot_heatmap_3d(data, show_colorbar=True)
    assert len(ax.collections[0].get_offsets()) == 3 * 8 * 8
    _assert_not_blank(_render(tmp_path))
    plt.clf()
    ax = plot.plot_heatmap_3d(torch.rand(8, 3, 5), dims="XLY")
    assert ax.get_xlim() == (0.0, 2.0)  # three layers
    assert sorted(ax.get_ylim()) == [0.0, 5.0]  # the y extent
    with pytest.raises(ValueError, match="layer, x, y"):
        plot.plot_heatmap_3d(torch.rand(8, 8))
    with pytest.raises(ValueError, match="dims must name"):
        plot.plot_heatmap_3d(data, dims="LXX")


def test_scatter_3d(tmp_path):
    generator = torch.Generator().manual_seed(0)
    spikes = (torch.rand(30, 2, 6, 6, generator=generator) < 0.1).float()
    axes = plot.plot_scatter_3d(spikes)
    assert len(axes) == 2
    assert len(axes[0].collections[0].get_offsets()) == int(spikes[:, 0].sum())
    _assert_not_blank(_render(tmp_path))
    with pytest.raises(ValueError, match="one axes per layer"):
        plot.plot_scatter_3d(spikes, axes=axes[:1])
    plt.clf()
    # layer first, as in Norse 1.1's example
    axes = plot.plot_scatter_3d(spikes.transpose(0, 1), dims="LTXY")
    assert len(axes) == 2
    assert len(axes[1].collections[0].get_offsets()) == int(spikes[:, 1].sum())


def test_izhikevich_spikes_after_the_current_step(tmp_path):
    ax = plot.plot_izhikevich(tonic_spiking, current=10, time_print=100)
    times, voltages = ax.get_lines()[0].get_data()
    assert times[-1] == pytest.approx(99.9)
    voltages = np.asarray(voltages)
    # resting before the step (20 ms), spiking (v reaches the 30 mV peak region) after
    assert voltages[times < 20].max() < -55
    assert voltages[times > 20].max() > 0
    _assert_not_blank(_render(tmp_path, figure=ax.figure))


def test_harness_raster_uses_the_same_plot(tmp_path, monkeypatch):
    from norse.task import harness

    calls = []
    original = plot.plot_raster

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(plot, "plot_raster", spy)
    path = harness.plot_raster(_spikes(), tmp_path / "raster.png", title="x")
    assert calls and calls[0]["sort_by_rate"]
    _assert_not_blank(matplotlib.image.imread(path))


def test_raster_axes_must_be_axes():
    with pytest.raises(TypeError, match="axes must be None, one matplotlib Axes"):
        plot.plot_raster(_spikes(), axes="left")


def test_izhikevich_arguments_are_checked():
    with pytest.raises(
        TypeError, match="behavior must be an IzhikevichSpikingBehavior"
    ):
        plot.plot_izhikevich((1, 2))
    with pytest.raises(ValueError, match="positive and finite"):
        plot.plot_izhikevich(tonic_spiking, time_print=float("inf"))
    with pytest.raises(TypeError, match="current must be a number"):
        plot.plot_izhikevich(tonic_spiking, current="10")

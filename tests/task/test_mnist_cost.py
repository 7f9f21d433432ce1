"""The MNIST task's end-of-run cost report: SynOps and energy per held-out digit."""

import csv
import json
from dataclasses import replace

import pytest
import torch

from norse.task import mnist


def test_held_out_cost_of_the_direct_encoder_network():
    torch.manual_seed(0)
    model = mnist.MNISTConvSNN(seq_length=3, channels=(4, 8), hidden=16)
    images = torch.rand(6, 1, 28, 28)
    cost = mnist.held_out_cost(model, images)
    rows = {row.name: row for row in cost.layers}
    assert list(rows) == ["conv1", "lif1", "conv2", "lif2", "fc1", "lif3", "fc2", "out"]
    # the image enters the first convolution once per digit (dense: MACs) ...
    assert rows["conv1"].calls == 1 and rows["conv1"].effective_acs == 0
    assert rows["conv1"].dense_ops == 4 * 24 * 24 * 25
    # ... every later synaptic layer takes spikes at each of the 3 steps (ACs)
    for name in ("conv2", "fc1", "fc2"):
        assert rows[name].effective_macs == 0, name
    assert rows["fc2"].dense_ops == 3 * 16 * 10
    assert cost.membrane_updates == 3 * (4 * 24 * 24 + 8 * 8 * 8 + 16 + 10)
    assert cost.samples == 6
    # per digit: the batch size of the pass does not matter
    again = mnist.held_out_cost(model, images, batch_size=4)
    assert rows["conv1"].calls == 1 and again.layers[0].calls == 2
    assert [replace(row, calls=0) for row in again.layers] == [
        replace(row, calls=0) for row in cost.layers
    ]


def test_the_run_prints_synops_and_energy_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "run"
    summary = mnist.main(
        [
            "--epochs", "1", "--batch-size", "16", "--seq-length", "2", "--hidden", "8",
            "--channels", "2", "4", "--threads", "1", "--no-progress", "--no-plots",
            "--n-train", "32", "--n-test", "8", "--output", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "SynOps per held-out digit" in printed and "uJ per digit" in printed
    assert "(total)" in printed  # the table
    with open(out / "cost.csv", newline="") as stream:
        total = list(csv.DictReader(stream))[-1]
    cost = summary["cost_per_digit"]
    assert total["layer"] == "(total)" and float(total["synops"]) == cost["synops"]
    assert float(total["samples"]) == 8
    assert cost["energy_pj"] == pytest.approx(
        0.9 * cost["effective_acs"] + 4.6 * cost["effective_macs"]
    )
    written = json.loads((out / "metrics.json").read_text())["cost_per_digit"]
    assert written == pytest.approx(cost)
    assert f"{cost['synops']:,.0f}" in printed

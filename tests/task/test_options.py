"""Command-line options of every task: a value out of range is a usage error (exit
status 2, the usage and a message on stderr) that names the option as it is spelled on
the command line, the expected range and the given value; values on the boundary of
their range are accepted. The argument lists are parsed in-process (no subprocess)."""

import argparse

import pytest

from norse.task import cartpole, cifar10, harness, memory, mnist


def _mnist_pl(argv):
    mnist_pl = pytest.importorskip("norse.task.mnist_pl")
    return mnist_pl.parse_args(argv)


PARSERS = {
    "memory": memory.parse_args,
    "cartpole": cartpole.parse_args,
    "cifar10": cifar10.parse_args,
    "mnist": mnist.parse_args,
    "mnist_pl": _mnist_pl,
}

#: (task, arguments, the message expected on stderr)
BAD = [
    ("memory", ["--neurons", "0"], "--neurons must be a positive int, got 0"),
    ("memory", ["--epochs", "-1"], "--epochs must be >= 0, got -1"),
    ("memory", ["--seq_periods", "1"], "--seq_periods must be >= 2, got 1"),
    (
        "memory",
        ["--learning_rate", "0"],
        "--learning_rate must be a positive, finite number, got 0.0",
    ),
    (
        "memory",
        ["--learning-rate", "nan"],
        "--learning_rate must be a positive, finite number, got nan",
    ),
    (
        "memory",
        ["--dt", "-0.001"],
        "--dt must be a positive, finite number, got -0.001",
    ),
    ("memory", ["--dt", "inf"], "--dt must be a positive, finite number, got inf"),
    ("memory", ["--v_th", "0"], "--v_th must be a positive, finite number, got 0.0"),
    (
        "memory",
        ["--tau_adapt", "0"],
        "--tau_adapt must be a positive, finite number, got 0.0",
    ),
    (
        "memory",
        ["--alpha", "-1"],
        "--alpha must be a positive, finite number, got -1.0",
    ),
    (
        "memory",
        ["--input_scale", "0"],
        "--input_scale must be a positive, finite number, got 0.0",
    ),
    (
        "memory",
        ["--regularization_target", "0"],
        "--regularization_target must be a positive, finite number, got 0.0",
    ),
    ("memory", ["--max_grad_norm", "-1"], "--max_grad_norm must be >= 0, got -1.0"),
    ("memory", ["--beta", "-0.1"], "--beta must be >= 0, got -0.1"),
    (
        "memory",
        ["--regularization_factor=-inf"],
        "--regularization_factor must be >= 0, got -inf",
    ),
    (
        "memory",
        ["--poisson_rate", "2000"],
        "--poisson_rate must be in [0, 1000] (1 / --dt: at most one spike per input "
        "neuron and step), got 2000.0",
    ),
    ("memory", ["--poisson_rate", "-1"], "--poisson_rate must be in [0, 1000]"),
    ("memory", ["--stop_at", "1.5"], "--stop_at must be in [0, 1], got 1.5"),
    ("memory", ["--method", "relu"], "--method must be one of heaviside, super"),
    ("memory", ["--threads", "0"], "--threads must be a positive int, got 0"),
    ("memory", ["--seed", "-1"], "--seed must be in [0, 18446744073709551615], got -1"),
    ("memory", ["--device", "gpu7"], "--device must be auto, cpu, cuda or cuda:N"),
    ("cartpole", ["--updates", "0"], "--updates must be a positive int, got 0"),
    ("cartpole", ["--max_steps", "0"], "--max_steps must be a positive int, got 0"),
    ("cartpole", ["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),
    ("cartpole", ["--gamma", "1.01"], "--gamma must be in (0, 1], got 1.01"),
    (
        "cartpole",
        ["--learning_rate", "-1"],
        "--learning_rate must be a positive, finite number, got -1.0",
    ),
    (
        "cartpole",
        ["--scale", "0"],
        "--scale must be a positive, finite number, got 0.0",
    ),
    (
        "cartpole",
        ["--alpha", "nan"],
        "--alpha must be a positive, finite number, got nan",
    ),
    ("cartpole", ["--method", "relu"], "--method must be one of"),
    ("cartpole", ["--threads", "-2"], "--threads must be a positive int, got -2"),
    ("cifar10", ["--epochs", "0"], "--epochs must be a positive int, got 0"),
    ("cifar10", ["--seq_length", "0"], "--seq_length must be a positive int, got 0"),
    (
        "cifar10",
        ["--channels", "2", "0", "2"],
        "--channels must be positive ints, got [2, 0, 2]",
    ),
    (
        "cifar10",
        ["--learning_rate", "0"],
        "--learning_rate must be a positive, finite number, got 0.0",
    ),
    ("cifar10", ["--v_th", "-1"], "--v_th must be a positive, finite number, got -1.0"),
    (
        "cifar10",
        ["--label_smoothing", "1.5"],
        "--label_smoothing must be in [0, 1], got 1.5",
    ),
    ("cifar10", ["--train_samples", "-1"], "--train_samples must be >= 0, got -1"),
    ("cifar10", ["--test_samples", "-5"], "--test_samples must be >= 0, got -5"),
    ("cifar10", ["--seed", "-3"], "--seed must be in [0, "),
    ("mnist", ["--epochs", "-1"], "--epochs must be >= 0, got -1"),
    ("mnist", ["--batch-size", "0"], "--batch-size must be a positive int, got 0"),
    ("mnist", ["--channels", "0", "4"], "--channels must be positive ints, got [0, 4]"),
    (
        "mnist",
        ["--n-train", "4500"],
        "--n-train + --n-test must be <= 5000 (the bundled digits), got 4500 + 1000",
    ),
    ("mnist", ["--lr", "inf"], "--lr must be a positive, finite number, got inf"),
    (
        "mnist",
        ["--tau-syn-inv", "0"],
        "--tau-syn-inv must be a positive, finite number, got 0.0",
    ),
    (
        "mnist",
        ["--tau-mem-inv", "-200"],
        "--tau-mem-inv must be a positive, finite number, got -200.0",
    ),
    (
        "mnist",
        ["--encoder-gain", "0"],
        "--encoder-gain must be a positive, finite number, got 0.0",
    ),
    ("mnist", ["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
    ("mnist", ["--augment", "-0.5"], "--augment must be >= 0, got -0.5"),
    ("mnist", ["--threads", "-1"], "--threads must be >= 0, got -1"),
    (
        "mnist",
        ["--label-smoothing", "2"],
        "--label-smoothing must be in [0, 1], got 2.0",
    ),
    ("mnist", ["--method", "relu"], "--method must be one of"),
    ("mnist", ["--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N"),
    ("mnist_pl", ["--max_epochs", "0"], "--max_epochs must be a positive int, got 0"),
    ("mnist_pl", ["--n_train", "0"], "--n_train must be a positive int, got 0"),
    (
        "mnist_pl",
        ["--n_train", "4500", "--n_test", "600"],
        "--n_train + --n_test must be <= 5000 (the bundled digits), got 4500 + 600",
    ),
    (
        "mnist_pl",
        ["--learning_rate", "0"],
        "--learning_rate must be a positive, finite number, got 0.0",
    ),
    (
        "mnist_pl",
        ["--input_scale", "inf"],
        "--input_scale must be a positive, finite number, got inf",
    ),
    ("mnist_pl", ["--model", "relu"], "--model must be one of heaviside, super"),
    ("mnist_pl", ["--seed", "-1"], "--seed must be >= 0, got -1"),
]


@pytest.mark.parametrize(
    "task, argv, message", BAD, ids=[f"{t}:{' '.join(a)}" for t, a, _ in BAD]
)
def test_option_out_of_range_is_a_usage_error(task, argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        PARSERS[task](argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert message in err, err.splitlines()[-1]


#: Values on the boundary of their range (and the defaults) are accepted.
BOUNDARY = [
    ("memory", []),
    (
        "memory",
        [
            "--epochs",
            "0",
            "--max_grad_norm",
            "0",
            "--beta",
            "0",
            "--poisson_rate",
            "1000",
            "--stop_at",
            "0",
            "--regularization_factor",
            "0",
            "--method",
            "heaviside",
            "--seed",
            "18446744073709551615",
            "--device",
            "cuda:1",
        ],
    ),  # fmt: skip
    ("memory", ["--poisson_rate", "2000", "--dt", "0.0005"]),
    ("cartpole", []),
    ("cartpole", ["--gamma", "1", "--method", "triangle", "--threads", "1"]),
    ("cifar10", []),
    ("cifar10", ["--label_smoothing", "0", "--train_samples", "0"]),
    ("cifar10", ["--label_smoothing", "1", "--test_samples", "0", "--device", "cpu"]),
    ("mnist", []),
    (
        "mnist",
        ["--epochs", "0", "--augment", "0", "--threads", "0", "--n-train", "4000"],
    ),
    ("mnist", ["--data", "full", "--n-train", "60000"]),
    ("mnist_pl", []),
    ("mnist_pl", ["--n_train", "4000", "--n_test", "1000", "--seed", "0"]),
]


@pytest.mark.parametrize(
    "task, argv", BOUNDARY, ids=[f"{t}:{' '.join(a)}" for t, a in BOUNDARY]
)
def test_options_on_the_boundary_are_accepted(task, argv):
    assert isinstance(PARSERS[task](argv), argparse.Namespace)


def _parser():
    parser = argparse.ArgumentParser(prog="task")
    harness.add_option(parser, "--rate_hz", type=float, default=1.0)
    parser.add_argument("--keep-prob", type=float, default=0.5)
    return parser


@pytest.mark.parametrize(
    "check, argv, message",
    [
        (
            lambda p, a: harness.require_range(p, a, "rate_hz", 0, 5, open_high=True),
            ["--rate-hz", "5"],
            "--rate_hz must be in [0, 5), got 5.0",
        ),
        (
            lambda p, a: harness.require_range(p, a, "rate_hz", high=2, reason="why"),
            ["--rate_hz", "3"],
            "--rate_hz must be <= 2 (why), got 3.0",
        ),
        (
            lambda p, a: harness.require_range(p, a, "rate_hz", high=2),
            ["--rate_hz=-inf"],
            "--rate_hz must be <= 2, got -inf",
        ),
        (
            lambda p, a: harness.require_probability(p, a, "keep_prob"),
            ["--keep-prob", "-0.1"],
            "--keep-prob must be in [0, 1], got -0.1",
        ),
        (
            lambda p, a: harness.require_probability(p, a, "keep_prob"),
            ["--keep-prob", "nan"],
            "--keep-prob must be in [0, 1], got nan",
        ),
        (
            lambda p, a: harness.require_positive_finite(p, a, "rate_hz"),
            ["--rate_hz", "nan"],
            "--rate_hz must be a positive, finite number, got nan",
        ),
        (
            lambda p, a: harness.require_positive(p, a, "rate_hz"),
            ["--rate_hz", "2.5"],
            "--rate_hz must be a positive int, got 2.5",
        ),
    ],
)
def test_harness_range_checks(check, argv, message, capsys):
    parser = _parser()
    with pytest.raises(SystemExit) as exit:
        check(parser, parser.parse_args(argv))
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_harness_range_checks_accept_values_inside():
    parser = _parser()
    args = parser.parse_args(["--rate_hz", "4.99", "--keep-prob", "1"])
    harness.require_range(parser, args, "rate_hz", 0, 5, open_high=True)
    harness.require_probability(parser, args, "keep_prob")
    harness.require_positive_finite(parser, args, "rate_hz", "keep_prob")
    assert harness.option_name(parser, "keep_prob") == "--keep-prob"
    assert harness.option_name(parser, "rate_hz") == "--rate_hz"

"""Cart-pole balancing with a spiking policy trained by REINFORCE.

Run ``python -m norse.task.cartpole`` (needs ``gymnasium``: ``pip install norse[tasks]``).

The policy sees gymnasium's ``CartPole-v1`` observation (cart position and velocity, pole
angle and angular velocity). Each value, scaled, drives two LIF encoder neurons as a
constant current (one for its positive, one for its negative part), which spike for
``--seq_length`` steps into a recurrent layer (LIF, or LSNN with ``--policy lsnn``); two
leaky integrators read the layer out and their peak voltages are the action logits
(``--policy ann`` is a small non-spiking network for comparison). After every batch of
``--episodes_per_update`` episodes the policy follows the REINFORCE gradient
``-sum_t log pi(a_t | s_t) G_t`` with discounted returns ``G_t`` normalised over the batch.

Every episode is seeded by ``(seed, episode)``, so a run resumed with ``--resume`` from
``checkpoint.pt`` (written after every update) ends where an uninterrupted one ends.
Outputs in ``--output``: ``checkpoint.pt``, ``metrics.jsonl`` (per update: mean, min and
max return, loss, seconds), ``summary.json``, ``returns.png`` and ``raster.png``.
"""

import argparse
import functools
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from norse.task import harness
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lsnn import LSNNParameters
from norse.torch.module.encode import ConstantCurrentLIFEncoder
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIFRecurrent
from norse.torch.module.lsnn import LSNNRecurrent

POLICIES = ("snn", "lsnn", "ann")


class SpikingPolicy(torch.nn.Module):
    """Observation -> action logits through spikes.

    Shapes: observations ``(batch, 4)``; :meth:`forward` returns logits ``(batch, 2)``
    and the hidden spikes ``(seq_length, batch, hidden)``.
    """

    def __init__(
        self,
        seq_length: int = 16,
        hidden: int = 64,
        scale: float = 50.0,
        adaptive: bool = False,
        method: str = "super",
        alpha: float = 100.0,
    ):
        super().__init__()
        self.scale = scale
        self.encoder = ConstantCurrentLIFEncoder(seq_length)
        if adaptive:
            self.hidden = LSNNRecurrent(
                8, hidden, p=LSNNParameters(method=method, alpha=torch.as_tensor(alpha))
            )
        else:
            self.hidden = LIFRecurrent(
                8, hidden, p=LIFParameters(method=method, alpha=torch.as_tensor(alpha))
            )
        self.readout_weights = torch.nn.Linear(hidden, 2)
        self.readout = LI()

    def forward(self, observation: torch.Tensor):
        scaled = self.scale * observation
        currents = torch.cat((scaled.relu(), (-scaled).relu()), dim=-1)  # (batch, 8)
        spikes, _ = self.hidden(self.encoder(currents))
        voltages, _ = self.readout(self.readout_weights(spikes))
        return voltages.max(0).values, spikes


class ANNPolicy(torch.nn.Module):
    """A non-spiking baseline: ``Linear(4, hidden) -> ReLU -> Linear(hidden, 2)``."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
        )

    def forward(self, observation: torch.Tensor):
        return self.net(observation), None


def build_policy(args: argparse.Namespace) -> torch.nn.Module:
    if args.policy == "ann":
        return ANNPolicy(args.hidden)
    return SpikingPolicy(
        args.seq_length,
        args.hidden,
        scale=args.scale,
        adaptive=args.policy == "lsnn",
        method=args.method,
        alpha=args.alpha,
    )


def discounted_returns(rewards: Sequence[float], gamma: float) -> List[float]:
    """``G_t = r_t + gamma * G_{t+1}`` for every step of one episode."""
    returns, running = [], 0.0
    for reward in reversed(rewards):
        running = reward + gamma * running
        returns.append(running)
    return returns[::-1]


def run_episodes(policy, environments, seeds, device, generator, max_steps):
    """Plays one episode in each environment at once (the policy sees the observations
    of the environments still running as one batch).

    Returns:
        log-probabilities of the actions taken (a list per episode) and the rewards.
    """
    observations = [
        env.reset(seed=int(seed))[0] for env, seed in zip(environments, seeds)
    ]
    running = list(range(len(environments)))
    log_probs: List[List[torch.Tensor]] = [[] for _ in environments]
    rewards: List[List[float]] = [[] for _ in environments]
    for _ in range(max_steps):
        if not running:
            break
        batch = torch.as_tensor(
            np.stack([observations[i] for i in running]), device=device
        )
        logits, _ = policy(batch)
        log_p = torch.log_softmax(logits, dim=-1)
        actions = torch.multinomial(log_p.detach().exp().cpu(), 1, generator=generator)[
            :, 0
        ]
        still_running = []
        for row, index in enumerate(running):
            action = int(actions[row])
            log_probs[index].append(log_p[row, action])
            observation, reward, terminated, truncated, _ = environments[index].step(
                action
            )
            observations[index] = observation
            rewards[index].append(float(reward))
            if not (terminated or truncated):
                still_running.append(index)
        running = still_running
    return log_probs, rewards


def reinforce_loss(log_probs, rewards, gamma: float) -> torch.Tensor:
    """REINFORCE with returns normalised over all steps of the batch (a baseline)."""
    returns = torch.tensor(
        [g for episode in rewards for g in discounted_returns(episode, gamma)]
    )
    returns = (
        (returns - returns.mean()) / (returns.std() + 1e-8)
        if returns.numel() > 1
        else returns * 0
    )
    taken = torch.stack([lp for episode in log_probs for lp in episode])
    return -(taken * returns.to(taken.device)).sum() / len(log_probs)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = harness.task_parser(
        "norse.task.cartpole", "CartPole-v1 with a spiking policy trained by REINFORCE."
    )
    add = functools.partial(harness.add_option, parser)

    add("--policy", choices=POLICIES, default="snn", help="snn (LIF), lsnn or ann")
    add("--updates", type=int, default=40, help="policy updates")
    add("--episodes_per_update", type=int, default=8)
    add("--learning_rate", type=float, default=0.005)
    add("--gamma", type=float, default=0.99, help="discount factor")
    add("--hidden", type=int, default=64, help="hidden neurons")
    add("--seq_length", type=int, default=16, help="SNN steps per observation")
    add("--scale", type=float, default=50.0, help="observation to encoder current")
    add("--method", default="super", help="surrogate gradient")
    add("--alpha", type=float, default=100.0, help="surrogate gradient sharpness")
    add("--max_steps", type=int, default=500, help="steps per episode at most")
    add("--environment", default="CartPole-v1")
    harness.add_run_options(parser, output="runs/cartpole")
    args = parser.parse_args(argv)
    harness.require_positive(
        parser,
        args,
        "updates",
        "episodes_per_update",
        "hidden",
        "seq_length",
        "max_steps",
    )
    harness.require_positive_finite(parser, args, "learning_rate", "scale", "alpha")
    harness.require_range(parser, args, "gamma", 0, 1, open_low=True)
    harness.require_method(parser, args)
    harness.check_run_options(parser, args)
    return args


def update_policy(
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    environments: Sequence[Any],
    update: int,
    args: argparse.Namespace,
    device: torch.device,
) -> Dict[str, float]:
    """Update ``update`` (0-based): one episode in each environment, then one REINFORCE
    step; returns its metrics row. The episodes are seeded from ``(seed, update)``, so
    a resumed run draws the same episodes without replaying the earlier ones."""
    started = time.perf_counter()
    seeds = np.random.SeedSequence([args.seed, update]).generate_state(
        args.episodes_per_update
    )
    generator = torch.Generator().manual_seed(int(seeds[0]))
    policy.train()
    log_probs, rewards = run_episodes(
        policy, environments, seeds, device, generator, args.max_steps
    )
    loss = reinforce_loss(log_probs, rewards, args.gamma)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    returns = [sum(episode) for episode in rewards]
    return {
        "update": update + 1,
        "episodes": update * args.episodes_per_update + len(returns),
        "mean_return": float(np.mean(returns)),
        "min_return": float(np.min(returns)),
        "max_return": float(np.max(returns)),
        "loss": loss.item(),
        "seconds": time.perf_counter() - started,
    }


def train(
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    environments: Sequence[Any],
    args: argparse.Namespace,
    device: torch.device,
) -> List[Dict[str, float]]:
    """Runs the updates of ``--updates`` (from the checkpoint in ``--output`` with
    ``--resume``), writing the metrics and a checkpoint after each; returns the metrics
    rows of all updates."""
    files = harness.RunFiles(args.output)
    checkpoint = files.start(args.resume)
    history: List[Dict[str, float]] = []
    first = 0
    if checkpoint is not None:
        policy.load_state_dict(checkpoint["policy"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        history = list(checkpoint["history"])
        first = checkpoint["update"] + 1
    bar = tqdm(
        range(first, args.updates),
        initial=first,
        total=args.updates,
        desc="updates",
        disable=args.no_progress,
    )
    for update in bar:
        row = update_policy(policy, optimizer, environments, update, args, device)
        history.append(row)
        files.log(row)
        files.save(
            {
                "update": update,
                "policy": policy.state_dict(),
                "optimizer": optimizer.state_dict(),
                "history": history,
                "args": vars(args) | {"output": str(args.output)},
            }
        )
        bar.set_postfix(mean_return=f"{row['mean_return']:.1f}")
    return history


def plot_run(
    policy: torch.nn.Module,
    history: List[Dict[str, float]],
    environment: Any,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """``returns.png`` and, for a spiking policy, ``raster.png`` (its hidden spikes for
    the first observation of ``environment``)."""
    plot_returns(
        history,
        args.output / "returns.png",
        title=f"{args.environment}, {args.policy} policy",
    )
    if args.policy != "ann":
        observation = environment.reset(seed=args.seed)[0]
        with torch.no_grad():
            _, spikes = policy(torch.as_tensor(observation, device=device)[None])
        harness.plot_raster(
            spikes[:, 0].cpu(),
            args.output / "raster.png",
            title="hidden spikes for one observation",
        )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Trains the policy; returns the summary (also in ``summary.json``)."""
    import gymnasium

    args = parse_args(argv)
    started = time.perf_counter()
    harness.set_threads(args.threads)
    harness.seed_everything(args.seed, args.deterministic)
    device = harness.select_device(args.device)
    policy = build_policy(args).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)
    environments = [
        gymnasium.make(args.environment) for _ in range(args.episodes_per_update)
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    history = train(policy, optimizer, environments, args, device)
    if not args.no_plots and history:
        plot_run(policy, history, environments[0], args, device)
    # The rise of the return: mean over the first and over the last fifth of the updates.
    fifth = max(1, len(history) // 5)
    mean_return = lambda rows: float(np.mean([r["mean_return"] for r in rows]))  # noqa: E731
    summary = {
        "policy": args.policy,
        "updates": len(history),
        "episodes": history[-1]["episodes"],
        "first_fifth_mean_return": mean_return(history[:fifth]),
        "last_fifth_mean_return": mean_return(history[-fifth:]),
        "best_update_mean_return": max(r["mean_return"] for r in history),
    }
    return harness.save_summary(
        summary, args.output, "norse.task.cartpole", argv, started
    )


def plot_returns(history: List[Dict[str, float]], path: Path, title: str = "") -> Path:
    """Mean (line) and range (band) of the returns per update."""
    plt = harness.pyplot()

    episodes = [row["episodes"] for row in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.fill_between(
        episodes,
        [r["min_return"] for r in history],
        [r["max_return"] for r in history],
        alpha=0.3,
        label="min..max",
    )
    ax.plot(episodes, [r["mean_return"] for r in history], marker="o", label="mean")
    ax.set_xlabel("episodes")
    ax.set_ylabel("return (steps balanced)")
    ax.legend()
    if title:
        ax.set_title(title)
    return harness.save_figure(fig, path)


if __name__ == "__main__":
    main()

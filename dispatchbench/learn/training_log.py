"""What training records and shows: the paper's Fig. 5 quantities and a progress bar.

Fig. 5 tracks the reward at 10 fixed random states (drawn once, with a fixed seed, so every run
and every seed is measured on the same states) and the total Q-network / critic loss per step.
Both go to CSV files in the run's folder, with wall time and steps/s, so a report can plot them
without the training code; the 10 states are saved as a state file next to them.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from dispatchbench.model.problem import Problem, State
from dispatchbench.model.state_file import states_to_frame

LOSS_FILE = "loss.csv"
REWARDS_FILE = "rewards.csv"
MONITOR_FILE = "monitor_states.csv"


class TrainingLog:
    """Appends ``loss.csv`` every step and ``rewards.csv`` every ``every`` steps; drives a tqdm bar."""

    def __init__(
        self,
        out_dir: Path,
        *,
        problem: Problem,
        monitor: Sequence[State],
        total_steps: int,
        every: int = 100,
        resume: bool = False,
        progress: bool = True,
        start_step: int = 0,
        elapsed_s: float = 0.0,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.every = max(1, every)
        self.n_monitor = len(monitor)
        states_to_frame(list(monitor), problem).to_csv(self.out_dir / MONITOR_FILE, index=False)
        mode = "a" if resume and (self.out_dir / LOSS_FILE).exists() else "w"
        if mode == "a":  # rows beyond the checkpoint's step were never saved with the model
            _truncate(self.out_dir / LOSS_FILE, start_step)
            _truncate(self.out_dir / REWARDS_FILE, start_step)
        self._loss_file = open(self.out_dir / LOSS_FILE, mode, newline="")
        self._reward_file = open(self.out_dir / REWARDS_FILE, mode, newline="")
        self._loss = csv.writer(self._loss_file)
        self._reward = csv.writer(self._reward_file)
        if mode == "w":
            self._loss.writerow(["step", "loss"])
            self._reward.writerow(
                ["step", "wall_s", "steps_per_s", "mean_reward", *[f"reward_{i}" for i in range(self.n_monitor)]]
            )
        self.start = time.perf_counter() - elapsed_s
        self._rate_t, self._rate_step = time.perf_counter(), start_step
        self.last_loss = float("nan")
        self.last_reward = float("nan")
        self.bar = tqdm(
            total=total_steps, initial=start_step, disable=not progress, unit="step", dynamic_ncols=True, desc="train"
        )

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.start

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def loss(self, step: int, value: float) -> None:
        self.last_loss = float(value)
        self._loss.writerow([step, f"{value:.8g}"])
        self.bar.update(1)

    def rewards(self, step: int, values: Sequence[float]) -> None:
        now = time.perf_counter()
        rate = (step - self._rate_step) / max(now - self._rate_t, 1e-9)
        self._rate_t, self._rate_step = now, step
        self.last_reward = float(sum(values) / max(len(values), 1))
        self._reward.writerow(
            [step, f"{self.wall_s:.3f}", f"{rate:.2f}", f"{self.last_reward:.8g}", *[f"{v:.8g}" for v in values]]
        )
        self._reward_file.flush()
        self._loss_file.flush()
        self.bar.set_postfix(reward=f"{self.last_reward:.4f}", loss=f"{self.last_loss:.3g}")

    def close(self) -> None:
        self.bar.close()
        self._loss_file.close()
        self._reward_file.close()


def _truncate(path: Path, step: int) -> None:
    """Keep the header and the rows up to ``step`` (inclusive) of a log being resumed."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(keep)

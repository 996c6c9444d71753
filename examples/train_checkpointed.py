"""A preemptible training-like job: deterministic SGD fit of a small linear model.

It resumes from the newest valid checkpoint, saves every ``--save-every`` steps (and when
the checkpoint interval says so), and on the preemption signal saves at once and exits with
the requeue code. The result file is byte-for-byte the same however often the job was
interrupted, because the whole state (weights, step and the sampling RNG) is checkpointed.

    HPCBRIDGE_CHECKPOINT_DIR=ckpt python examples/train_checkpointed.py result.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import Checkpointer

FEATURES = 4
SAMPLES = 256
BATCH = 8
LEARNING_RATE = 0.05


def make_data() -> list[tuple[list[float], float]]:
    """A fixed synthetic data set: y = w.x + b + noise, from its own seeded RNG."""
    rng = random.Random(1)
    true_w = [rng.uniform(-2, 2) for _ in range(FEATURES)]
    true_b = rng.uniform(-1, 1)
    data = []
    for _ in range(SAMPLES):
        x = [rng.gauss(0, 1) for _ in range(FEATURES)]
        y = sum(w * xi for w, xi in zip(true_w, x, strict=True)) + true_b + rng.gauss(0, 0.1)
        data.append((x, y))
    return data


def fresh_state() -> dict[str, Any]:
    rng = random.Random(2)  # samples the minibatches; its state is part of the checkpoint
    return {"step": 0, "w": [0.0] * FEATURES, "b": 0.0, "rng": _rng_to_json(rng)}


def _rng_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from_json(raw: list[Any]) -> random.Random:
    rng = random.Random()
    rng.setstate((raw[0], tuple(raw[1]), raw[2]))
    return rng


def sgd_step(state: dict[str, Any], rng: random.Random, data: list[Any]) -> None:
    w: list[float] = state["w"]
    grad_w = [0.0] * FEATURES
    grad_b = 0.0
    for _ in range(BATCH):
        x, y = data[rng.randrange(SAMPLES)]
        err = sum(wi * xi for wi, xi in zip(w, x, strict=True)) + state["b"] - y
        for i in range(FEATURES):
            grad_w[i] += err * x[i] / BATCH
        grad_b += err / BATCH
    state["w"] = [wi - LEARNING_RATE * g for wi, g in zip(w, grad_w, strict=True)]
    state["b"] -= LEARNING_RATE * grad_b


def loss(state: dict[str, Any], data: list[Any]) -> float:
    total = 0.0
    for x, y in data:
        err = sum(wi * xi for wi, xi in zip(state["w"], x, strict=True)) + state["b"] - y
        total += err * err
    return total / len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deterministic SGD with checkpoints.")
    parser.add_argument("result", nargs="?", default="result.json", type=Path)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--step-sleep", type=float, default=0.0, help="simulate slower steps")
    args = parser.parse_args(argv)

    ckpt = Checkpointer(handle_preemption=True)
    data = make_data()
    found = ckpt.restore()
    state = found.read_json() if found is not None else fresh_state()
    rng = _rng_from_json(state["rng"])
    print(f"start at step {state['step']}", flush=True)

    while state["step"] < args.steps:
        sgd_step(state, rng, data)
        state["step"] += 1
        if args.step_sleep:
            time.sleep(args.step_sleep)
        if state["step"] % args.save_every == 0 or ckpt.should_save():
            state["rng"] = _rng_to_json(rng)
            ckpt.save_json(state["step"], state)
            print(f"saved step {state['step']}", flush=True)
        if ckpt.preempted:
            print(f"preempted at step {state['step']}", flush=True)
            ckpt.exit_for_requeue()

    result = {"steps": state["step"], "w": state["w"], "b": state["b"], "loss": loss(state, data)}
    # Write-then-rename: a reader never sees half a result.
    partial = args.result.with_name(args.result.name + ".partial")
    partial.write_text(json.dumps(result, sort_keys=True, indent=1) + "\n")
    os.replace(partial, args.result)
    print(f"done: loss {result['loss']:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

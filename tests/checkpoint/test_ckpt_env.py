from __future__ import annotations

import signal
from pathlib import Path

import pytest

from hpcbridge.checkpoint import (
    REQUEUE_EXIT_CODE,
    CheckpointConfig,
    CheckpointConfigError,
    requeue_exit_code,
)


def test_defaults_without_environment() -> None:
    config = CheckpointConfig.from_env({})
    assert config == CheckpointConfig(directory=Path("checkpoints"))
    assert config.keep == 3
    assert config.interval == "auto"
    assert config.signal is signal.SIGTERM
    assert config.requeue_exit_code == REQUEUE_EXIT_CODE == 75


def test_every_variable_is_read() -> None:
    config = CheckpointConfig.from_env(
        {
            "HPCBRIDGE_JOB_ID": "j-7",
            "HPCBRIDGE_ATTEMPT": "3",
            "HPCBRIDGE_CHECKPOINT_DIR": "/shared/j-7",
            "HPCBRIDGE_CHECKPOINT_KEEP": "5",
            "HPCBRIDGE_CHECKPOINT_INTERVAL_S": "120.5",
            "HPCBRIDGE_MTBF_S": "86400",
            "HPCBRIDGE_CHECKPOINT_SIGNAL": "SIGUSR1",
            "HPCBRIDGE_STATUS_DIR": "/status/j-7",
            "HPCBRIDGE_REQUEUE_EXIT_CODE": "99",
        }
    )
    assert config == CheckpointConfig(
        directory=Path("/shared/j-7"),
        job_id="j-7",
        attempt=3,
        keep=5,
        interval=120.5,
        mtbf_s=86400.0,
        signal=signal.SIGUSR1,
        status_dir=Path("/status/j-7"),
        requeue_exit_code=99,
    )


def test_arguments_override_environment() -> None:
    env = {
        "HPCBRIDGE_JOB_ID": "env",
        "HPCBRIDGE_ATTEMPT": "2",
        "HPCBRIDGE_CHECKPOINT_DIR": "env-dir",
        "HPCBRIDGE_CHECKPOINT_KEEP": "9",
        "HPCBRIDGE_CHECKPOINT_INTERVAL_S": "auto",
        "HPCBRIDGE_MTBF_S": "10",
        "HPCBRIDGE_CHECKPOINT_SIGNAL": "SIGUSR2",
        "HPCBRIDGE_STATUS_DIR": "env-status",
        "HPCBRIDGE_REQUEUE_EXIT_CODE": "80",
    }
    config = CheckpointConfig.from_env(
        env,
        directory="arg-dir",
        job_id="arg",
        attempt=4,
        keep=1,
        interval=30,
        mtbf_s=20,
        signal="usr1",
        status_dir="arg-status",
        requeue_exit_code=70,
    )
    assert config == CheckpointConfig(
        directory=Path("arg-dir"),
        job_id="arg",
        attempt=4,
        keep=1,
        interval=30.0,
        mtbf_s=20.0,
        signal=signal.SIGUSR1,
        status_dir=Path("arg-status"),
        requeue_exit_code=70,
    )


def test_blank_values_count_as_unset() -> None:
    config = CheckpointConfig.from_env({"HPCBRIDGE_CHECKPOINT_KEEP": " ", "HPCBRIDGE_ATTEMPT": ""})
    assert config.keep == 3
    assert config.attempt is None


@pytest.mark.parametrize("raw", ["SIGUSR1", "USR1", "usr1", "sigusr1", str(int(signal.SIGUSR1))])
def test_signal_spellings(raw: str) -> None:
    config = CheckpointConfig.from_env({"HPCBRIDGE_CHECKPOINT_SIGNAL": raw})
    assert config.signal is signal.SIGUSR1


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HPCBRIDGE_ATTEMPT", "0"),
        ("HPCBRIDGE_ATTEMPT", "one"),
        ("HPCBRIDGE_CHECKPOINT_KEEP", "0"),
        ("HPCBRIDGE_CHECKPOINT_INTERVAL_S", "-5"),
        ("HPCBRIDGE_CHECKPOINT_INTERVAL_S", "soon"),
        ("HPCBRIDGE_CHECKPOINT_INTERVAL_S", "nan"),
        ("HPCBRIDGE_MTBF_S", "0"),
        ("HPCBRIDGE_MTBF_S", "inf"),
        ("HPCBRIDGE_CHECKPOINT_SIGNAL", "SIGNOPE"),
        ("HPCBRIDGE_REQUEUE_EXIT_CODE", "0"),
        ("HPCBRIDGE_REQUEUE_EXIT_CODE", "256"),
    ],
)
def test_invalid_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(CheckpointConfigError, match=name):
        CheckpointConfig.from_env({name: raw})


def test_requeue_exit_code() -> None:
    assert requeue_exit_code({}) == 75
    assert requeue_exit_code({"HPCBRIDGE_REQUEUE_EXIT_CODE": "42"}) == 42

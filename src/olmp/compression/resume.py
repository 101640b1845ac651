"""What a resume continues with, and what it may not change: the run's own config (or
another differing only in :data:`~olmp.compression.config.RESUMABLE_BUDGETS`), task and
reference weights."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from olmp.compression.config import RESUMABLE_BUDGETS, CompressConfig, flag
from olmp.compression.run_folder import DamagedRunFile, RunFolder
from olmp.errors import OlmpError


def recorded_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run state record of the run in ``run_dir`` (its config, task, metadata, ...),
    from the last intact round when ``state.json`` is damaged."""
    folder = RunFolder(run_dir)
    try:
        return folder.read_state()
    except DamagedRunFile as damaged:
        return folder.last_intact_state(damaged)[0]


def recorded_config(run_dir: str | os.PathLike[str]) -> CompressConfig:
    """The config the run in ``run_dir`` records, which a resume continues with unless it
    is given another."""
    return CompressConfig.from_dict(recorded_run(run_dir)["config"])


def refuse_other_settings(run_dir: Path, recorded: CompressConfig, given: dict[str, Any]) -> None:
    """Refuse config fields ``given`` for a resume of the run in ``run_dir`` that differ
    from its ``recorded`` config, the budgets aside (named as typed: the options)."""
    differ = sorted(
        (k, v) for k, v in given.items() if k not in RESUMABLE_BUDGETS and getattr(recorded, k) != v
    )
    if differ:
        listed = ", ".join(f"{flag(k)} ({getattr(recorded, k)!r}, here {v!r})" for k, v in differ)
        raise OlmpError(
            f"cannot resume {run_dir}: its config differs from this one in {listed}; resume "
            "with the same options (a resume may change only the budgets) or start anew "
            "with --force (force=True)"
        )


def check_resumable(
    record: dict[str, Any],
    config: CompressConfig,
    task: dict[str, Any],
    reference_sha256: str,
    run_dir: Path,
    metadata: dict[str, Any],
) -> None:
    """Refuse to resume the run state ``record`` with another config, another task (its
    :meth:`~olmp.task.Task.describe`: split seed, fairness constraints, ...) or from other
    reference weights than it started from (named from ``metadata["weights"]``)."""
    # The weights first, then the task: a difference further down can follow from them
    # (another model's training recipe sets the shifts and batch size, fairness constraints
    # the steps per round), and naming that alone would point at an option never given.
    recorded = record.get("reference_sha256")
    if recorded is not None and recorded != reference_sha256:
        started = record.get("metadata", {}).get("weights", "other weights")
        given = metadata.get("weights", "the model given now")
        raise OlmpError(
            f"cannot resume {run_dir}: it started from {started}, and the weights given now "
            f"({given}) are different; resume with the weights it started from, or start "
            "anew with --force (force=True)"
        )
    started_as, given_as = record.get("metadata", {}).get("model"), metadata.get("model")
    if None not in (started_as, given_as) and started_as != given_as:  # its record's model
        raise OlmpError(
            f"cannot resume {run_dir}: it records model {started_as!r}, and the model named "
            f"now is {given_as!r}; resume with the same model name, or start anew with --force "
            "(force=True)"
        )
    # Runs from before the task was recorded are not checked for it.
    saved_task = record.get("task", task)
    if saved_task != task:
        diff = sorted(
            k for k in saved_task.keys() | task.keys() if saved_task.get(k) != task.get(k)
        )
        then = ", ".join(f"{k} {saved_task.get(k)!r}" for k in diff)
        now = ", ".join(f"{k} {task.get(k)!r}" for k in diff)
        raise OlmpError(
            f"cannot resume {run_dir}: it ran with {then}, and this run has {now}; resume "
            "with the same options or start anew with --force (force=True)"
        )
    state = record["state"]
    used = {"max_rounds": state.get("round", 0), "max_evaluations": state.get("evaluations", 0)}
    for key, done in used.items():
        given = getattr(config, key)
        if not state.get("finished") and given is not None and given < done:
            # It would end at once, its record naming a budget below what it spent.
            raise OlmpError(
                f"cannot resume {run_dir} with {flag(key)} {given}: it has done {done} already; "
                f"give at least {done} ({done} ends it now)"
            )
    given = {f.name: getattr(config, f.name) for f in fields(CompressConfig)}
    refuse_other_settings(run_dir, CompressConfig.from_dict(record["config"]), given)

"""What a resume continues with, and what it may not change: the run's own config (or
another differing only in :data:`~olmp.compression.config.RESUMABLE_BUDGETS`), task and
reference weights."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from olmp.compression.config import RESUMABLE_BUDGETS, CompressConfig, flag
from olmp.compression.run_folder import DamagedRunFile, RunFolder
from olmp.errors import OlmpError


def recorded_config(run_dir: str | os.PathLike[str]) -> CompressConfig:
    """The config the run in ``run_dir`` records, which a resume continues with unless it
    is given another (from the last intact round when ``state.json`` is damaged)."""
    folder = RunFolder(run_dir)
    try:
        record = folder.read_state()
    except DamagedRunFile as damaged:
        record = folder.last_intact_state(damaged)[0]
    return CompressConfig.from_dict(record["config"])


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
            "anew with --force"
        )
    started_as, given_as = record.get("metadata", {}).get("model"), metadata.get("model")
    if None not in (started_as, given_as) and started_as != given_as:  # its record's model
        raise OlmpError(
            f"cannot resume {run_dir}: it records model {started_as!r}, and the model named "
            f"now is {given_as!r}; resume with the same model name, or start anew with --force"
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
            "with the same options or start anew with --force"
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
    budgets = {k: getattr(config, k) for k in RESUMABLE_BUDGETS}
    saved = replace(CompressConfig.from_dict(record["config"]), **budgets)
    if saved != config:
        diff = ", ".join(
            f"{flag(k)} ({v!r}, here {getattr(config, k)!r})"  # as typed: the options
            for k, v in sorted(asdict(saved).items())
            if getattr(config, k) != v
        )
        raise OlmpError(
            f"cannot resume {run_dir}: its config differs from this one in {diff}; resume "
            "with the same options (a resume may change only the budgets) or start anew "
            "with --force"
        )

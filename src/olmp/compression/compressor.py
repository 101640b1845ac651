"""One OLMP run: :class:`Compressor` carries a model through the rounds (search, adjust,
select), backtracking, the final phase and the result record; see :mod:`olmp.compression`
for the algorithm."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from olmp.compression.config import CompressConfig, RunState
from olmp.compression.record import result_record
from olmp.compression.resume import check_resumable
from olmp.compression.run_folder import DamagedRunFile, RunFolder
from olmp.compression.search import search_round
from olmp.compression.steps import (
    OutOfTime,
    adjust,
    check_val_size,
    keep_fractions,
    masked_constraint_report,
    masked_score,
    network_size,
    reproduced,
    smallest_passing,
    split_snapshot,
)
from olmp.files import content_hash
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import (
    Masks,
    apply_masks,
    compression_ratios,
    magnitude_masks,
    remove_masks,
    with_masks,
)
from olmp.pruning.thresholds import SMALLEST_THRESHOLD, recorded_thresholds
from olmp.task import SPLITS, Task, meets_constraints, reported_outcomes
from olmp.training import model_device


class Compressor:
    """One OLMP run on ``model`` for ``task``, recorded in ``run_dir`` (optional).

    Every round's network (dense weights and masks) is kept as a snapshot — in memory, and
    with a ``run_dir`` also in ``rounds/round-NNN.safetensors`` — so the final phase can
    walk back from the smallest networks, and a resumed run has the same history.
    Snapshot ``0`` is the reference.

    The loop's fixed rules are class attributes, not options: each was measured on the
    noise of a 1,000-image val split (BENCHMARKS.md and git history) and a user has no
    better value to give. A benchmark that ablates one subclasses :class:`Compressor`.
    """

    #: After this many rounds in a row that fail the val rule, go back to the best network
    #: and halve the search tolerance, so the search takes smaller steps from the last
    #: network that held its accuracy (``None``: never). On LeNet-300-100 /
    #: fashion-mnist it lifted the median of two seeds from 9.3× to 15.1× in a third of
    #: the time; on mnist-5k the median stayed.
    backtrack_after: ClassVar[int | None] = 3
    #: How often the run may go back to the same best network before rounds that fail
    #: again end it (``None``: no limit). Each halving makes the search stricter than tune
    #: accuracy can measure; unlimited returns spent the last seven of 35 LeNet-5 rounds
    #: growing the network back.
    backtracks_per_best: ClassVar[int | None] = 1
    #: After a backtrack, a round may shrink the network by at most this factor (the step
    #: is shortened along the line to the search's choice; ``None``: no limit). For a
    #: reference that is lucky on val, where large steps all fail and smaller ones hold:
    #: on two such LeNet-5 / fashion-mnist seeds it gave the final phase 2–8× networks to
    #: choose from where the run otherwise kept nothing.
    backtrack_shrink: ClassVar[float | None] = 2.0
    #: The final phase fine-tunes at most this many rounds smaller than the best ...
    final_candidates: ClassVar[int] = 4
    #: ... whose val accuracy came within this of the threshold (fine-tuning recovers
    #: about that much).
    final_margin: ClassVar[float] = 0.01
    #: Steps between Dynamic Network Surgery's mask updates (``adjust="dns"``).
    mask_update_every: ClassVar[int] = 10

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        config: CompressConfig,
        *,
        run_dir: Path | None = None,
        metadata: dict[str, Any] | None = None,
        on_round: Callable[[dict[str, Any], RunState], None] | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.folder = RunFolder(run_dir) if run_dir is not None else None
        self.metadata = metadata or {}
        self.on_round = on_round
        self.layers = find_prunable_layers(model, config.include, config.exclude)
        self.masks: Masks = {}
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.final: dict[str, torch.Tensor] | None = None  # the fine-tuned result, if any
        self.state = RunState()
        self.reference: dict[str, float] = {}
        self._deadline: float | None = None  # perf_counter() time when time_limit is spent
        # Identifies the weights the run starts from, so a resume cannot switch them.
        self.reference_sha256 = content_hash(model.state_dict(), {})

    # -- persistence ---------------------------------------------------------------------

    def _state_record(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "metadata": self.metadata,
            "reference": self.reference,
            "reference_sha256": self.reference_sha256,
            "state": asdict(self.state),
            "task": self.task.describe(),
        }

    def _save_snapshot(self, key: int | str, tensors: dict[str, torch.Tensor]) -> None:
        if self.folder is not None:
            self.folder.save_snapshot(key, tensors, self._state_record())

    def _save_state(self) -> None:
        if self.folder is not None:
            self.folder.save_state(self._state_record())

    def load_state(self) -> None:
        """Continue the run saved in ``run_dir`` (:func:`compress` ``resume``); a finished
        one given a larger budget goes on from its last round, its final phase undone.

        When ``state.json`` or a round snapshot is damaged (a crash mid-write, a truncated
        copy), the run resumes from the last round whose snapshots are all intact, warning
        with the damaged file's name (kept as ``NAME.damaged``); later rounds run again.
        With no intact round the error names the file and nothing changes.
        """
        assert self.folder is not None
        try:
            record = self.folder.read_state()
            self._resume_from(record)
            self.final = self.folder.read_final() if self.state.finished else None
        except DamagedRunFile as damaged:
            record, problems = self.folder.last_intact_state(damaged)
            self._resume_from(record)  # checked first: a refused resume moves no file
            self.folder.set_aside(problems, self.state.round)
        self._restore(self.snapshots[self.state.round])
        if self.state.finished and self._stop_reason() is None:  # given a larger budget
            self.state, self.final = self.folder.state_before_final(self.state), None
        elif self.state.finished:  # nothing left to do: it stands as run, budgets and all
            self.config = CompressConfig.from_dict(record["config"])

    def _resume_from(self, record: dict[str, Any]) -> None:
        """Take the reference scores, run state and round networks of a checked record."""
        assert self.folder is not None
        check_resumable(
            record,
            self.config,
            self.task.describe(),
            self.reference_sha256,
            self.folder.path,
            self.metadata,
        )
        self.metadata = {**record.get("metadata", {}), **self.metadata}  # names it started with
        try:
            self.reference = record["reference"]
            self.state = RunState(**record["state"])
        except (KeyError, TypeError) as exc:
            raise DamagedRunFile(f"{self.folder.path}'s run state lacks or garbles {exc}") from None
        self.snapshots = self.folder.read_rounds(self.state.round)

    # -- small helpers -------------------------------------------------------------------

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of the current dense weights and masks."""
        tensors = {f"model/{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        return with_masks(tensors, {k: v.clone() for k, v in self.masks.items()})

    def _restore(self, tensors: dict[str, torch.Tensor]) -> None:
        device = model_device(self.model)
        weights, masks = split_snapshot(tensors)
        self.model.load_state_dict(weights)
        self.masks = {k: v.to(device) for k, v in masks.items()}

    def _retrain(self, steps: int, lr: float, salt: int, thresholds: torch.Tensor | None) -> None:
        """Retrain the current network in place (DNS with ``thresholds``, else frozen)."""
        self.masks = adjust(
            self.model,
            self.layers,
            self.masks,
            self.task,
            steps=steps,
            lr=lr,
            seed=self.config.seed * 100_003 + salt,
            thresholds=thresholds,
            update_every=self.mask_update_every,
            out_of_time=self._out_of_time if self._deadline is not None else None,
        )

    def _start_clock(self) -> float:
        """Start timing a stretch of the run; sets the deadline that ``time_limit`` leaves."""
        now = time.perf_counter()
        if self.config.time_limit is not None:
            self._deadline = now + self.config.time_limit - self.state.elapsed_s
        return now

    def _out_of_time(self) -> bool:
        return self._deadline is not None and time.perf_counter() >= self._deadline

    def _score(self, split: str) -> float:
        """The task's score of the current ``W ⊙ M`` on ``split``."""
        return masked_score(self.task, self.model, self.layers, self.masks, split)

    def _constraints(self, split: str) -> dict[str, float] | None:
        """The task's constraint report of the current ``W ⊙ M`` on ``split`` (``None``:
        the task has no constraints)."""
        return masked_constraint_report(self.task, self.model, self.layers, self.masks, split)

    def _meets_constraints(self, split: str) -> bool:
        return meets_constraints(self._constraints(split))

    def _stop_reason(self) -> str | None:
        """The config field whose rule or budget ends the rounds now (``None``: go on)."""
        cfg, s = self.config, self.state
        retries = self.backtracks_per_best
        ended = {
            "max_rounds": s.round >= cfg.max_rounds,
            "patience": s.stale_rounds >= cfg.patience,
            "backtracks_per_best": self._backtrack_due()
            and retries is not None
            and s.backtracks_to_best >= retries,
            "max_evaluations": cfg.max_evaluations is not None
            and s.evaluations >= cfg.max_evaluations,
            "time_limit": cfg.time_limit is not None and s.elapsed_s >= cfg.time_limit,
        }
        return next((name for name, now in ended.items() if now), None)

    def _reference_meets_constraints(self) -> bool:
        return meets_constraints(self.reference.get("constraints", {}).get("val"))

    def _search_tolerance(self) -> float:
        if self.state.search_tolerance is None:
            return self.config.search_tolerance
        return self.state.search_tolerance

    def _val_threshold(self) -> float:
        return self.reference["val_accuracy"] - self.config.tolerance

    # -- the algorithm -------------------------------------------------------------------

    def _search(self, round_index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """One round's search (:func:`~olmp.compression.search.search_round`)."""
        cfg = self.config
        budget = cfg.evaluations_per_round
        if cfg.max_evaluations is not None:
            budget = min(budget, cfg.max_evaluations - self.state.evaluations)
        thresholds, summary, spent = search_round(
            cfg,
            self.task,
            self.model,
            self.layers,
            self.masks,
            required=self.reference["tune_accuracy"] - self._search_tolerance(),
            budget=budget,
            seed=cfg.seed * 1_000 + round_index,
            # Once the run has backtracked (halving its search tolerance), by at most this.
            shrink_limit=None if self.state.search_tolerance is None else self.backtrack_shrink,
            out_of_time=self._out_of_time,
        )
        self.state.evaluations += spent
        return thresholds, summary

    def _backtrack_due(self) -> bool:
        after = self.backtrack_after
        return after is not None and self.state.failed_rounds >= after

    def _maybe_backtrack(self) -> int | None:
        """After ``backtrack_after`` rounds in a row that failed val, continue from the best
        network with half the search tolerance; returns the round gone back to."""
        if not self._backtrack_due():
            return None
        best_round = self.state.best["round"]
        self._restore(self.snapshots[best_round])
        self.state.search_tolerance = self._search_tolerance() / 2
        self.state.failed_rounds = 0
        self.state.backtracks_to_best += 1
        # Shrinking is measured from here again, or patience would end the run at once.
        self.state.smallest_size = self.state.best["size"]
        self.state.stale_rounds = 0
        return best_round

    def _consider_best(
        self, val_acc: float, round_index: int, size: float, constraints_met: bool = True
    ) -> bool:
        """Make round ``round_index``'s network (``size`` kept) the best if it is feasible
        on val (accurate enough, and meeting the task's constraints) and smaller, or the
        first to meet the constraints. The dense reference is the best to start from even
        when it breaks them (marked ``constraints_met: False``): it is what a run that
        finds nothing better returns."""
        best = self.state.best
        if round_index == 0 and not constraints_met and not best:
            best.update(size=size, val_accuracy=val_acc, round=0, constraints_met=False)
            return False
        if val_acc + 1e-12 < self._val_threshold() or not constraints_met:
            return False
        if best.get("constraints_met", True) and size >= best.get("size", 1.0 + 1e-9):
            return False
        self.state.best = {"size": size, "val_accuracy": val_acc, "round": round_index}
        return True

    def _start(self) -> None:
        started = self._start_clock()
        self.reference = {
            "tune_accuracy": self.task.score(self.model, "tune"),
            "val_accuracy": self.task.score(self.model, "val"),
            # Reported beside the result's test accuracy; no decision reads it.
            "test_accuracy": self.task.score(self.model, "test"),
        }
        constraints = {split: self.task.constraint_report(self.model, split) for split in SPLITS}
        if constraints["val"] is not None:  # test is reported beside the result's only
            self.reference["constraints"] = constraints
        examples = self.task.split_size("val")
        if examples is not None:
            check_val_size(self.reference["val_accuracy"], examples, self.config.tolerance)
        # Round 0 is the network as given: its exact zeros (a pruned network compressed
        # again) count as pruned from the start, so no round can make it denser.
        self.masks = magnitude_masks(
            self.layers,
            torch.full((len(self.layers),), SMALLEST_THRESHOLD),
            self.config.prune_biases,
        )
        self.snapshots[0] = self._snapshot()
        self._consider_best(
            self.reference["val_accuracy"],
            0,
            network_size(self.layers, self.masks),
            self._reference_meets_constraints(),
        )
        self.state.elapsed_s += time.perf_counter() - started  # scoring the reference counts
        self._save_snapshot(0, self.snapshots[0])
        self._save_state()

    def _round(self) -> None:
        cfg = self.config
        started = self._start_clock()
        r = self.state.round + 1
        backtracked_to = self._maybe_backtrack()
        thresholds, summary = self._search(r)
        self.masks = magnitude_masks(self.layers, thresholds, cfg.prune_biases)
        self._retrain(
            cfg.adjust_steps, cfg.adjust_lr, r, thresholds if cfg.adjust == "dns" else None
        )
        val_acc = self._score("val")
        constraints = self._constraints("val")
        met = meets_constraints(constraints)
        size = network_size(self.layers, self.masks)
        improved = self._consider_best(val_acc, r, size, met)
        if improved:  # a new best earns its own returns
            self.state.backtracks_to_best = 0
        feasible = val_acc + 1e-12 >= self._val_threshold() and met
        self.state.failed_rounds = 0 if feasible else self.state.failed_rounds + 1
        shrunk = size < 0.99 * self.state.smallest_size
        self.state.stale_rounds = 0 if shrunk else self.state.stale_rounds + 1
        self.state.smallest_size = min(self.state.smallest_size, size)
        self.state.round = r
        self.state.elapsed_s += time.perf_counter() - started
        ratio, ratio_b = compression_ratios(self.layers, self.masks)
        entry = {
            "round": r,
            "size": size,
            "compression_ratio": ratio,
            "compression_ratio_with_biases": ratio_b,
            "val_accuracy": val_acc,
            "keep_fractions": keep_fractions(self.layers, self.masks).tolist(),
            "thresholds": recorded_thresholds(thresholds),
            "evaluations": self.state.evaluations,
            "elapsed_s": round(self.state.elapsed_s, 3),
            "new_best": improved,
            "search_tolerance": self._search_tolerance(),
            "backtracked_to": backtracked_to,
            **summary,
        }
        if constraints is not None:
            entry["val_constraints"] = constraints
        self.state.history.append(entry)
        self.snapshots[r] = self._snapshot()
        self._save_snapshot(r, self.snapshots[r])
        self._save_state()
        if self.on_round is not None:
            self.on_round(entry, self.state)

    def run(self) -> dict[str, Any]:
        """Run (or finish) the compression; returns the result record."""
        if not self.snapshots:
            self._start()
        while not self.state.finished and self._stop_reason() is None:
            self._round()
        if not self.state.finished:
            self.state.stop_reason = self._stop_reason()
            self._finish()
        return self.result()

    def _finish(self) -> None:
        """Fine-tune candidates with frozen masks and keep the smallest that is feasible on
        val; otherwise the loop's best stands.

        Candidates are the rounds smaller than the best so far whose val accuracy is within
        ``final_margin`` of the threshold (fine-tuning recovers about that much); at most
        ``final_candidates`` are fine-tuned: the smallest first, then a bisection over the
        rest by size (:func:`smallest_passing`). When none passes, the best itself is fine-tuned and
        kept if that raises its val accuracy.
        """
        cfg = self.config
        started = self._start_clock()
        threshold = self._val_threshold()
        best_size = self.state.best["size"]
        near = [
            h
            for h in self.state.history
            if h["size"] < best_size and h["val_accuracy"] >= threshold - self.final_margin
        ]
        candidates = [h["round"] for h in sorted(near, key=lambda h: h["size"])]

        def fine_tune(r: int) -> float:
            self._restore(self.snapshots[r])
            if cfg.final_steps > 0:
                salt = 1_000_000 + len(self.state.final_attempts)
                self._retrain(cfg.final_steps, cfg.final_lr, salt, None)
            return self._score("val")

        def keep(r: int, val_acc: float) -> None:
            size = network_size(self.layers, self.masks)
            self.state.best = {
                "size": size,
                "val_accuracy": val_acc,
                "round": r,
                "fine_tuned": True,
            }
            self.final = self._snapshot()
            self._save_snapshot("final", self.final)

        def passes(i: int) -> bool:
            if self._out_of_time():
                raise OutOfTime
            r = candidates[i]
            val_acc = fine_tune(r)
            feasible = val_acc + 1e-12 >= threshold and self._meets_constraints("val")
            self.state.final_attempts.append(
                {"round": r, "val_accuracy": val_acc, "accepted": feasible}
            )
            if feasible:  # a later pass is smaller (see smallest_passing) and replaces it
                keep(r, val_acc)
            return feasible

        try:
            found = smallest_passing(len(candidates), self.final_candidates, passes)
        except OutOfTime:  # what passed so far is kept
            found = next((a["round"] for a in self.state.final_attempts if a["accepted"]), None)
        best_round = self.state.best["round"]
        if found is None and best_round > 0 and not self._out_of_time():  # round 0: dense
            val_acc = fine_tune(best_round)
            better = val_acc > self.state.best["val_accuracy"] and self._meets_constraints("val")
            self.state.final_attempts.append(
                {"round": best_round, "val_accuracy": val_acc, "accepted": better}
            )
            if better:
                keep(best_round, val_acc)
        self.state.elapsed_s += time.perf_counter() - started
        self.state.finished = True
        self._save_state()

    def reference_outcomes(self) -> dict[str, np.ndarray] | None:
        """The reference's per-example outcomes on the reported splits, from snapshot 0
        (the reference, unmasked as when the run scored it). ``None`` when the task gives
        none, or, with a warning, when they no longer reproduce the scores recorded at the
        start (other data on a resume, or an evaluation that is not deterministic): no
        change is reported against a reference that the run did not score."""
        self._restore(self.snapshots[0])
        return reproduced(reported_outcomes(self.task, self.model), self.reference)

    def _best_tensors(self) -> dict[str, torch.Tensor]:
        if self.state.best.get("fine_tuned") and self.final is not None:
            return self.final
        return self.snapshots[self.state.best["round"]]

    def pruned_model(self) -> nn.Module:
        """The best network with ``W ⊙ M`` baked into its parameters (masks removed)."""
        self._restore(self._best_tensors())
        apply_masks(self.layers, self.masks, straight_through=False)
        remove_masks(self.layers, bake=True)
        return self.model

    def result(self) -> dict[str, Any]:
        """The result record (``result.json``); reads the test split, to report only."""
        return result_record(self)

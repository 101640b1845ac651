"""OLMP, the compressor: layer-wise magnitude pruning with thresholds found by
derivative-free search, inside an iterative prune-then-adjust loop.

Modules, in the order a run uses them: :mod:`~olmp.compression.config` (what decides a
run), :mod:`~olmp.compression.search` (one round's search problem),
:mod:`~olmp.compression.steps` (scoring, retraining and the other pieces of a round),
:mod:`~olmp.compression.compressor` (the loop, backtracking, the final phase, the record),
:mod:`~olmp.compression.run_folder` (files on disk), :mod:`~olmp.compression.resume` (what
a resume continues with) and :mod:`~olmp.compression.api` (:func:`compress`).

One round:

1. **Search.** A solver proposes per-layer thresholds (through a parametrisation, see
   :mod:`olmp.pruning.thresholds`). A candidate's fitness is the fraction of weights it
   keeps when its tune-split accuracy is at least ``reference tune accuracy -
   search_tolerance``, and ``1 + shortfall`` otherwise (worse than any feasible candidate,
   but still pointing towards feasibility); the requirement is capped at the starting
   network's own tune accuracy, so a round never grows the network.
   On a GPU a population is evaluated in one batched pass; a candidate stops being
   evaluated once it has made too many errors to be feasible, or once the samples seen
   make its feasibility clear by ``racing_z`` standard errors (its accuracy is then
   estimated from the samples it saw).
2. **Adjust.** Retrain through ``W ⊙ M``: with the masks frozen (``adjust="finetune"``,
   the default), or as Dynamic Network Surgery (``adjust="dns"``: straight-through
   gradients to every weight, masks re-derived with hysteresis — prune at
   ``|w| <= 0.9 t``, splice back at ``|w| > 1.1 t`` — every few steps).
3. **Select.** Measure val accuracy of ``W ⊙ M``; the smallest network whose val accuracy
   is at least ``reference val accuracy - tolerance`` is the best so far (keep-best).

After three rounds in a row that fail the val rule, the run goes back to the best network
and searches with half the tolerance. Rounds stop when the network has not shrunk by 1 % for
``patience`` rounds, when rounds fail again after a return to the same best network, or
when a budget (rounds, candidate evaluations, wall time) is spent; the result's
``stop_reason`` names which. Then the final phase fine-tunes, with frozen masks, up to four
rounds smaller than the best whose val accuracy came close to the threshold (the smallest
first, then a bisection by size), and keeps the smallest that holds val; when none does, the
best itself is fine-tuned and kept if that raises its val accuracy. The test split is read
once, for the report. These rules are :class:`Compressor`'s class attributes, each with its
measured reason; they are not options.

Every round's end state is saved in the run folder, so an interrupted run resumes from the
last finished round and, being seeded per round, ends where an uninterrupted run would.
"""

from olmp.compression.api import compress, load_for_compression, splits_task
from olmp.compression.compressor import Compressor
from olmp.compression.config import (
    ADJUST_MODES,
    CompressConfig,
    RunState,
)
from olmp.compression.resume import recorded_config
from olmp.compression.run_folder import (
    PLOT_PNG,
    PRUNED_CHECKPOINT,
    RESULT_JSON,
    STATE_JSON,
    DamagedRunFile,
    load_run,
    prepare_run_dir,
    read_result,
    snapshot_path,
)
from olmp.compression.steps import (
    OutOfTime,
    adjust,
    masked_score,
    search_fitness,
    shortened_step,
    smallest_passing,
    split_snapshot,
)

__all__ = [
    "ADJUST_MODES",
    "PLOT_PNG",
    "PRUNED_CHECKPOINT",
    "RESULT_JSON",
    "STATE_JSON",
    "CompressConfig",
    "Compressor",
    "DamagedRunFile",
    "OutOfTime",
    "RunState",
    "adjust",
    "compress",
    "load_for_compression",
    "load_run",
    "masked_score",
    "prepare_run_dir",
    "read_result",
    "recorded_config",
    "search_fitness",
    "shortened_step",
    "smallest_passing",
    "snapshot_path",
    "split_snapshot",
    "splits_task",
]

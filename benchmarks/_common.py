"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from olmp.environment import describe_environment

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, str]:
    """Cores, CPU model, torch version, date and commit of this run (see :func:`_commit`)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _commit()
    environment = describe_environment()  # what olmp's own records say, in this format
    return {
        "cores": str(os.cpu_count()),
        "torch_threads": str(environment["torch_threads"]),
        "cpu": cpu,
        "torch": environment["torch_version"],
        "python": sys.version.split()[0],
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }


def _commit() -> str:
    """The checked-out commit, with ``-dirty`` when the code differs from it: a changed or
    new file under ``src/`` or ``benchmarks/`` (result files and notes aside), so that a
    record says when it ran uncommitted code."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=RESULTS.parent.parent
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git(
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            "src",
            "benchmarks",
            ":!benchmarks/results",
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def spread(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of ``values`` formatted with ``fmt``."""
    med = statistics.median(values)
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


MNIST5K_MODEL, MNIST5K_DATASET = "lenet-300-100", "mnist-5k"

#: The benchmark settings, "model/dataset".
SETTINGS = ("lenet-300-100/mnist-5k", "lenet-300-100/fashion-mnist", "lenet-5/fashion-mnist")

#: The fields of a result record (OLMP's or a baseline's) that the benchmark tables show.
HEADLINE_KEYS = (
    "compression_ratio",
    "compression_ratio_with_biases",
    "reference_val_accuracy",
    "val_accuracy",
    "reference_test_accuracy",
    "test_accuracy",
    "wall_time_s",
    "evaluations",
)


def reference_checkpoint(model: str, dataset: str, seed: int, workdir: str | Path) -> Path:
    """``workdir/ref-<model>-<dataset>-<seed>.safetensors``, trained with the default recipe
    (initialisation and split seed = ``seed``) unless it is already there.

    A reference kept from a run with another torch thread count is refused: it is not the
    network this run would train (see :mod:`olmp.environment`), so every result built on
    it would differ from a fresh run's.
    """
    from olmp.files import load_checkpoint_metadata
    from olmp.reference import train_reference
    from olmp.training import default_recipe, with_overrides

    weights = Path(workdir) / f"ref-{model}-{dataset}-{seed}.safetensors"
    if not weights.exists():
        recipe = with_overrides(default_recipe(model, dataset), seed=seed)
        train_reference(model, dataset, weights, config=recipe, split_seed=seed)
        return weights
    made_with = load_checkpoint_metadata(weights).get("torch_threads")
    threads = describe_environment()["torch_threads"]
    if made_with is not None and made_with != threads:
        raise SystemExit(
            f"{weights} was trained with torch_threads={made_with} and this run has "
            f"torch_threads={threads}: set OMP_NUM_THREADS={made_with} to reuse it, or give "
            f"another --workdir to train a reference with this thread count"
        )
    return weights


def olmp_run(
    model: str, dataset: str, seed: int, workdir: str | Path, overrides: dict | None = None
) -> tuple[Path, dict, dict]:
    """``model`` on ``dataset``, trained and compressed with the defaults (plus
    ``overrides`` of `CompressConfig` fields) for ``seed`` (initialisation, split, solver).

    Work is kept in ``workdir``: the reference checkpoint and the run folder are reused
    when they exist (an interrupted run resumes), so scripts that need the same runs share
    them. Returns ``(run folder, result record, reference metadata)``.
    """
    from dataclasses import asdict, replace

    from olmp.compression import STATE_JSON, CompressConfig, compress, load_for_compression
    from olmp.files import load_checkpoint_metadata

    # Settings equal to the defaults do not make a different run (nor a different folder).
    defaults = CompressConfig()
    overrides = {k: v for k, v in (overrides or {}).items() if getattr(defaults, k) != v}
    weights = reference_checkpoint(model, dataset, seed, workdir)
    reference = load_checkpoint_metadata(weights)
    # What `olmp compress --weights REF --seed S` runs: the CLI's own loader gives the model,
    # splits, recipe and the record's names; the recipe and the train split fill in the
    # training options (the config the run records).
    net, splits, recipe, names = load_for_compression(weights)
    config = replace(
        CompressConfig(seed=seed), **{k: v for k, v in overrides.items() if k != "seed"}
    ).resolved(recipe, train_size=len(splits.train))
    tag = "".join(f"_{k}-{override_text(v)}" for k, v in sorted(overrides.items()))
    tag = tag or "_defaults"
    run_dir = Path(workdir) / f"run-{model}-{dataset}{tag}_seed-{seed}"
    resume = (run_dir / STATE_JSON).is_file()
    if resume:
        saved = CompressConfig.from_dict(json.loads((run_dir / STATE_JSON).read_text())["config"])
        if saved != config:
            changed = sorted(k for k, v in asdict(saved).items() if getattr(config, k) != v)
            raise SystemExit(
                f"{run_dir} holds a run with other settings ({', '.join(changed)}), made "
                "before the defaults changed; delete it or use another --workdir"
            )
    # What compress(weights) would load again: the run is the same.
    _, result = compress(
        net, splits, config, recipe=recipe, metadata=names,
        run_dir=run_dir, resume=resume, force=not resume,
    )  # fmt: skip
    return run_dir, result, reference


def baseline_config(model: str, dataset: str, *, lr: float | None = None, **fields):
    """The :class:`olmp.baselines.BaselineConfig` a baseline gets beside OLMP on ``model`` /
    ``dataset``: the reference recipe's batch size and shifts and OLMP's retraining learning
    rate (``lr``: another one), plus ``fields``; ``compress.py`` and ``gmp_draws.py`` share it
    so that a draw of ``gmp_draws.py`` is the run ``compress.py`` makes."""
    from olmp.baselines import BaselineConfig
    from olmp.compression import CompressConfig
    from olmp.training import default_recipe

    recipe = default_recipe(model, dataset)
    return BaselineConfig(
        augment_shift=recipe.max_shift,
        batch_size=recipe.batch_size,
        lr=CompressConfig.adjust_lr if lr is None else lr,
        **fields,
    )


def mnist5k_run(
    seed: int, workdir: str | Path, overrides: dict | None = None
) -> tuple[Path, dict, dict]:
    """:func:`olmp_run` for the headline setting, LeNet-300-100 on mnist-5k."""
    return olmp_run(MNIST5K_MODEL, MNIST5K_DATASET, seed, workdir, overrides)


def override_text(value: object) -> str:
    """A setting as it appears in file names: ``{"r": 0.8, "epoch": 2}`` -> ``r=0.8,epoch=2``."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def solver_spec(text: str) -> tuple[str, dict]:
    """``NAME`` or ``NAME:OPTION=VALUE[,OPTION=VALUE...]`` (e.g. ``ncs:r=0.8,epoch=2``) ->
    (solver name, its options), checked against the solver: how a benchmark runs a solver
    with other settings beside its defaults (``olmp compress --solver-option`` for users)."""
    from olmp.solvers import check_solver_options, parse_solver_options

    name, _, options_text = text.partition(":")
    options = parse_solver_options(options_text.split(",")) if options_text else {}
    check_solver_options(name, options)
    return name, options


def solver_specs(parser, specs: list[str]) -> dict[str, tuple[str, dict]]:
    """Each ``--solvers`` spec -> (solver name, options), checked once; a bad spec ends the
    script through ``parser.error``, naming it."""
    from olmp.errors import OlmpError

    parsed = {}
    for spec in specs:
        try:
            parsed[spec] = solver_spec(spec)
        except OlmpError as error:
            parser.error(f"--solvers {spec}: {error}")
    return parsed


def add_overrides(parser, help: str) -> None:
    """``--set FIELD=VALUE`` (repeatable): `CompressConfig` fields of the OLMP runs, as
    ``args.set``, a list of ``(field, value)``."""
    parser.add_argument(
        "--set", type=parse_override, action="append", default=[], metavar="FIELD=VALUE", help=help
    )


def parse_override(text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value converted to the field's default's type)."""
    import argparse
    from dataclasses import fields

    from olmp.compression import CompressConfig

    name, sep, value = text.partition("=")
    defaults = {f.name: f.default for f in fields(CompressConfig)}
    optional = {f.name for f in fields(CompressConfig) if "None" in str(f.type)}
    if not sep or name not in defaults:
        raise argparse.ArgumentTypeError(
            f"--set wants FIELD=VALUE with FIELD one of {', '.join(defaults)}; got {text!r}"
        )
    if name == "solver_options":
        raise argparse.ArgumentTypeError(
            "solver options go with the solver: --solvers NAME:OPTION=VALUE[,...]"
        )
    if value.lower() == "none":
        if name not in optional:
            raise argparse.ArgumentTypeError(f"--set {name}=None: {name} cannot be None")
        return name, None
    if defaults[name] is not None:
        kind = type(defaults[name])
    else:  # an optional number: an integer when it reads as one
        kind = int if value.lstrip("-").isdigit() else float
    return name, (value.lower() in ("1", "true", "yes") if kind is bool else kind(value))

"""``olmp experience build``: learn expsracos's directional model from recorded studies."""

from __future__ import annotations

import argparse
import json

from olmp.cli.common import seed
from olmp.cli.parser import COMMAND_HELP, Formatter

#: Fewer trials that improved on their search's best than this and the directional model,
#: which learns what such an improvement looks like, has next to nothing to learn from.
FEW_IMPROVEMENTS = 10


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _build(args: argparse.Namespace) -> int:
    from olmp.experience import build_experience

    model = build_experience(args.studies, args.out, force=args.force, seed=args.seed)
    training = model.info["training"]
    summary = {
        "out": args.out,
        "studies": len(args.studies),
        "datasets": model.datasets,
        "networks": model.networks,
        "untaught": training["untaught"],
        "examples": training["examples"],
        "improvements": training["positives"],
        "train_accuracy": training["accuracy"],
        "seconds": training["seconds"],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"learned from {_count(len(args.studies), 'study', 'studies')} "
        f"({_count(training['examples'], 'example')}, "
        f"{_count(training['positives'], 'improvement')}) on {', '.join(model.datasets)}: "
        f"{_count(model.networks, 'network')}, one per dataset that taught a direction, in "
        f"{training['seconds']:.1f} s; saved {args.out}"
    )
    if training["untaught"]:
        print(f"no trial improved on its best in the studies of: {', '.join(training['untaught'])}")
    # The networks' own examples: a dataset that taught none adds none.
    taught = sum(network["positives"] for network in training.get("networks", []))
    if taught < FEW_IMPROVEMENTS:
        print(
            f"only {_count(taught, 'improvement')} to learn a direction from: "
            "the model knows little; longer or more studies teach it more"
        )
    print(f"use it: olmp tune --solver expsracos --experience {args.out} ...")
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    p = commands.add_parser(
        "experience",
        help=COMMAND_HELP["experience"],
        description="Experienced optimisation (Hu, Yu & Zhou, IJCAI 2018): learn a "
        "directional model from studies recorded by earlier searches (olmp tune --out DIR "
        "records one in DIR; any solver's but mads, all on the same space), which predicts whether "
        "a candidate improves on the best point so far. olmp tune --solver expsracos "
        "--experience MODEL then samples several candidates per step and evaluates the "
        "one the model rates best. The file records the datasets it learned from; using "
        "it on one of them is refused unless --force.",
        formatter_class=Formatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="train the directional model from recorded studies",
        description="Train the directional model from the studies in STUDY... "
        "(folders of olmp tune --out, or study files) and save it to --out "
        "(safetensors weights with a JSON record; never pickle).",
        epilog="example:\n  olmp experience build --from runs/wine runs/iris runs/digits "
        "--out ensemble.exp\n  olmp tune --task ensemble --dataset breast-cancer --solver "
        "expsracos --experience ensemble.exp --budget 30 --out runs/bc",
        formatter_class=Formatter,
    )
    build.add_argument(
        "--from",
        dest="studies",
        nargs="+",
        required=True,
        metavar="STUDY",
        help="olmp tune --out folders, or study files; a study's dataset is its tune.json's, "
        "else a file's name (iris.json: iris) or its folder's (iris/study.json: iris)",
    )
    build.add_argument("--out", required=True, help="the experience file to write")
    build.add_argument("--force", action="store_true", help="overwrite an existing --out")
    build.add_argument("--seed", type=seed, default=0, help="training seed (default 0)")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
    build.set_defaults(run=_build)

"""olmp attack: the oracle, the five attacks, runs, resume, comparisons and bad input.

A LeNet-300-100 trained for a few epochs on scikit-learn's 8x8 digits keeps every attack
to a fraction of a second per pair."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from olmp.attack import METHODS, Oracle, attack_image, compare, margin, run_attack, summarize
from olmp.attack import methods as methods_module
from olmp.attack.blocks import block_order, grid_blocks, local_variation
from olmp.attack.folder import SETTINGS
from olmp.attack.methods import CHECKS, method_options
from olmp.attack.square import p_schedule
from olmp.cli import main
from olmp.dfo.solvers import SOLVERS
from olmp.errors import OlmpError
from olmp.files import command_record_in, load_checkpoint, save_checkpoint, write_json_atomic


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A digits LeNet-300-100 checkpoint (about 90 % test accuracy)."""
    from olmp.reference import train_reference
    from olmp.training import TrainConfig

    path = tmp_path_factory.mktemp("ref") / "digits.safetensors"
    torch.manual_seed(0)
    train_reference("lenet-300-100", "digits", path, config=TrainConfig(epochs=5, batch_size=32))
    return path


@pytest.fixture(scope="module")
def model_and_image(reference):
    from olmp.data.registry import get_spec
    from olmp.reference import load_weights

    model, splits, _ = load_weights(reference, device="cpu")
    spec = get_spec("digits")
    x = (splits.test.x[:40] * spec.std + spec.mean).clamp(0, 1).numpy()
    y = splits.test.y[:40].numpy()
    with torch.no_grad():
        right = model((torch.from_numpy(x) - spec.mean) / spec.std).argmax(1).numpy() == y
    i = int(np.flatnonzero(right)[0])
    return model, x[i], int(y[i]), spec


class Counting(nn.Module):
    """A model that counts its forward passes."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def test_margin_is_positive_exactly_when_the_target_wins():
    p = np.array([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    m = margin(p, 1)
    assert m[0] < 0 < m[1]
    assert m[1] == pytest.approx(np.log(0.5 / 0.3))


def test_oracle_counts_every_image_scores_a_batch_in_one_pass_and_stops_at_budget(
    model_and_image,
):
    model, x0, label, spec = model_and_image
    counting = Counting(model)
    oracle = Oracle(counting, spec.mean, spec.std, target=(label + 1) % 10, budget=120)
    batch = np.repeat(x0[None], 50, axis=0)
    assert len(oracle.loss(batch)) == 50
    assert (oracle.queries, counting.calls) == (50, 1)
    oracle.loss(batch)
    assert len(oracle.loss(batch)) == 20  # cut to the budget left
    assert oracle.queries == 120 and oracle.done
    assert len(oracle.loss(batch)) == 0 and oracle.queries == 120


def test_oracle_records_the_first_winning_image(model_and_image):
    model, x0, label, spec = model_and_image
    oracle = Oracle(model, spec.mean, spec.std, target=label, budget=10)  # wins at once
    oracle.loss(np.stack([x0, x0]))
    assert oracle.success_at == 2 and oracle.done  # the whole batch counts
    assert np.array_equal(oracle.best_x, x0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_attack_stays_in_the_ball_and_box_and_wins_some_pairs(reference, method):
    result = run_attack(
        reference, method=method, eps=0.3, budget=400, images=4, seed=1, device="cpu"
    )
    assert result["pairs"] == 4 and len(result["queries"]) == 4
    for record in result["records"]:
        assert record["linf"] <= 0.3  # reported to 1e-6, not float32's 0.30000001
        assert 1 <= record["queries"] <= 400
        assert record["success"] == (record["predicted"] == record["target"])
        assert record["success"] == (record["margin"] > 0)
    assert result["successes"] >= 1, result["records"]


def test_attacks_are_deterministic_with_a_seed(model_and_image):
    model, x0, label, spec = model_and_image
    kwargs = dict(method="square", eps=0.2, budget=150, mean=spec.mean, std=spec.std, seed=3)
    a = attack_image(model, x0, label, (label + 3) % 10, **kwargs)
    b = attack_image(model, x0, label, (label + 3) % 10, **kwargs)
    assert a["queries"] == b["queries"] and np.array_equal(a["image"], b["image"])


def test_a_returned_image_outside_the_ball_is_refused(model_and_image, monkeypatch):
    model, x0, label, _ = model_and_image

    def cheat(oracle, x, eps, rng):
        oracle.loss(x[None])
        return np.clip(x + 2 * eps, 0, 1)

    monkeypatch.setitem(methods_module.METHODS, "square", cheat)
    with pytest.raises(AssertionError, match="ε-ball"):
        attack_image(model, x0, label, (label + 1) % 10, method="square", eps=0.1, budget=5)


def test_success_is_judged_by_a_fresh_forward_pass(model_and_image, monkeypatch):
    model, x0, label, spec = model_and_image

    def liar(oracle, x, eps, rng):
        oracle.loss(x[None])
        oracle.success_at = 1  # claims a win the image does not give
        oracle.best_x = x
        return x

    monkeypatch.setitem(methods_module.METHODS, "square", liar)
    record = attack_image(
        model, x0, label, (label + 1) % 10, method="square", eps=0.1, budget=5,
        mean=spec.mean, std=spec.std,
    )  # fmt: skip
    assert not record["success"]


def test_block_attack_takes_any_engine_solver_and_both_orders(model_and_image):
    model, x0, label, spec = model_and_image
    common = dict(eps=0.3, budget=120, mean=spec.mean, std=spec.std, seed=0)
    for solver, order in (("cmaes", "variance"), ("random", "random"), ("cobyqa", "random")):
        record = attack_image(
            model, x0, label, (label + 1) % 10, method="bobyqa", solver=solver,
            options={"order": order}, **common,
        )  # fmt: skip
        assert 1 <= record["queries"] <= 120 and record["linf"] <= 0.3 + 1e-6


def test_block_grid_covers_the_image_and_variance_order_prefers_edges():
    blocks = grid_blocks(28, 28, 4)
    cover = np.zeros((28, 28), int)
    for r, c in blocks:
        cover[r, c] += 1
    assert len(blocks) == 16 and (cover == 1).all()
    assert len(grid_blocks(8, 8, 16)) == 64  # never finer than a pixel
    # A vertical edge between grid columns 1 and 2 of a 4 x 4 grid: only the blocks beside it
    # have neighbours that differ (the study's measure, at the grid's resolution).
    x = np.zeros((1, 8, 8))
    x[0, :, :4] = 1.0
    variation = local_variation(x, 4).reshape(4, 4)
    assert (variation[:, [0, 3]] == 0).all() and (variation[:, [1, 2]] > 0.4).all()
    assert not local_variation(np.full((2, 8, 8), 0.3), 4).any()
    assert local_variation(np.zeros((3, 8, 8)), 8).shape == (3 * 64,)
    for rng in map(np.random.default_rng, range(20)):
        visit = block_order(x, 4, "variance", rng)
        assert sorted(visit) == list(range(16))
        assert sum(i % 4 in (1, 2) for i in visit[:8]) >= 7  # edge blocks first
    assert sorted(block_order(x, 4, "random", np.random.default_rng(0))) == list(range(16))


def test_square_schedule_halves_p_on_the_papers_steps():
    assert p_schedule(0.8, 0, 10_000) == 0.8
    assert p_schedule(0.8, 11, 10_000) == 0.4
    assert p_schedule(0.8, 150, 1000) == pytest.approx(0.8 / 2**5)  # 1,500 of 10,000


def test_summary_rates_and_bootstrap_intervals():
    records = [{"success": s, "queries": q} for s, q in [(1, 10), (1, 200), (0, 300), (1, 50)]]
    s = summarize(records, 300)
    assert s["success_rate"] == 0.75 and s["median_queries"] == 50
    assert s["success_at"]["100"]["success_rate"] == 0.5
    low, high = s["success_at"]["300"]["interval"]
    assert low <= 0.75 <= high and low < high
    intervals = [s["median_queries_interval"]] + [r["interval"] for r in s["success_at"].values()]
    assert all(round(v, 4) == v for pair in intervals for v in pair)


def run_cli(*args):
    return main(["attack", *map(str, args)])


def test_cli_check_json_resume_force_and_compare(reference, tmp_path, capsys):
    out = tmp_path / "a"
    base = ["--weights", reference, "--eps", "0.3", "--budget", "200", "--images", "5"]
    base += ["--targets", "random", "--seed", "0", "--device", "cpu"]
    assert run_cli(*base, "--method", "square", "--out", out, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["success_rate"] <= 1 and len(result["queries"]) == 5
    for name in ("config.json", "records.jsonl", "result.json", "curve.csv", "curve.png"):
        assert (out / name).is_file()
    assert run_cli(*base, "--method", "square", "--out", out) == 2  # never overwritten
    assert "--resume" in capsys.readouterr().err
    assert run_cli(*base, "--method", "square", "--out", out, "--resume", "--json") == 0
    assert json.loads(capsys.readouterr().out)["queries"] == result["queries"]
    assert run_cli(*base, "--method", "zo-fw", "--out", out, "--resume") == 2  # other settings
    assert "other settings (method ('square', here 'zo-fw'))" in capsys.readouterr().err
    other = tmp_path / "b"
    assert run_cli(*base, "--method", "bobyqa", "--out", other, "--json") == 0
    capsys.readouterr()
    assert run_cli("--compare", out, other, "--out", tmp_path / "cmp", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    rows = summary["runs"]
    assert [r["method"] for r in rows] == ["square", "bobyqa/cobyqa"]
    # The same network: every pair is shared, and on them each run's own success rate.
    assert summary["shared_pairs"] == 5
    assert [r["shared_success_rate"] for r in rows] == [r["success_rate"] for r in rows]
    assert (tmp_path / "cmp" / "compare.png").is_file()


class _Predicts(nn.Module):
    """A classifier that answers ``predicted[i]`` for the image whose pixels all equal i."""

    def __init__(self, predicted: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("predicted", torch.as_tensor(predicted))
        self.unused = nn.Parameter(torch.zeros(1))  # choose_pairs reads the device from one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x.flatten(1)[:, 0].round().long()
        return nn.functional.one_hot(self.predicted[index], 10).float()


def test_random_targets_do_not_depend_on_which_images_a_network_misclassifies():
    from olmp.attack.run import choose_pairs

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    images = np.broadcast_to(np.arange(300.0)[:, None, None, None], (300, 1, 2, 2)).copy()
    chosen = {}
    for name, wrong in (("dense", [3, 50, 120]), ("pruned", [7, 51, 200, 201])):
        predicted = labels.copy()
        predicted[wrong] = (labels[wrong] + 1) % 10
        pairs, skipped = choose_pairs(_Predicts(predicted), images, labels, 0.0, 1.0, 100,
                                      "random", 5, 10)  # fmt: skip
        assert not {i for i, _ in pairs} & set(wrong) and len(pairs) == 100
        assert skipped <= len(wrong)
        assert all(target != labels[i] for i, target in pairs)
        chosen[name] = dict(pairs)
    shared = chosen["dense"].keys() & chosen["pruned"].keys()
    assert len(shared) >= 90
    assert all(chosen["dense"][i] == chosen["pruned"][i] for i in shared)
    # Uniform over the other classes: each offset from the label 1..9 about 300 / 9 times.
    pairs, _ = choose_pairs(_Predicts(labels), images, labels, 0.0, 1.0, 300, "random", 5, 10)
    offsets = np.bincount([(t - labels[i]) % 10 for i, t in pairs], minlength=10)
    assert offsets[0] == 0 and offsets[1:].min() >= 15, offsets


def test_an_interrupted_run_resumes_to_the_same_records(reference, tmp_path):
    settings = dict(method="genattack", eps=0.3, budget=150, images=4, seed=2, device="cpu")
    whole = run_attack(reference, **settings)

    def stop(done, total, record):
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        run_attack(reference, out=out, on_pair=stop, **settings)
    assert len((out / "records.jsonl").read_text().splitlines()) == 2
    with open(out / "records.jsonl", "a") as f:
        f.write('{"index": 3, "tar')  # a line cut by the interruption
    killed_write = out / ".result.json.a1b2c3_d.tmp"  # what a SIGKILL mid-write leaves
    killed_write.write_text("{")
    resumed = run_attack(reference, out=out, resume=True, **settings)
    assert not killed_write.exists()
    key = ["index", "target", "success", "queries"]
    assert [[r[k] for k in key] for r in resumed["records"]] == [
        [r[k] for k in key] for r in whole["records"]
    ]


def test_a_resume_with_more_images_attacks_only_the_new_ones(reference, tmp_path):
    # As olmp tune's --budget: the run's pairs are a prefix of the larger run's.
    settings = dict(method="genattack", eps=0.3, budget=150, seed=2, device="cpu")
    out, attacked = tmp_path / "r", []
    run_attack(reference, out=out, images=2, **settings)
    on_pair = lambda done, total, record: attacked.append(record["index"])  # noqa: E731
    more = run_attack(reference, out=out, images=4, resume=True, on_pair=on_pair, **settings)
    whole = run_attack(reference, images=4, **settings)
    key = ["index", "target", "success", "queries"]
    assert [[r[k] for k in key] for r in more["records"]] == [
        [r[k] for k in key] for r in whole["records"]
    ]
    assert attacked == [r["index"] for r in whole["records"][2:]] and more["images"] == 4
    assert json.loads((out / "config.json").read_text())["images"] == 4
    with pytest.raises(OlmpError, match=r"other settings \(images \(4, here 3\)\)"):
        run_attack(reference, out=out, images=3, resume=True, **settings)
    # The command line's resume takes what is left out from the run, not the defaults
    # (--images 100 would extend it, --method and --eps would be refused).
    before = (out / "records.jsonl").read_bytes()
    assert main(["attack", "--weights", str(reference), "--out", str(out), "--resume"]) == 0
    assert (out / "records.jsonl").read_bytes() == before

    def stop(done, total, record):
        raise KeyboardInterrupt

    # Stopped while extended, its summary of fewer images is gone: not compared as its own.
    with pytest.raises(KeyboardInterrupt):
        run_attack(reference, out=out, images=6, resume=True, on_pair=stop, **settings)
    assert not (out / "result.json").exists() and not (out / "curve.png").exists()
    with pytest.raises(OlmpError, match="unfinished attack run"):
        compare([out, out])


def test_a_run_whose_records_hold_pairs_it_would_not_draw_is_not_resumed(reference, tmp_path):
    # Records written by an olmp that drew random targets otherwise (before 20edb48).
    settings = dict(method="square", eps=0.3, budget=50, images=3, seed=0, device="cpu")
    out = tmp_path / "r"
    run_attack(reference, out=out, targets="random", **settings)
    lines = (out / "records.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["target"] = (first["target"] + 1) % 10
    if first["target"] == first["label"]:
        first["target"] = (first["target"] + 1) % 10
    (out / "records.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    before = {p: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OlmpError, match=rf"image {first['index']} towards class {first['target']}"):
        run_attack(reference, out=out, targets="random", resume=True, **settings)
    assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_options_given_as_a_list_are_named(reference):
    with pytest.raises(OlmpError, match=r"options must be a dict of option names and values"):
        run_attack(reference, method="square", eps=0.1, budget=5, options=["p_init=0.1"])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: [lines[0], "[1, 2, 3]", *lines[2:]], "line 2 is not an attack record"),
        (lambda lines: ["garbage", *lines[1:]], "line 1 is not an attack record"),
        (
            lambda lines: [lines[0].replace('"queries"', '"q"'), *lines[1:]],
            "line 1 is not an attack record",
        ),
        (lambda lines: [lines[0], *lines], "line 2 attacks image .* again"),
        (lambda lines: [lines[0], "", "[]", *lines[1:]], "line 3 is not an attack record"),
    ],
)
def test_a_damaged_records_file_is_named_and_kept(reference, tmp_path, damage, message):
    settings = dict(method="square", eps=0.3, budget=30, images=3, seed=0, device="cpu")
    out = tmp_path / "r"
    run_attack(reference, out=out, **settings)
    lines = (out / "records.jsonl").read_text().splitlines()
    (out / "records.jsonl").write_text("\n".join(damage(lines)) + "\n")
    before = {p: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OlmpError, match=rf"records.jsonl {message}; the file is left as it is"):
        run_attack(reference, out=out, resume=True, **settings)
    assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_blank_lines_in_a_records_file_hold_nothing(reference, tmp_path):
    settings = dict(method="square", eps=0.3, budget=30, images=3, seed=0, device="cpu")
    out = tmp_path / "r"
    whole = run_attack(reference, out=out, **settings)
    lines = (out / "records.jsonl").read_text().splitlines()
    (out / "records.jsonl").write_text("\n".join([lines[0], "", *lines[1:2]]) + "\n\n")
    (out / "result.json").unlink()  # interrupted after two pairs, and edited
    resumed = run_attack(reference, out=out, resume=True, **settings)
    assert [r["queries"] for r in resumed["records"]] == [r["queries"] for r in whole["records"]]


def test_a_resume_tells_the_weights_by_their_content_not_their_path(reference, tmp_path):
    settings = dict(method="square", eps=0.3, budget=30, images=2, seed=0, device="cpu")
    weights, out = tmp_path / "w.safetensors", tmp_path / "r"
    shutil.copy(reference, weights)
    run_attack(weights, out=out, **settings)
    (out / "result.json").unlink()  # as if interrupted
    # The same weights by another name resume ...
    run_attack(tmp_path / "." / "w.safetensors", out=out, resume=True, **settings)
    (out / "result.json").unlink()
    # ... and so do they with a masked negative weight read back as 0.0 instead of -0.0,
    # as from an exported file.
    tensors, metadata = load_checkpoint(weights)
    name = next(k for k, v in tensors.items() if v.is_floating_point() and (v < 0).any())
    tensors[name] = torch.where(tensors[name] < 0, -0.0, tensors[name])  # masked
    save_checkpoint(weights, tensors, metadata)
    run_attack(weights, out=out, force=True, **settings)
    (out / "result.json").unlink()
    tensors[name] = tensors[name] + 0  # -0.0 read back as 0.0
    save_checkpoint(weights, tensors, metadata)
    run_attack(weights, out=out, resume=True, **settings)
    (out / "result.json").unlink()
    # ... other weights at the same path do not (their records would mix with these).
    tensors, metadata = load_checkpoint(weights)
    tensors = {k: v + 0.01 if v.is_floating_point() else v for k, v in tensors.items()}
    save_checkpoint(weights, tensors, metadata)
    with pytest.raises(OlmpError, match=r"was run with other settings \(weights \(their content"):
        run_attack(weights, out=out, resume=True, **settings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--eps", "0"], "--eps must be in (0, 1]"),
        (["--eps", "1.5"], "--eps must be in (0, 1]"),
        (["--budget", "0"], "--budget must be an integer of at least 1"),
        (["--method", "fgsm"], "unknown attack method 'fgsm'"),
        (["--solver", "nope"], "unknown solver 'nope'"),
        (["--targets", "10"], "--targets must be a class in 0..9, got 10"),
        (["--option", "speed=2"], "unknown option 'speed'"),
        (["--option", "order=spiral"], "option order must be one of 'variance', 'random'"),
        (["--method", "square", "--option", "p_init=abc"], "p_init must be a number in (0, 1]"),
        (["--method", "square", "--option", "p_init=-1"], "got -1"),
        (["--method", "square", "--option", "redraw=maybe"], "redraw must be one of True"),
        (["--method", "square", "--option", "redraw=1"], "one of True, False, got 1"),
        (["--method", "zo-fw", "--option", "directions=0"], "directions must be an integer"),
        (["--option", "solver=cmaes"], "the solver is --solver"),
        (["--method", "square", "--option", "p_init"], "an attack option is KEY=VALUE"),
    ],
)
def test_bad_input_is_one_clear_error_exit_2_and_nothing_written(
    reference, tmp_path, capsys, args, message
):
    out = tmp_path / "bad"
    options = {"--method": "bobyqa", "--eps": "0.2", "--budget": "50"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options[flag] = value
    flat = [item for pair in options.items() for item in pair]
    assert run_cli("--weights", reference, *flat, "--images", "2", "--out", out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_images_targets_and_models_are_refused(model_and_image):
    model, x0, label, _ = model_and_image
    kwargs = dict(method="square", eps=0.1, budget=10)
    with pytest.raises(OlmpError, match="true class"):
        attack_image(model, x0, label, label, **kwargs)
    with pytest.raises(OlmpError, match=r"target must be a class in 0\.\.9"):
        attack_image(model, x0, label, 12, **kwargs)
    with pytest.raises(OlmpError, match="pixel range"):
        attack_image(model, x0 * 3 - 1, label, (label + 1) % 10, **kwargs)
    flat = nn.Sequential(model, nn.Flatten(0))  # one vector, not a score per class
    with pytest.raises(OlmpError, match="one score per class"):
        attack_image(flat, x0, label, (label + 1) % 10, **kwargs)


@pytest.fixture(scope="module")
def square_run(reference, tmp_path_factory):
    """A finished square run (a few pairs, small budget), copied by the tests that edit it."""
    out = tmp_path_factory.mktemp("runs") / "square"
    run_attack(reference, method="square", eps=0.3, budget=30, images=3, device="cpu", out=out)
    return out


def test_numpy_numbers_are_taken_and_recorded_as_json(reference, tmp_path):
    out = tmp_path / "np"
    summary = run_attack(
        reference, method="square", eps=np.float32(0.25), budget=np.int64(5), images=1,
        targets=np.int64(3), device="cpu", out=out,
    )  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert (config["eps"], config["budget"], config["targets"]) == (0.25, 5, 3)
    assert summary["pairs"] >= 0


def copy_run(run, folder, **changes):
    """A copy of ``run`` whose config.json and result.json hold ``changes``."""
    shutil.copytree(run, folder)
    for name in ("config.json", "result.json"):
        record = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(record | changes))
    return folder


def test_every_option_of_every_attack_is_declared_and_its_default_allowed():
    for name in METHODS:
        declared = method_options(name)
        assert set(declared) == set(CHECKS[name]), name  # none undeclared, none stale
        for key, option in declared.items():
            option.check(key, option.default)


def test_a_run_records_every_setting_a_folder_is_recognised_by(square_run):
    recorded = set(json.loads((square_run / "config.json").read_text()))
    assert recorded == {*SETTINGS, "weights_sha256"}
    assert command_record_in(square_run) == ("config.json", "olmp attack run")


def test_undefined_medians_and_rates_are_null_not_nan(reference, tmp_path, capsys):
    """JSON has no NaN: a run that wins nothing gives null medians, in every output."""
    base = ["--weights", reference, "--method", "square", "--eps", "0.0001", "--budget", "3"]
    base += ["--images", "2", "--device", "cpu"]
    for name in ("a", "b"):
        assert run_cli(*base, "--out", tmp_path / name, "--json") == 0
        result = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)
        assert result["successes"] == 0 and result["median_queries"] is None
        json.loads((tmp_path / name / "result.json").read_text(), parse_constant=pytest.fail)
    assert run_cli("--compare", tmp_path / "a", tmp_path / "b", "--json") == 0
    summary = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)
    assert summary["runs"][0]["median_queries_interval"] is None
    assert run_cli("--compare", tmp_path / "a", tmp_path / "b") == 0
    assert "│ -" in capsys.readouterr().out  # the table shows an undefined median as -
    assert json.dumps(summarize([], 300), allow_nan=False)  # no pairs at all
    assert summarize([], 300)["success_rate"] is None


def test_a_result_written_with_nan_compares_as_null(square_run, tmp_path, capsys):
    old = copy_run(square_run, tmp_path / "old", median_queries=float("nan"))
    assert "NaN" in (old / "result.json").read_text()
    assert run_cli("--compare", square_run, old, "--json") == 0
    runs = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)["runs"]
    assert runs[1]["median_queries"] is None


def test_compare_reads_success_on_the_pairs_every_run_attacked(square_run, tmp_path, capsys):
    records = json.loads((square_run / "result.json").read_text())["records"]
    assert len(records) == 3
    # A compressed network, say: it skipped the first image and lost the second pair.
    changed = [{**records[1], "success": not records[1]["success"]}, records[2]]
    other = copy_run(square_run, tmp_path / "other", records=changed)
    summary = compare([square_run, other])
    assert summary["shared_pairs"] == 2
    first, second = (r["shared_success_rate"] for r in summary["runs"])
    assert first == pytest.approx((records[1]["success"] + records[2]["success"]) / 2)
    assert second == pytest.approx((changed[0]["success"] + changed[1]["success"]) / 2)
    alone = copy_run(square_run, tmp_path / "alone", records=[])
    assert compare([square_run, alone])["shared_pairs"] == 0
    with pytest.raises(OlmpError, match=r"a list of at least two attack folders .*; got /"):
        compare(str(square_run))  # one path, whose characters are no folders
    assert run_cli("--compare", square_run, alone) == 0
    captured = capsys.readouterr()
    assert "no pair was attacked by every run" in " ".join((captured.out + captured.err).split())


def test_compare_lists_budgets_in_increasing_order(square_run, tmp_path, capsys):
    records = json.loads((square_run / "result.json").read_text())["records"]
    folders = []
    for name in ("a", "b"):
        folder = copy_run(square_run, tmp_path / name, budget=1500)
        write_json_atomic(folder / "result.json", {
            **json.loads((folder / "result.json").read_text()), **summarize(records, 1500)
        })  # fmt: skip
        folders.append(folder)
    assert '"1000"' in (folders[0] / "result.json").read_text()
    summary = compare(folders)
    assert list(summary["runs"][0]["success_at"]) == ["100", "300", "500", "1000", "1500"]
    assert run_cli("--compare", *folders) == 0
    header = capsys.readouterr().out
    assert header.index("≤300") < header.index("≤500") < header.index("≤1000")


def test_compare_names_each_folder_with_its_value_in_order(square_run, tmp_path, capsys):
    other = copy_run(square_run, tmp_path / "other", images=20)
    assert run_cli("--compare", other, square_run) == 2
    assert f"images ({other}: 20, {square_run}: 3)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change", [{"pairs": None}, {"success_rate": "x"}, {"compression_ratio": "x"}]
)
def test_compare_names_a_result_it_cannot_read_and_writes_nothing(square_run, tmp_path, change):
    damaged = copy_run(square_run, tmp_path / "damaged", **change)
    with pytest.raises(
        OlmpError, match=rf"result.json is not a valid attack result: {next(iter(change))} missing"
    ):
        compare([square_run, damaged], tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_compare_labels_each_run_by_its_folder(square_run, tmp_path):
    copy_run(square_run, tmp_path / "exported", compression_ratio=None)  # an older result
    compare([square_run, tmp_path / "exported"], tmp_path / "cmp")
    header = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()[0]
    assert header == f"queries,{square_run}: square 1.0x,{tmp_path / 'exported'}: square"


def test_compare_refuses_a_folder_that_is_no_attack_run(square_run, tmp_path, capsys):
    stranger = tmp_path / "r2"
    stranger.mkdir()
    (stranger / "result.json").write_text('{"compression_ratio": 3.0}')
    assert run_cli("--compare", stranger, square_run) == 2
    assert f"{stranger} is not an attack run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [["--weights", "ref.safetensors"], ["--method", "square"], ["--eps", "0.2"], ["--seed", "0"]],
)
def test_compare_refuses_the_options_of_a_run(square_run, capsys, extra):
    assert run_cli("--compare", square_run, square_run, *extra) == 2
    assert f"{extra[0]} only applies to a run" in capsys.readouterr().err


def test_compare_out_is_refused_when_a_file_a_run_or_an_earlier_comparison(
    square_run, tmp_path, capsys
):
    pair = [square_run, copy_run(square_run, tmp_path / "twin")]
    afile = tmp_path / "file"
    afile.write_text("keep")
    assert run_cli("--compare", *pair, "--out", afile) == 2
    assert "is a file" in capsys.readouterr().err and afile.read_text() == "keep"
    assert run_cli("--compare", *pair, "--out", pair[1]) == 2
    assert "attack run's folder" in capsys.readouterr().err
    assert not (pair[1] / "compare.json").exists()
    cmp = tmp_path / "cmp"
    assert run_cli("--compare", *pair, "--out", cmp) == 0
    written = (cmp / "compare.json").stat().st_mtime_ns
    assert run_cli("--compare", *pair, "--out", cmp) == 2
    assert "already holds compare.json" in capsys.readouterr().err
    assert (cmp / "compare.json").stat().st_mtime_ns == written
    assert run_cli("--compare", *pair, "--out", cmp, "--force") == 0
    # Nor, even with --force, another command's run folder or one of its subfolders.
    run = tmp_path / "compress-run"
    run.mkdir()
    (run / "state.json").write_text('{"config": {}, "state": {}, "reference_sha256": "x"}')
    search = tmp_path / "search"
    search.mkdir()
    (search / "tune.json").write_text('{"format": "t", "space": {}, "solver": "random"}')
    for out, told in (
        (run, "compress run's"),
        (run / "rounds", "compress run's"),
        (search, "tune"),
    ):
        assert run_cli("--compare", *pair, "--out", out, "--force") == 2
        assert f"an olmp {told}" in capsys.readouterr().err
        assert not (out / "compare.json").exists()


def test_force_only_redoes_an_attack_folder(reference, tmp_path, capsys):
    other = tmp_path / "compress-run"
    other.mkdir()
    (other / "result.json").write_text('{"compression_ratio": 3.0}')
    (other / "state.json").write_text("{}")
    args = ["--weights", reference, "--method", "square", "--budget", "5", "--images", "1"]
    assert run_cli(*args, "--out", other, "--force") == 2
    assert f"{other} holds files but is not an attack run" in capsys.readouterr().err
    assert (other / "result.json").read_text() == '{"compression_ratio": 3.0}'
    assert sorted(p.name for p in other.iterdir()) == ["result.json", "state.json"]


def test_an_empty_out_is_refused(reference, tmp_path, monkeypatch, capsys):
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)  # '' is the current folder
    args = ["--weights", reference, "--method", "square", "--budget", "5", "--images", "1"]
    assert run_cli(*args, "--out", "") == 2
    assert "--out must name a folder, got ''" in capsys.readouterr().err
    assert not any(here.iterdir())


def test_resume_and_force_together_are_refused(reference, tmp_path, capsys):
    out = tmp_path / "both"
    args = ["--weights", reference, "--method", "square", "--budget", "5", "--images", "1"]
    with pytest.raises(SystemExit) as exit_:
        run_cli(*args, "--out", out, "--resume", "--force")
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with pytest.raises(OlmpError, match="not both"):
        run_attack(reference, method="square", eps=0.2, budget=5, images=1, out=out,
                   resume=True, force=True)  # fmt: skip
    assert not out.exists()


def test_a_missing_solver_library_is_named_before_anything_is_written(
    reference, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(SOLVERS["bobyqa"], "backend", "olmp_test_no_such_module")
    out = tmp_path / "bq"
    args = ["--weights", reference, "--method", "bobyqa", "--solver", "bobyqa", "--out", out]
    assert run_cli(*args, "--budget", "5", "--images", "1") == 2
    assert "which is not installed" in capsys.readouterr().err
    assert not out.exists()


def test_more_images_than_the_split_has_is_a_warning_naming_how_many(reference):
    with pytest.warns(UserWarning, match=r"has only (\d+) correctly classified") as caught:
        result = run_attack(
            reference, method="square", eps=0.2, budget=1, images=100_000, device="cpu"
        )
    assert f"only {result['pairs']} correctly" in str(caught[0].message)


def test_a_resume_asking_for_other_images_that_are_the_same_ones_is_the_recorded_run(
    reference, tmp_path
):
    # Asked for more than the split holds, a run attacks all it holds: a resume asking for
    # any number from there on is that run (recorded as typed, which --compare reads); one
    # asking for fewer is refused as a smaller run.
    out = tmp_path / "all"
    # Seed 107: the last image of its order is misclassified, so a count that stops at the
    # last image attacked skips one image fewer than a count that walks the whole split.
    attack = {"method": "square", "eps": 0.2, "budget": 1, "device": "cpu", "out": out}
    attack["seed"] = 107
    with pytest.warns(UserWarning, match="correctly classified"):
        first = run_attack(reference, images=100_000, **attack)
    held, records = first["pairs"], (out / "records.jsonl").read_bytes()
    for images in (held, held + 7):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = run_attack(reference, images=images, resume=True, **attack)
        assert again["pairs"] == held  # and the images skipped as the recorded count walked
        assert again["skipped_misclassified"] == first["skipped_misclassified"]
    assert json.loads((out / "config.json").read_text())["images"] == 100_000
    assert (out / "records.jsonl").read_bytes() == records
    with pytest.raises(OlmpError, match=r"images \(100000, here 5\)"):
        run_attack(reference, images=5, resume=True, **attack)


def test_help_shows_the_defaults_and_a_missing_setting_is_named(reference, capsys):
    with pytest.raises(SystemExit):
        run_cli("--help")
    shown = " ".join(capsys.readouterr().out.split())
    for default in ("0.2", "3000", "100", "random", "0"):
        assert f"(default: {default})" in shown
    assert "compare.csv, compare.json and compare.png" in shown
    assert run_cli("--weights", reference) == 2
    assert "needs --method, --out for a run" in capsys.readouterr().err

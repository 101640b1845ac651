import pytest
import torch

from olmp.errors import OlmpError
from olmp.models import MODELS, build_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "params"), [("lenet-300-100", 266_610), ("lenet-5", 431_080)])
def test_parameter_counts_match_the_paper(name, params):
    assert n_params(build_model(name, (1, 28, 28), 10)) == params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name):
    model = build_model(name, (1, 28, 28), 10)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet5_has_no_relu_after_convolutions():
    layers = list(build_model("lenet-5", (1, 28, 28), 10))
    kinds = [type(m).__name__ for m in layers]
    assert kinds == [
        "Conv2d",
        "MaxPool2d",
        "Conv2d",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert layers[0].out_channels == 20 and layers[2].out_channels == 50


def test_conv_small_is_alexnet_style():
    model = build_model("conv-small", (1, 28, 28), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds.count("Conv2d") == 3 and kinds.count("Dropout") == 2
    assert kinds.count("Linear") == 3


def test_models_adapt_to_input_shape_and_classes():
    model = build_model("lenet-300-100", (1, 8, 8), 4)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 4)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(OlmpError, match=r"lenet-5 needs images of at least 16x16.*\(1, 8, 8\)"):
        build_model("lenet-5", (1, 8, 8), 10)


def test_user_factories():
    model = build_model("custom_models:tiny_mlp", (1, 8, 8), 10)
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    model = build_model("custom_models:fixed_digits_mlp", (1, 8, 8), 10)
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_a_module_that_fails_inside_gets_no_pythonpath_hint(tmp_path, monkeypatch):
    (tmp_path / "broken_factory_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(OlmpError, match="no_such_dependency_xyz") as info:
        build_model("broken_factory_mod:f", (1, 28, 28), 10)
    assert "PYTHONPATH" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet-9000", "unknown model 'resnet-9000'; choose one of: conv-small, lenet-300-100"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'.*PYTHONPATH=\\. for a"),
        ("custom_models:missing", "has no callable 'missing'"),
        ("custom_models:not_a_module", "returned str, not nn.Module"),
        (":x", "':x' is no registry name .* nor a package.module:factory of Python names"),
        (".custom_models:tiny_mlp", "nor a package.module:factory of Python names"),
        ("custom_models:needs_width", "needs width, which olmp does not give"),
    ],
)
def test_bad_model_names(name, message):
    with pytest.raises(OlmpError, match=message.replace("(", r"\(")):
        build_model(name, (1, 28, 28), 10)

"""Model zoo: registry, shapes, FedDST parameter counts, prunable names, seeded builds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsparse.errors import ConfigError
from fedsparse.models import MODELS, build_model, first_layer_name, prunable_names

torch.set_num_threads(1)

INPUTS = {"cifar10_net": [(3, 32)], "mnist_net": [(1, 28)]}
GENERIC = [(1, 28), (3, 32)]


def _maskable(model: nn.Module) -> int:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in prunable_names(model))


def test_registry_lists_all_models() -> None:
    assert set(MODELS.names()) == {"cifar10_net", "mnist_net", "mlp", "resnet18", "vgg11",
                                   "vgg16", "mobilenet_v2"}
    with pytest.raises(ConfigError, match="allowed: .*cifar10_net"):
        build_model("resnet50", 10, 3, 32)


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_forward_shapes(name: str) -> None:
    for channels, size in INPUTS.get(name, GENERIC):
        model = build_model(name, 7, channels, size, seed=0).eval()
        with torch.no_grad():
            out = model(torch.randn(2, channels, size, size))
        assert out.shape == (2, 7)
        assert torch.isfinite(out).all()


def test_feddst_nets_reject_other_inputs() -> None:
    with pytest.raises(ConfigError, match="cifar10_net.*3x32x32.*1x28x28"):
        build_model("cifar10_net", 10, 1, 28)
    with pytest.raises(ConfigError, match="mnist_net.*1x28x28.*3x32x32"):
        build_model("mnist_net", 10, 3, 32)


def test_cifar10_net_matches_feddst() -> None:
    model = build_model("cifar10_net", 10, 3, 32)
    params = dict(model.named_parameters())
    assert prunable_names(model) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight",
                                     "fc3.weight"]
    assert _maskable(model) == 781_770
    assert params["fc1.weight"].shape == (120, 6400)
    assert params["conv1.weight"].shape == (6, 3, 5, 5)
    assert params["fc3.weight"].shape == (10, 84)
    assert not any(isinstance(m, nn.Softmax) for m in model.modules())


def test_mnist_net_matches_feddst() -> None:
    model = build_model("mnist_net", 10, 1, 28)
    params = dict(model.named_parameters())
    assert params["fc1.weight"].shape == (50, 5120)  # 20 channels x 16 x 16
    assert _maskable(model) == 250 + 5000 + 5120 * 50 + 500


def test_mlp_reads_flattened_pixels() -> None:
    model = build_model("mlp", 10, 1, 28)
    shapes = [p.shape for n, p in model.named_parameters() if n.endswith("weight")]
    assert shapes == [(300, 784), (100, 300), (10, 100)]
    assert build_model("mlp", 10, 3, 32).fc1.in_features == 3 * 32 * 32


def test_prunable_names_options() -> None:
    model = build_model("cifar10_net", 10, 3, 32)
    full = prunable_names(model)
    assert prunable_names(model, keep_first_dense=True) == full[1:]
    assert prunable_names(model, keep_last_dense=True) == full[:-1]
    assert prunable_names(model, keep_first_dense=True, keep_last_dense=True) == full[1:-1]


def test_prunable_names_skip_biases_and_norms() -> None:
    model = build_model("resnet18", 10, 3, 32)
    names = prunable_names(model)
    modules = dict(model.named_modules())
    assert names[0] == "conv1.weight" and names[-1] == "fc.weight"
    assert "layer2.0.downsample.0.weight" in names
    assert all(isinstance(modules[n.rsplit(".", 1)[0]], (nn.Conv2d, nn.Linear)) for n in names)
    assert len(names) == 21  # 20 convs (incl. 3 downsample) + fc
    assert not any("bn" in n or n.endswith("bias") for n in names)


def test_first_layer_name() -> None:
    assert first_layer_name(build_model("mlp", 10, 1, 28)) == "fc1.weight"
    assert first_layer_name(build_model("vgg11", 10, 3, 32)) == "features.0.weight"
    assert first_layer_name(build_model("mobilenet_v2", 10, 1, 28)) == "features.0.0.weight"
    with pytest.raises(ConfigError):
        first_layer_name(nn.ReLU())


def test_first_layer_reads_input_channels() -> None:
    for name in ("resnet18", "vgg16", "mobilenet_v2"):
        model = build_model(name, 10, 1, 28)
        assert dict(model.named_parameters())[first_layer_name(model)].shape[1] == 1


def test_seeded_build_reproduces_weights_and_keeps_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model("cifar10_net", 10, 3, 32, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model("cifar10_net", 10, 3, 32, seed=5)
    c = build_model("cifar10_net", 10, 3, 32, seed=6)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(),
                                  c.state_dict().values()):
        assert torch.equal(pa, pb), name
        assert not torch.equal(pa, pc), name


def test_bad_sizes_rejected() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("mlp", 0, 1, 28)


def test_pool_relu_equals_maxpool_of_relu_in_value_and_gradient() -> None:
    """FedDSTNet's pool is MaxPool(3, 1)(ReLU(x)) exactly: same outputs, same gradients bit for
    bit, ties (repeated values, zeros after ReLU) included, for 6 channels (integer-key argmax)
    and 16 (PyTorch's channels-last kernel)."""
    from fedsparse.models.feddst import pool_relu

    gen = torch.Generator().manual_seed(0)
    maps = [torch.randn(4, c, 12, 12, generator=gen) for c in (6, 16)]
    maps += [torch.randint(-2, 3, (4, c, 12, 12), generator=gen).float() for c in (6, 16)]  # ties
    for x0 in maps:
        x1, x2 = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        out = pool_relu(x1)
        ref = nn.functional.max_pool2d(torch.relu(x2), 3, stride=1)
        assert out.is_contiguous() and torch.equal(out, ref)
        g = torch.randn(ref.shape, generator=gen)
        out.backward(g)
        ref.backward(g)
        assert torch.equal(x1.grad, x2.grad)

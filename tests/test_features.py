"""Feature networks: VGG-16 from a torchvision-layout file, the shipped text features, and no random fallback."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ocr_restore.errors import ModelError
from ocr_restore.nn.features import (DEFAULT_TEXT_FEATURES, TextFeatureConfig, TextFeatureNet, Vgg16Features,
                                     load_feature_net, save_text_features)

# torchvision vgg16().features: (index, in, out) of each 3x3 conv; ReLU after each, max pooling at 4, 9, 16, 23, 30
VGG16_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
               (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]


def torchvision_vgg16_state(seed=0):
    """A state dict with torchvision's VGG-16 key names and shapes (features plus the last classifier layer)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, cin, cout in VGG16_CONVS:
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.01
    state["classifier.6.weight"], state["classifier.6.bias"] = torch.zeros(1000, 4096), torch.zeros(1000)
    return state


def direct_vgg_pools(state, image):
    """pool1..pool3 of VGG-16 written out with F.conv2d, on ImageNet-normalised input."""
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (image - mean) / std
    pools = []
    for block in [(0, 2), (5, 7), (10, 12, 14)]:
        for i in block:
            x = F.relu(F.conv2d(x, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
        x = F.max_pool2d(x, 2)
        pools.append(x)
    return pools


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vgg16_loads_a_torchvision_state_dict(tmp_path, suffix):
    state = torchvision_vgg16_state()
    path = tmp_path / f"vgg16{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    net = load_feature_net(path)
    assert isinstance(net, Vgg16Features) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    image = torch.rand(2, 3, 32, 48)
    pools = net(image)
    assert [p.shape[1:] for p in pools] == [(64, 16, 24), (128, 8, 12), (256, 4, 6)]
    for got, want in zip(pools, direct_vgg_pools(state, image)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_vgg16_rejects_files_of_another_layout(tmp_path):
    state = torchvision_vgg16_state()
    del state["features.12.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match="partial.pth.*features.12.weight"):
        load_feature_net(tmp_path / "partial.pth")
    state = torchvision_vgg16_state()
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(state, tmp_path / "shapes.pth")
    with pytest.raises(ModelError, match="features.5.weight has shape"):
        load_feature_net(tmp_path / "shapes.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.pth"):
        load_feature_net(tmp_path / "junk.pth")
    with pytest.raises(ModelError, match="not found"):
        load_feature_net(tmp_path / "absent.pth")


def test_no_feature_net_is_an_error_never_a_random_network(tmp_path):
    with pytest.raises(ModelError, match="--perceptual PATH.*ocr-restore train features.*--perceptual none"):
        load_feature_net(None, text_features=tmp_path / "absent.safetensors")


def test_text_feature_net_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TextFeatureNet(TextFeatureConfig(widths=(4, 8, 8)))
    model.classify(torch.rand(4, 3, 32, 32))
    save_text_features(tmp_path / "tf.safetensors", model.eval())
    loaded = load_feature_net(None, text_features=tmp_path / "tf.safetensors")
    assert loaded.config == model.config and not loaded.training
    image = torch.rand(1, 3, 64, 128)
    for a, b in zip(loaded(image), model(image)):
        assert torch.equal(a, b)


def test_shipped_text_features_are_trained_on_text():
    """The default perceptual network is small, loads frozen and names rendered characters (so it is not random)."""
    from ocr_restore.train.features import as_batch, render_glyphs

    assert DEFAULT_TEXT_FEATURES.stat().st_size < 2_000_000
    net = load_feature_net(None)
    assert isinstance(net, TextFeatureNet) and not any(p.requires_grad for p in net.parameters())
    assert [p.shape[2:] for p in net(torch.rand(1, 3, 64, 128))] == [(32, 64), (16, 32), (8, 16)]
    images, labels = render_glyphs(300, seed=12345, crop=net.config.crop)
    with torch.no_grad():
        accuracy = (net.classify(as_batch(images)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.75

"""Models: pixel-space normalisation, committed checkpoints, offline ImageNet behaviour."""
import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import transforms

from vislib import config, data, models, train


def test_normalize_layer_equals_the_torchvision_transform():
    x = torch.rand(4, 3, 20, 20)
    layer = models.Normalize(models.IMAGENET_MEAN, models.IMAGENET_STD)
    expected = torch.stack([transforms.Normalize(models.IMAGENET_MEAN, models.IMAGENET_STD)(img) for img in x])
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.allclose(layer.bias, -torch.tensor(models.IMAGENET_MEAN) / torch.tensor(models.IMAGENET_STD))
    # Black (0) in pixel space is -mean/std after normalisation, the pitfall of evaluation.md §8.11.
    assert torch.allclose(layer(torch.zeros(1, 3, 1, 1)).flatten(), layer.bias)


def test_with_normalization_wraps_any_model():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    wrapped = models.with_normalization(net, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.rand(3, 3, 2, 2)
    assert torch.allclose(wrapped(x), net((x - 0.5) / 0.25))
    with pytest.raises(ValueError, match="positive"):
        models.Normalize((0, 0, 0), (1, 0, 1))


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_course_models_take_32_and_64_pixel_images(arch):
    m = models.course_model(arch).eval()
    for size in (32, 64):
        assert m(torch.rand(2, 3, size, size)).shape == (2, 8)


@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_committed_checkpoint_reaches_its_manifest_accuracy(name):
    entry = models.manifest()[name]
    model = models.load_course_model(name)
    assert not model.training and model.classes == list(data.SHAPE_CLASSES)
    test = data.make_shapes(entry["test_split"]["n"], size=entry["image_size"], seed=entry["test_split"]["seed"])
    acc = train.accuracy(model, test.images, test.labels)
    assert acc >= 0.95
    assert acc == pytest.approx(entry["test_accuracy"], abs=0.003)


def test_checkpoints_load_with_weights_only(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    models.load_course_model("resnet")
    assert calls == [True]


def test_unknown_course_model_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="available"):
        models.load_course_model("alexnet")


def test_missing_imagenet_weights_fail_at_once_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not models.imagenet_available("resnet18")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        models.imagenet("vgg16")
    assert time.perf_counter() - start < 2.0
    assert "vgg16" in str(err.value) and "download=True" in str(err.value)
    with pytest.raises(ValueError, match="valid"):
        models.imagenet("alexnet")


def test_random_weight_imagenet_model_is_wrapped():
    m = models.imagenet("resnet18", pretrained=False)
    assert isinstance(m[0], models.Normalize) and len(m.classes) == 1000
    assert m(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def _support(model, size, index):
    """Rows of the input on which the gradient of the output unit at (index, index) is non-zero."""
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = model(x)
    (g,) = torch.autograd.grad(out[0, 0, index, index], x)
    rows = g[0, 0].abs().sum(1).nonzero().flatten()
    return rows.min().item(), rows.max().item()


def test_receptive_field_of_the_course_vgg_by_hand():
    features = models.course_model("vgg").net.features
    # Block 1: two 3x3 convs (5 px), 2x2 pool (6 px, jump 2, centre 0.5); block 2: two convs (+4 +4).
    assert models.receptive_field(features[:13]) == (14, 2, 0.5)
    # Pool (+2, jump 4, centre 1.5), two convs (+8 +8).
    assert models.receptive_field(features[:20]) == (32, 4, 1.5)
    assert models.receptive_field([]) == (1, 1, 0.0)


def test_receptive_field_equals_the_support_of_a_units_gradient():
    # Strided and unpadded convs, a padded pool, a dilated conv; all weights positive, so the gradient
    # of a unit is non-zero exactly on its receptive field (average pooling has max pooling's geometry).
    layers = [nn.Conv2d(1, 1, 5, stride=2, padding=2), nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1),
              nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1), nn.Conv2d(1, 1, 3, padding=2, dilation=2)]
    probe = nn.Sequential(*[m for m in layers if not isinstance(m, (nn.ReLU, nn.BatchNorm2d))]).double()
    for m in probe:
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
    size, jump, start = models.receptive_field(nn.Sequential(*layers))
    (lo, hi), (lo2, hi2) = _support(probe, 96, 5), _support(probe, 96, 6)
    assert hi - lo + 1 == size and hi2 - lo2 + 1 == size and lo2 - lo == jump
    assert (lo + hi) / 2 == start + 5 * jump
    max_pool = [nn.MaxPool2d(3, stride=2, padding=1) if isinstance(m, nn.AvgPool2d) else m for m in layers]
    assert models.receptive_field(max_pool) == (size, jump, start)
    with pytest.raises(ValueError, match="square"):
        models.receptive_field([nn.Conv2d(1, 1, (3, 5))])
    # after global pooling or a linear layer a unit sees the whole image, whatever its size: no fixed field
    vgg = models.course_model("vgg").net
    for layer in (nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)):
        with pytest.raises(ValueError, match=f"{type(layer).__name__} mixes positions"):
            models.receptive_field([*vgg.features, layer])


def test_standin_weights_load_through_torchvisions_own_code_and_say_what_they_are(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not models.imagenet_available("resnet18")
    (path,) = models.write_imagenet_standins(["resnet18"], tmp_path)
    assert path.parent == tmp_path / "checkpoints" and path.name.startswith("resnet18-")
    assert models.imagenet_available("resnet18") and models.imagenet_is_standin("resnet18")
    net = models.imagenet("resnet18")
    assert net.standin is True and len(net.classes) == 1000
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in net[1].state_dict().items())
    assert models.imagenet("resnet18", pretrained=False).standin is False


def test_standins_never_overwrite_real_weights(tmp_path):
    (path,) = models.write_imagenet_standins(["resnet18"], tmp_path)
    path.with_name(path.name + models.STANDIN_MARKER).unlink()        # now it looks like a real download
    with pytest.raises(FileExistsError, match="real weights"):
        models.write_imagenet_standins(["resnet18"], tmp_path)


def test_download_offline_is_a_clear_fast_error_and_touches_no_network(tmp_path, monkeypatch):
    import socket

    def offline(address, timeout=None):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", offline)
    with pytest.raises(ConnectionError, match="offline") as err:
        models.download_imagenet(["vgg16"])
    assert "python -m vislib.models download vgg16" in str(err.value)
    assert models.main(["download", "vgg16"]) == 1
    with pytest.raises(ValueError, match="valid"):
        models.download_imagenet(["alexnet"])


def test_download_goes_through_torchvision_and_replaces_a_standin(tmp_path, monkeypatch):
    import socket

    import torchvision.models._api as api

    class Connection:
        def close(self):
            pass

    fetched = []

    def fake_fetch(url, *args, **kwargs):            # what torchvision's loader would download
        fetched.append(url)
        return torchvision.models.resnet18(weights=None).state_dict()

    import torchvision
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: Connection())
    monkeypatch.setattr(api, "load_state_dict_from_url", fake_fetch)
    models.write_imagenet_standins(["resnet18"], tmp_path)
    models.download_imagenet(["resnet18"])
    assert fetched == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url]
    assert not models.imagenet_is_standin("resnet18")


def test_notebook_imagenet_sections_say_what_weights_they_got(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert models.imagenet_for_notebook("resnet18") is None
    assert "not cached" in capsys.readouterr().out
    models.write_imagenet_standins(["resnet18"], tmp_path)
    net = models.imagenet_for_notebook("resnet18")
    assert "STAND-INS" in capsys.readouterr().out
    assert models.imagenet_label("ResNet-18", net) == "ResNet-18 (STAND-IN random weights, not ImageNet)"
    assert models.imagenet_figure_name("05_cam_imagenet", net) == "05_cam_imagenet_standin"
    real = models.imagenet("resnet18", pretrained=False)
    assert models.imagenet_label("ResNet-18", real) == "ResNet-18 (ImageNet)"
    assert models.imagenet_figure_name("05_cam_imagenet", real) == "05_cam_imagenet"


# --------------------------------------------------------------------------- checkpoint integrity
def _copy_models(tmp_path, names=("resnet",)):
    """A private copy of the committed checkpoints and their manifest (the originals stay untouched)."""
    folder = tmp_path / "models"
    folder.mkdir()
    entries = models.manifest()
    for name in names:
        shutil.copy(models.MODELS_DIR / entries[name]["file"], folder / entries[name]["file"])
    (folder / "manifest.json").write_text(json.dumps({n: entries[n] for n in names}))
    return folder


def _edit_entry(folder, name, **changes):
    man = json.loads((folder / "manifest.json").read_text())
    man[name].update(changes)
    (folder / "manifest.json").write_text(json.dumps(man))


def _says_file_and_rebuild(error, path):
    message = str(error.value)
    assert str(path) in message, message
    assert "python -m vislib.train" in message, message


@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_manifest_records_the_sha256_of_each_committed_checkpoint(name):
    entry = models.manifest()[name]
    data_bytes = (models.MODELS_DIR / entry["file"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data_bytes).hexdigest() == models.sha256_file(
        models.MODELS_DIR / entry["file"], chunk=1000)   # chunked reading gives the one-shot digest


def test_sha256_of_a_known_string():
    # FIPS 180-2 test vector: SHA-256("abc").
    import tempfile
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(b"abc")
    assert models.sha256_file(f.name, chunk=2) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    Path(f.name).unlink()


def test_a_copied_folder_loads_the_same_model(tmp_path):
    folder = _copy_models(tmp_path)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(models.load_course_model("resnet", folder=folder)(x), models.load_course_model("resnet")(x))


def test_a_flipped_byte_is_refused_with_the_file_and_the_rebuild_command(tmp_path):
    folder = _copy_models(tmp_path)
    path = folder / "resnet.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01                      # one bit inside the tensor data
    path.write_bytes(bytes(raw))
    with pytest.raises(models.CheckpointError, match="SHA-256") as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, path)
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(error.value)


@pytest.mark.parametrize("file", ["../resnet.pt", "sub/../../resnet.pt", "ABSOLUTE", "", 7])
def test_manifest_paths_must_stay_inside_the_models_folder(tmp_path, file):
    folder = _copy_models(tmp_path)
    outside = tmp_path / "resnet.pt"                 # a valid checkpoint with the right hash, but outside
    shutil.copy(folder / "resnet.pt", outside)
    if file == "ABSOLUTE":
        file = str(outside)
    _edit_entry(folder, "resnet", file=file)
    with pytest.raises(models.CheckpointError, match="inside") as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, folder / "manifest.json")


def test_a_symlink_out_of_the_models_folder_is_refused(tmp_path):
    folder = _copy_models(tmp_path)
    outside = tmp_path / "elsewhere.pt"
    shutil.move(folder / "resnet.pt", outside)
    (folder / "resnet.pt").symlink_to(outside)
    with pytest.raises(models.CheckpointError, match="outside"):
        models.load_course_model("resnet", folder=folder)


def test_missing_or_malformed_manifest_names_the_file(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(models.CheckpointError, match="no checkpoint manifest") as error:
        models.load_course_model("vgg", folder=folder)
    _says_file_and_rebuild(error, folder / "manifest.json")
    for text in ("{not json", "[1, 2]", '{"vgg": 3}'):
        (folder / "manifest.json").write_text(text)
        with pytest.raises(models.CheckpointError) as error:
            models.manifest(folder)
        _says_file_and_rebuild(error, folder / "manifest.json")


@pytest.mark.parametrize("key", ["sha256", "file", "arch"])
def test_an_entry_without_a_required_key_is_refused(tmp_path, key):
    folder = _copy_models(tmp_path)
    man = json.loads((folder / "manifest.json").read_text())
    del man["resnet"][key]
    (folder / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(models.CheckpointError, match=key) as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, folder / "manifest.json")


def test_a_missing_checkpoint_names_the_file_and_the_rebuild_command(tmp_path, monkeypatch):
    folder = _copy_models(tmp_path)
    (folder / "resnet.pt").unlink()
    with pytest.raises(FileNotFoundError, match="missing") as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, folder / "resnet.pt")
    assert f"--out {folder}" in str(error.value)     # a private folder is rebuilt in place
    # The default folder names the project's own command.
    monkeypatch.setattr(models, "MODELS_DIR", folder)
    with pytest.raises(FileNotFoundError) as error:
        models.load_course_model("resnet")
    assert config.REBUILD_COMMAND in str(error.value) and "--out" not in str(error.value)


class _NotAllowed:
    pass


@pytest.mark.parametrize("content", ["garbage", "pickled object", "empty"])
def test_torch_load_errors_name_the_file_and_the_rebuild_command(tmp_path, content):
    folder = _copy_models(tmp_path)
    path = folder / "resnet.pt"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    elif content == "pickled object":
        torch.save({"x": _NotAllowed()}, path)     # weights_only=True refuses arbitrary classes
    else:
        path.write_bytes(b"")
    _edit_entry(folder, "resnet", sha256=hashlib.sha256(path.read_bytes()).hexdigest())  # hash matches
    with pytest.raises(models.CheckpointError, match="torch.load") as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, path)


def test_a_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    folder = _copy_models(tmp_path, names=("resnet", "vgg"))
    shutil.copy(folder / "vgg.pt", folder / "resnet.pt")
    _edit_entry(folder, "resnet", sha256=models.sha256_file(folder / "resnet.pt"))
    with pytest.raises(models.CheckpointError, match="does not fit") as error:
        models.load_course_model("resnet", folder=folder)
    _says_file_and_rebuild(error, folder / "resnet.pt")


def test_rebuilding_writes_the_sha256_that_loading_checks(tmp_path, monkeypatch):
    monkeypatch.setitem(train.RECIPES, "resnet", {"arch": "resnet", "kwargs": {"width": 4}, "epochs": 1,
                                                  "lr": 1e-3, "batch_size": 16})
    monkeypatch.setattr(data, "course_split",
                        lambda split, size=64, n=None: data.make_shapes(32, size=size, seed=data.SPLITS[split][0]))
    entry = train.build_course_model("resnet", image_size=32, progress=False, out=tmp_path)
    assert entry["sha256"] == hashlib.sha256((tmp_path / "resnet.pt").read_bytes()).hexdigest()
    assert models.manifest(tmp_path)["resnet"]["sha256"] == entry["sha256"]
    model = models.load_course_model("resnet", folder=tmp_path)
    assert not model.training and model.vislib_input_size == 32
    with open(tmp_path / "resnet.pt", "r+b") as f:   # and a changed byte after the rebuild is refused
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(models.CheckpointError, match="SHA-256"):
        models.load_course_model("resnet", folder=tmp_path)


def test_an_unknown_model_names_the_manifest_and_the_rebuild_command(tmp_path):
    folder = _copy_models(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"available: \['resnet'\]") as error:
        models.load_course_model("vgg", folder=folder)
    _says_file_and_rebuild(error, folder / "manifest.json")

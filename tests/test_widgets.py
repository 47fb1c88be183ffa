"""The functions behind the notebooks' sliders, tested without a browser."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vislib import attribution, hooks, widgets  # noqa: E402
from vislib.models import course_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return course_model("resnet", width=4).eval()


def _image():
    torch.manual_seed(1)
    return torch.rand(3, 32, 32)


def test_occlusion_view_draws_the_method_map_for_the_chosen_settings(model):
    image = _image()
    fig, m = widgets.occlusion_view(model, image, patch=6, stride=3, fill="black", target=2,
                                    classes=[f"c{i}" for i in range(8)])
    expected = attribution.occlusion(model, image[None], 2, patch=6, stride=3, fill="black")[0]
    assert torch.allclose(m, expected)
    title = fig.axes[1].get_title()
    assert "Occlusion" in title and "'c2'" in title and "patch 6" in title and "stride 3" in title
    assert len(fig.axes) == 3  # image, map and its colour bar
    plt.close(fig)


def test_cam_view_uses_the_method_layer_and_class(model):
    image = _image()
    fig, m = widgets.cam_view(model, image, method="gradcam_pp", layer="net.layer2", target=5)
    assert torch.allclose(m, attribution.gradcam_pp(model, image[None], 5, layer="net.layer2")[0])
    title = fig.axes[1].get_title()
    assert "Grad-CAM++" in title and "net.layer2" in title and "class 5" in title
    plt.close(fig)
    with pytest.raises(ValueError, match="valid"):
        widgets.cam_view(model, image, method="lime")


def test_default_class_is_the_prediction(model):
    image = _image()
    predicted = int(model(image[None]).argmax())
    fig, m = widgets.cam_view(model, image)
    assert torch.allclose(m, attribution.gradcam(model, image[None], predicted)[0])
    plt.close(fig)


def test_explorers_offer_the_documented_controls_and_leave_no_hooks(model):
    image = _image()
    before = hooks.hook_count(model)
    occ = widgets.occlusion_explorer(model, image, classes=[f"c{i}" for i in range(8)])
    labels = {w.description for w in occ.children if hasattr(w, "description")}
    assert {"patch (px)", "stride (px)", "fill", "class"} <= labels
    cam = widgets.cam_explorer(model, image, ["net.layer1", "net.layer2", "net.layer3"])
    labels = {w.description for w in cam.children if hasattr(w, "description")}
    assert {"method", "layer", "class"} <= labels
    plt.close("all")
    assert hooks.hook_count(model) == before

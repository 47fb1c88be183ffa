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
    assert "Grad-CAM++" in title and "stage 2 (net.layer2)" in title and "class 5" in title
    # the image panel gives the probability of the explained class, p_c, in mathtext
    probability = model(image[None]).softmax(1)[0, 5].item()
    assert fig.axes[0].get_title() == f"image · $p_c$ = {probability:.2f}\nclass 5"
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
    # layers are offered by their names for people, and chosen by their module paths
    assert _control(cam, "layer").options == (("stage 1 (net.layer1)", "net.layer1"),
                                              ("stage 2 (net.layer2)", "net.layer2"),
                                              ("stage 3 (net.layer3)", "net.layer3"))
    plt.close("all")
    assert hooks.hook_count(model) == before


def _control(explorer, description):
    return next(w for w in explorer.children if getattr(w, "description", None) == description)


def test_occlusion_explorer_reuses_one_figure_under_agg(model):
    # Under Agg plt.show() closes nothing: 150 slider moves used to leave 150 figures (and +130 MB);
    # 40 moves show the same (they left 40) in a tenth of the time.
    assert matplotlib.get_backend().lower() == "agg"
    plt.close("all")
    image = _image()
    occ = widgets.occlusion_explorer(model, image, classes=[f"c{i}" for i in range(8)])
    assert len(plt.get_fignums()) == 1
    fig = plt.figure(plt.get_fignums()[0])
    patch, stride = _control(occ, "patch (px)"), _control(occ, "stride (px)")
    for i in range(40):
        if i % 2:
            patch.value = 2 + i % 13
        else:
            stride.value = 1 + i % 5
    assert plt.get_fignums() == [fig.number]
    assert len(fig.axes) == 3                        # image, map, colour bar: nothing stacked up
    # The one figure shows the last settings, and the map of exactly those settings.
    assert f"patch {patch.value} px" in fig.axes[1].get_title()
    assert f"stride {min(stride.value, patch.value)} px" in fig.axes[1].get_title()
    plt.close("all")


def test_cam_explorer_reuses_one_figure_under_agg(model):
    plt.close("all")
    image = _image()
    cam = widgets.cam_explorer(model, image, ["net.layer1", "net.layer2", "net.layer3"])
    layer, method = _control(cam, "layer"), _control(cam, "method")
    for i in range(12):
        layer.value = ["net.layer1", "net.layer2", "net.layer3"][i % 3]
        method.value = ["gradcam", "gradcam_pp"][i % 2]
    assert len(plt.get_fignums()) == 1
    fig = plt.figure(plt.get_fignums()[0])
    assert len(fig.axes) == 3 and layer.value in fig.axes[1].get_title()
    plt.close("all")


def test_an_explorer_draws_a_new_figure_when_show_closed_the_old_one(model, monkeypatch):
    # The inline backend's plt.show() displays and closes every figure: the next update must not
    # draw into the closed one, and nothing must stay open.
    plt.close("all")
    shown = []

    def inline_show(*args, **kwargs):
        shown.extend(plt.figure(n) for n in plt.get_fignums())
        plt.close("all")

    monkeypatch.setattr(plt, "show", inline_show)
    occ = widgets.occlusion_explorer(model, _image())
    for value in (3, 4, 5):
        _control(occ, "patch (px)").value = value
    assert plt.get_fignums() == []
    assert len(shown) == 4 and len({id(f) for f in shown}) == 4      # one fresh figure per update
    assert all(len(f.axes) == 3 for f in shown) and "patch 5 px" in shown[-1].axes[1].get_title()


def test_views_redraw_into_a_given_figure(model):
    image = _image()
    fig, first = widgets.occlusion_view(model, image, patch=4, stride=2, target=1)
    again, second = widgets.occlusion_view(model, image, patch=4, stride=2, target=1, fig=fig)
    assert again is fig and len(fig.axes) == 3 and torch.equal(first, second)
    again, m = widgets.cam_view(model, image, method="gradcam", layer="net.layer2", target=3, fig=fig)
    assert again is fig and len(fig.axes) == 3 and "Grad-CAM" in fig.axes[1].get_title()
    assert torch.allclose(m, attribution.gradcam(model, image[None], 3, layer="net.layer2")[0])
    plt.close(fig)

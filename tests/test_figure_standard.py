"""The figure standard (vislib.style) and savefig's checks: what it refuses, what it measures, what it records."""
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import RendererAgg
from PIL import Image
from torch import nn

from vislib import config, plot, report, style

CAPTION = "Gradient of the course VGG at the input for class 'star'; pointing game 0.81."


@pytest.fixture(autouse=True)
def house_style():
    with matplotlib.rc_context(style.HOUSE_STYLE):
        yield
    plt.close("all")


def curve_figure(width: float, height: float = 2.0, fontsize: float | None = None):
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="removed pixels (%)", ylabel=style.metric_label("AFOC", "lower"))
    ax.set_title("a title", fontsize=fontsize)
    return fig


# ------------------------------------------------------------------------------ what it refuses
@pytest.mark.parametrize("width", [7.6, 12.0])
def test_a_figure_wider_than_the_text_width_is_refused_and_nothing_is_written(tmp_path, width):
    with pytest.raises(plot.FigureStandardError, match=r"in wide; a report page is 7.0 in wide") as e:
        plot.savefig(curve_figure(width), "01_wide", caption=CAPTION, folder=tmp_path)
    assert "style.figure" in str(e.value)           # it says what to change
    assert not list(tmp_path.iterdir())


def test_full_width_and_column_width_figures_pass(tmp_path):
    for name, width in [("01_full", "full"), ("01_column", "column")]:
        fig, ax = style.figure(width, 2.0)
        ax.plot([0, 1], [1, 0])
        ax.set(xlabel="x", ylabel="y")
        plot.savefig(fig, name, caption=CAPTION, folder=tmp_path)
    index = report.figures(tmp_path)
    assert 6.9 <= index["01_full"]["width_in"] <= 7.03 and 3.3 <= index["01_column"]["width_in"] <= 3.43


def test_text_below_7_pt_is_refused_naming_the_text_and_its_size(tmp_path):
    with pytest.raises(plot.FigureStandardError, match=r"1 texts are smaller than 7 pt: 'a title' 6.5 pt"):
        plot.savefig(curve_figure(4, fontsize=6.5), "02_small", caption=CAPTION, folder=tmp_path)
    fig = curve_figure(4)
    fig.axes[0].tick_params(axis="x", labelsize=5)
    with pytest.raises(plot.FigureStandardError, match=r"6 texts are smaller than 7 pt: '0.0' 5 pt, '0.2' 5 pt"):
        plot.savefig(fig, "02_small_ticks", caption=CAPTION, folder=tmp_path)
    plot.savefig(curve_figure(4, fontsize=7), "02_seven", caption=CAPTION, folder=tmp_path)   # 7 pt itself passes
    assert report.figures(tmp_path)["02_seven"]["min_font_pt"] == 7.0


def test_small_text_in_a_legend_colour_bar_or_mathtext_is_found_too(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 2.5), layout="constrained")
    im = ax.imshow(np.random.default_rng(0).random((8, 8)))
    style.image_axes(ax)
    cb = fig.colorbar(im, ax=ax)
    cb.ax.tick_params(labelsize=6)
    measured = plot.check_figure(fig)
    assert measured.small_texts and all(pt == 6 for _, pt in measured.small_texts)
    fig2, ax2 = plt.subplots(figsize=(4, 2.5), layout="constrained")
    ax2.plot([0, 1], label=r"$p_c(\tilde{x})$")
    ax2.legend(fontsize=6.5)
    assert (r"$p_c(\tilde{x})$", 6.5) in plot.check_figure(fig2).small_texts


def test_a_figure_taller_than_a_page_is_refused(tmp_path):
    with pytest.raises(plot.FigureStandardError, match=r"in tall; at most 9.0 in"):
        plot.savefig(curve_figure(5, height=11), "03_tall", caption=CAPTION, folder=tmp_path)


def test_an_image_panel_with_a_frame_is_refused_and_image_axes_fixes_it(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 3), layout="constrained")
    ax.imshow(np.zeros((4, 4)))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("framed")
    with pytest.raises(plot.FigureStandardError, match=r"image panels \['framed'\] have a frame"):
        plot.savefig(fig, "04_framed", caption=CAPTION, folder=tmp_path)
    style.image_axes(ax)
    plot.savefig(fig, "04_framed", caption=CAPTION, folder=tmp_path)
    # a heat map with labelled ticks (a confusion matrix) keeps its frame: it is a plot, not a picture
    fig2, ax2 = plt.subplots(figsize=(3, 3), layout="constrained")
    ax2.imshow(np.eye(3))
    ax2.set_xticks(range(3))
    assert plot.check_figure(fig2).stray_spines == ()


def test_code_names_in_a_figure_are_refused_and_human_names_pass(tmp_path):
    """Identifiers and bare module paths anywhere in the figure (title, tick, legend) are refused."""
    fig, ax = plt.subplots(figsize=(3.4, 2.4), layout="constrained")
    ax.plot([0, 1], [0, 1], label="gradcam_pp")
    ax.set_title("spearman_abs at features.4")
    ax.legend()
    with pytest.raises(plot.FigureStandardError, match=r"texts \['gradcam_pp', 'spearman_abs at features.4'\] "
                                                        r"show code names: .*method_name"):
        plot.savefig(fig, "10_code_names", caption=CAPTION, folder=tmp_path)
    assert not (tmp_path / "10_code_names.png").exists()
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    ax.get_legend().remove()
    ax.plot([0, 1], [1, 0], label=style.method_name("gradcam_pp"))
    ax.set_title(f"Spearman |ρ| at {style.layer_name(net, '1')}, $s_c(\\tilde x_1)$")
    ax.get_lines()[0].set_label("_nolegend_")
    ax.legend()
    plot.savefig(fig, "10_code_names", caption=CAPTION, folder=tmp_path)
    # the pieces, one by one
    assert plot.code_names(["features.4", "net.layer3.1", "layer net.layer3", "|input_x_gradient|"]) == (
        "features.4", "layer net.layer3", "net.layer3.1", "|input_x_gradient|")
    assert plot.code_names(["conv 2 (features.4)", "stage 3 block 2 (net.layer3.1)", "Grad-CAM++", "$p_{c}(x)$",
                            "0.25", "fc 2 dropout (net.classifier.6)"]) == ()


def test_class_title_names_method_layer_and_class_for_people():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert plot.class_title("gradcam_pp", ["cat", "dog"], torch.tensor(1), "1", model=model) == (
        "Grad-CAM++ · conv 1 ReLU (1) · class 'dog'")
    assert plot.class_title("Occlusion", None, 0) == "Occlusion · class 0"
    assert plot.code_names([plot.class_title("gradcam", None, 0, "net.layer3")]) == ()


@pytest.mark.parametrize("caption", [None, "", "   "])
def test_a_caption_is_required(tmp_path, caption):
    with pytest.raises(plot.FigureStandardError, match="caption"):
        plot.savefig(curve_figure(4), "05_nocaption", caption=caption, folder=tmp_path)
    assert not list(tmp_path.iterdir())


def test_check_false_saves_a_quick_look_and_the_index_says_it_was_unchecked(tmp_path):
    plot.savefig(curve_figure(12, fontsize=5), "06_quick_look", folder=tmp_path, check=False)
    record = report.figures(tmp_path)["06_quick_look"]
    assert record["checked"] is False and record["caption"] == "" and record["width_in"] > 7
    assert "no caption" in (tmp_path / "README.md").read_text()


def test_the_text_recorder_is_removed_even_when_drawing_fails():
    original = RendererAgg.draw_text
    fig = curve_figure(3)

    class Boom(matplotlib.artist.Artist):
        def draw(self, renderer):
            raise RuntimeError("boom")

    fig.axes[0].add_artist(Boom())
    with pytest.raises(RuntimeError, match="boom"):
        plot.check_figure(fig)
    assert RendererAgg.draw_text is original


# ------------------------------------------------------------------------------ what it measures and records
def test_measured_size_is_the_saved_png_size_and_the_caption_is_in_both_files(tmp_path):
    paths = plot.savefig(curve_figure(5, 2.5), "07_measured", caption=CAPTION, folder=tmp_path)
    record = report.figures(tmp_path)["07_measured"]
    png = Image.open(paths[0])
    dpi = style.HOUSE_STYLE["savefig.dpi"]
    assert record["width_in"] == pytest.approx(png.size[0] / dpi, abs=0.006)
    assert record["height_in"] == pytest.approx(png.size[1] / dpi, abs=0.006)
    assert png.text["Description"] == CAPTION and png.text["Title"] == "07_measured"
    assert b"pointing game 0.81" in paths[1].read_bytes()          # PDF /Subject, an ASCII literal string
    assert record["min_font_pt"] == min(style.HOUSE_STYLE["xtick.labelsize"], style.HOUSE_STYLE["axes.labelsize"])


def test_index_contact_sheet_notebook_and_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "QUICK", True)
    plot.savefig(curve_figure(4), "03_first", caption="First | with a bar.", folder=tmp_path)
    monkeypatch.setattr(config, "QUICK", False)
    plot.savefig(curve_figure(4), "mine", caption=CAPTION, folder=tmp_path)
    index = json.loads((tmp_path / "figures.json").read_text())
    assert index["03_first"]["notebook"] == "03_saliency" and index["03_first"]["mode"] == "quick"
    assert index["mine"]["notebook"] == "" and index["mine"]["mode"] == "full"
    sheet = (tmp_path / "README.md").read_text()
    assert '<img src="03_first.png"' in sheet and "First \\| with a bar." in sheet
    assert "## [`03_saliency`](../notebooks/03_saliency.ipynb)" in sheet and "## other figures" in sheet
    assert "modes: full, quick" in sheet
    # a figure whose files are gone leaves the index at the next save
    (tmp_path / "03_first.png").unlink()
    plot.savefig(curve_figure(4), "mine", caption=CAPTION, folder=tmp_path)
    assert set(report.figures(tmp_path)) == {"mine"}


# ------------------------------------------------------------------------------ the standard's helpers
@pytest.mark.parametrize("maker", ["map_grid", "image_grid", "filter_grid", "feature_maps"])
@pytest.mark.parametrize("width", ["full", "column"])
def test_the_grid_helpers_fit_their_width_with_text_at_least_7_pt(maker, width):
    g = torch.Generator().manual_seed(0)
    if maker == "map_grid":
        maps = {style.method_name(m): torch.rand(3, 32, 32, generator=g) for m in
                ["gradient", "input_x_gradient", "guided_backprop", "gradcam", "gradcam_pp", "fullgrad", "random"]}
        fig = plot.map_grid(torch.rand(3, 3, 32, 32, generator=g), maps, row_labels=["a", "b", "c"], width=width)
    elif maker == "image_grid":
        fig = plot.image_grid(torch.rand(16, 3, 32, 32, generator=g), [f"img {i}" for i in range(16)], width=width)
    elif maker == "filter_grid":
        fig = plot.filter_grid(torch.randn(64, 3, 3, 3, generator=g), ncols=16, width=width)
    else:
        fig = plot.feature_maps(torch.rand(32, 16, 16, generator=g), n=16, width=width)
    measured = plot.check_figure(fig)
    assert measured.problems() == []
    assert measured.width_in <= style.WIDTHS[width] + 0.03


def test_figure_takes_the_two_widths_or_inches_and_refuses_wider():
    assert tuple(style.figure("column")[0].get_size_inches()) == pytest.approx((3.4, 2.55))
    assert style.figure("full", 2, ncols=3)[0].get_size_inches()[0] == 7.0
    assert style.figure(5.0, 2)[0].get_size_inches()[0] == 5.0
    with pytest.raises(ValueError, match="at most the full text width"):
        style.figure(8.0)
    with pytest.raises(ValueError, match="'column', 'full' or inches"):
        style.figure("page")


def test_metric_labels_say_which_direction_is_better():
    assert style.metric_label("IoU", "higher") == "IoU (↑ better)"
    assert style.metric_label("AFOC", "lower") == "AFOC (↓ better)"
    assert style.metric_label("change of $s_c$ (%)", "zero") == "change of $s_c$ (%) (0 is best)"
    assert style.metric_label("step", "none") == "step"
    with pytest.raises(ValueError, match="better must be one of"):
        style.metric_label("x", "up")


def test_layer_names_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2), nn.Dropout())
    names = {n: style.layer_name(model, n) for n, _ in model.named_modules() if n}
    assert names == {"0": "conv 1 (0)", "1": "conv 1 BN (1)", "2": "conv 1 ReLU (2)", "3": "pool after conv 1 (3)",
                     "4": "conv 2 (4)", "5": "conv 2 ReLU (5)", "6": "flattened after conv 2 (6)", "7": "fc 1 (7)",
                     "8": "fc 1 dropout (8)"}
    assert style.layer_name(nn.Sequential(nn.Dropout()), "0") == "0"     # nothing before it to name it after
    resnet_like = nn.Module()
    resnet_like.layer3 = nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 1)), nn.Sequential(nn.Conv2d(1, 1, 1)))
    assert style.layer_name(resnet_like, "layer3") == "stage 3 (layer3)"
    assert style.layer_name(resnet_like, "layer3.1") == "stage 3 block 2 (layer3.1)"
    with pytest.raises(ValueError, match=r"unknown layer 'layer9'; valid layers: \['layer3', 'layer3.0'"):
        style.layer_name(resnet_like, "layer9")


def test_panel_letters_and_legend_below_stay_off_the_data():
    fig, axes = style.figure("full", 2.2, ncols=3)
    for ax, m in zip(axes, ["gradient", "fullgrad", "simple_fullgrad"]):
        style.mean_band(ax, [0, 1, 2], [0, 1, 2], [-0.1, 0.9, 1.9], [0.1, 1.1, 2.1], method=m)
    style.panel_letters(axes)
    legend = style.legend_below(fig)
    assert [t.get_text() for t in legend.get_texts()] == ["Gradient", "FullGrad", "Simple FullGrad"]
    letters = [t.get_text() for ax in axes for t in ax.texts]
    assert letters == ["a", "b", "c"]
    fig.canvas.draw()
    legend_box = legend.get_window_extent()
    assert all(legend_box.y1 <= ax.get_window_extent().y0 + 1 for ax in axes)   # below every panel
    assert plot.check_figure(fig).problems() == []


# ------------------------------------------------------------------------------ numbers for the report
@pytest.fixture
def figs(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "FIGS_DIR", tmp_path)
    return tmp_path


def test_numbers_are_formatted_by_hand_and_written_as_macros(figs):
    assert report.number("vggTestAccuracy", 0.97345, 1, percent=True, note="test accuracy") == "97.3 %"
    assert report.interval("evalKlGradcam", 0.4234, 0.39, 0.4567) == "0.42 [0.39, 0.46]"
    assert report.mean_sd("biasGapBiased", [1, 2, 3, 4], 2) == "2.50 ± 1.29"     # sd with n - 1: sqrt(5/3)
    assert report.mean_sd("biasGapShare", [0.1, 0.2], 1, percent=True) == "15.0 ± 7.1 %"
    assert report.interval("sanityDataFullgrad", 0.18, -0.001, 0.36) == "0.18 [0.00, 0.36]"   # no "-0.00"
    assert report.number("evalShift", -0.005, 2) == "-0.01" and report.number("evalShift", -0.0049, 2) == "0.00"
    assert report.number("fullgradGapFloat", 1.83e-7, 1, scientific=True) == "1.8e-7"
    assert report.number("fullgradGapDouble", 6.8e-16, 1, scientific=True) == "6.8e-16"
    assert report.text("segBestMethod", "Grad-CAM++ & co_1") == "Grad-CAM++ & co_1"
    tex = (figs / "numbers.tex").read_text()
    assert r"\newcommand{\vggTestAccuracy}{97.3\,\%}  % test accuracy" in tex
    assert r"\newcommand{\biasGapBiased}{2.50 $\pm$ 1.29}" in tex
    assert r"\newcommand{\segBestMethod}{Grad-CAM++ \& co\_1}" in tex
    assert r"\newcommand{\fullgradGapDouble}{$6.8\times10^{-16}$}" in tex
    # a negative number gets a minus sign, not a hyphen; a hyphen in a text stays one
    report.interval("sanityCascadeFinalGradcam", 0.06, -0.13, 0.26)
    report.text("segWorstMethod", "Grad-CAM-2")
    report.number("evalDrop", -0.25)
    tex = (figs / "numbers.tex").read_text()
    assert r"\newcommand{\sanityCascadeFinalGradcam}{0.06 [\textminus{}0.13, 0.26]}" in tex
    assert r"\newcommand{\evalDrop}{\textminus{}0.25}" in tex
    assert r"\newcommand{\segWorstMethod}{Grad-CAM-2}" in tex
    assert report._escape_caption("a drop of −0.2 in $s_c − s_0$") == r"a drop of \textminus{}0.2 in $s_c - s_0$"
    # bars and angle brackets as themselves in text (the old OT1 encoding set | as an em dash), kept in maths
    assert report._escape_caption("ρ = 0.06 [-0.13, 0.26] at k = 5-50 %, 1e-7") == (
        r"${\rho}$ = 0.06 [\textminus{}0.13, 0.26] at k = 5-50\,\%, 1e-7")
    assert report._escape_caption("|maps| < 0.5 and $|s_c| < 1$") == r"\textbar{}maps\textbar{} \textless{} 0.5 and $|s_c| < 1$"
    assert json.loads((figs / "numbers.json").read_text())["evalKlGradcam"]["value"] == pytest.approx(0.4234)
    report.number("vggTestAccuracy", 0.5, 1, percent=True)          # a re-run replaces, keeps the others
    assert set(report.numbers(figs)) == {"vggTestAccuracy", "evalKlGradcam", "biasGapBiased", "biasGapShare",
                                         "sanityDataFullgrad", "evalShift", "segBestMethod", "fullgradGapFloat",
                                         "fullgradGapDouble", "sanityCascadeFinalGradcam", "segWorstMethod", "evalDrop"}
    assert report.numbers(figs)["vggTestAccuracy"]["text"] == "50.0 %"


@pytest.mark.parametrize("name", ["accuracy", "VggAccuracy", "vgg_accuracy", "vgg2Accuracy", "date", "LaTeX", ""])
def test_number_names_must_be_safe_macro_names(figs, name):
    with pytest.raises(ValueError, match="camelCase"):
        report.number(name, 1.0)
    assert not (figs / "numbers.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_number_is_refused(figs, value):
    with pytest.raises(ValueError, match="finite"):
        report.number("evalKlGradcam", value)


def test_macro_names_from_words_and_method_names():
    assert report.macro_name("eval", "kl", "gradcam_pp") == "evalKlGradcamPp"
    assert report.macro_name("roar", "black", "integrated_gradients") == "roarBlackIntegratedGradients"
    assert report.macro_name("pp", "k10") == "ppKOneZero"
    with pytest.raises(ValueError, match="not a macro name"):
        report.macro_name("x")

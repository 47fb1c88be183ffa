"""vislib.plot: the colours that let a reader compare curves across figures."""
import matplotlib

from vislib import attribution, plot

EVALUATED = ["gradient", "input_x_gradient", "guided_backprop", "gradcam", "gradcam_pp", "fullgrad",
             "simple_fullgrad", "random", "sobel"]        # the methods of notebook 08, drawn in one figure


def colours(styles: dict) -> list[str]:
    return [matplotlib.colors.to_hex(s["color"]) for s in styles.values()]


def is_grey(colour: str) -> bool:
    r, g, b = matplotlib.colors.to_rgb(colour)
    return abs(r - g) < 0.05 and abs(g - b) < 0.05 and 0.2 < r < 0.8


def test_every_method_has_its_own_colour_and_keeps_it_across_figures():
    assert set(plot.METHOD_COLOURS) == set(attribution.METHODS)
    assert len(set(colours(plot.method_styles(EVALUATED)))) == len(EVALUATED)
    assert len(set(colours(plot.method_styles(list(attribution.METHODS))))) == len(attribution.METHODS)
    alone = plot.method_styles(["fullgrad"])["fullgrad"]
    assert alone == plot.method_styles(EVALUATED)["fullgrad"] == plot.method_styles(["sobel", "fullgrad"])["fullgrad"]


def test_unknown_methods_avoid_the_colours_of_known_ones_in_the_same_plot():
    names = EVALUATED + [f"custom_{i}" for i in range(12)]
    styles = plot.method_styles(names)
    assert len(set(colours(styles))) == len(names)
    assert len(set(colours(plot.method_styles(["oracle", "gradient", "random"])))) == 3


def test_grey_belongs_to_the_random_baseline_alone_and_no_two_methods_share_marker_and_line():
    names = list(attribution.METHODS) + [f"custom_{i}" for i in range(12)]
    styles = plot.method_styles(names)
    assert styles["random"]["linestyle"] == "--" and is_grey(styles["random"]["color"])
    others = {m: s for m, s in styles.items() if m != "random"}
    assert not any(is_grey(s["color"]) for s in others.values())
    pairs = [(s["marker"], s["linestyle"]) for s in styles.values()]
    assert len(set(pairs)) == len(pairs), "two methods would look alike in black and white"
    # the pairs the issue named as confusable by hue alone differ in marker and in line style
    for a, b in [("fullgrad", "simple_fullgrad"), ("guided_backprop", "ablation_cam")]:
        assert styles[a]["marker"] != styles[b]["marker"] and styles[a]["linestyle"] != styles[b]["linestyle"]
    assert styles["input_x_gradient"]["label"] == "Gradient × input" and styles["custom_3"]["label"] == "custom_3"


def test_an_absolute_value_variant_keeps_the_colour_of_its_method():
    styles = plot.method_styles(["input_x_gradient", "|input_x_gradient|", "mine"])
    assert styles["|input_x_gradient|"]["color"] == styles["input_x_gradient"]["color"]
    assert styles["|input_x_gradient|"]["marker"] == styles["input_x_gradient"]["marker"]
    assert styles["|input_x_gradient|"]["linestyle"] == ":" and styles["|input_x_gradient|"]["label"] == "|Gradient × input|"
    assert styles["mine"]["color"] != styles["input_x_gradient"]["color"]


#: Machado, Oliveira & Fernandes (2009) matrices (severity 1) on linear RGB.
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def lab(rgb):
    """sRGB in [0, 1] (rows) -> CIELAB (D65)."""
    import numpy as np
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def test_method_colours_stay_apart_for_colour_blind_readers():
    import numpy as np
    names = list(plot.METHOD_COLOURS)
    rgb = np.array([matplotlib.colors.to_rgb(plot.METHOD_COLOURS[n]) for n in names])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    for vision, matrix in [("normal", np.eye(3))] + [(k, np.array(m)) for k, m in CVD.items()]:
        sim = np.clip(lin @ matrix.T, 0, 1)
        srgb = np.where(sim <= 0.0031308, sim * 12.92, 1.055 * sim ** (1 / 2.4) - 0.055)
        d = np.linalg.norm(lab(srgb)[:, None] - lab(srgb)[None], axis=-1) + np.eye(len(names)) * 1e9
        i, j = np.unravel_index(d.argmin(), d.shape)
        assert d.min() >= 8, f"{vision}: {names[i]} and {names[j]} are only Delta E {d.min():.1f} apart"
    assert all(lab(rgb[i:i + 1])[0, 0] <= 80 for i in range(len(names))), "a colour too light for a line on white"


# --------------------------------------------------------------------------- savefig
def _figure(width_in: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, 2.0))
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="x", ylabel="y", title="savefig test")
    return fig


def _png_size(path):
    """Width and height from a PNG's IHDR chunk (bytes 16-24), read without matplotlib."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


import pytest  # noqa: E402

CAPTION = "A straight line, drawn to test savefig."


@pytest.mark.parametrize("name", ["x.PNG", "x.png", "x.pdf", "x.Pdf", "x"])
def test_savefig_drops_its_own_extension_in_any_case(tmp_path, name):
    import matplotlib.pyplot as plt

    fig = _figure(3.0)
    paths = plot.savefig(fig, name, folder=tmp_path, caption=CAPTION)
    plt.close(fig)
    assert paths == [tmp_path / "x.png", tmp_path / "x.pdf"]
    assert sorted(p.name for p in tmp_path.glob("x*")) == ["x.pdf", "x.png"]   # no x.PNG.png beside them
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    _png_size(paths[0])


def test_savefig_keeps_dots_inside_a_stem():
    assert plot._figure_stem("08_roar_0.5") == "08_roar_0.5"
    assert plot._figure_stem("a.b.PNG") == "a.b"


@pytest.mark.parametrize("name", ["", ".png", "sub/x", "..\\x", "x.jpg", "x.SVG", ".."])
def test_savefig_refuses_folders_foreign_formats_and_empty_names(tmp_path, name):
    with pytest.raises(ValueError, match="savefig|stem|folder"):
        plot.savefig(_figure(3.0), name, folder=tmp_path, caption=CAPTION)
    assert not list(tmp_path.iterdir())


def test_savefig_overwrites_and_says_so(tmp_path):
    import matplotlib.pyplot as plt

    first = plot.savefig(_figure(3.0), "same", folder=tmp_path, caption=CAPTION)
    w1, _ = _png_size(first[0])
    second = plot.savefig(_figure(6.0), "same", folder=tmp_path, caption=CAPTION)
    w2, _ = _png_size(second[0])
    plt.close("all")
    assert first == second and w2 > 1.5 * w1   # the twice-as-wide figure replaced the first (tight bbox)
    assert sorted(p.name for p in tmp_path.glob("same*")) == ["same.pdf", "same.png"]
    assert "overwritten" in plot.savefig.__doc__


def test_savefig_default_folder_is_the_configured_one(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from vislib import config

    monkeypatch.setattr(config, "FIGS_DIR", tmp_path / "figs")
    paths = plot.savefig(_figure(3.0), "default", close=True, caption=CAPTION)
    assert paths[0] == tmp_path / "figs" / "default.png" and paths[0].exists()
    assert plt.get_fignums() == []

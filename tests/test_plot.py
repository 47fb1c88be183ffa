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


def test_grey_and_dashes_belong_to_the_random_baseline_alone():
    names = list(attribution.METHODS) + [f"custom_{i}" for i in range(12)]
    styles = plot.method_styles(names)
    assert styles["random"]["linestyle"] == "--" and is_grey(styles["random"]["color"])
    others = {m: s for m, s in styles.items() if m != "random"}
    assert all(s["linestyle"] == "-" and not is_grey(s["color"]) for s in others.values())


def test_an_absolute_value_variant_keeps_the_colour_of_its_method():
    styles = plot.method_styles(["input_x_gradient", "|input_x_gradient|", "mine"])
    assert styles["|input_x_gradient|"] == styles["input_x_gradient"]
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

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

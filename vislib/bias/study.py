"""The study's vocabulary: classes, groups, parts, and the group counts of the original study."""
from __future__ import annotations

#: Class names in label order: 0 = doctor, 1 = nurse.
BIAS_CLASSES: tuple[str, ...] = ("doctor", "nurse")
#: The four groups, in the order of :attr:`BiasDataset.group` (index = 2 * label + is_male).
GROUPS: tuple[str, ...] = ("female doctor", "male doctor", "female nurse", "male nurse")
#: Part names, in drawing order; the masks of all parts partition each image.
PARTS: tuple[str, ...] = ("background", "body", "hair", "face", "accessories", "tie", "stethoscope", "clipboard")

#: Group counts of the original study: per split, (class, gender) -> number of images.
STUDY_COUNTS: dict[str, dict[tuple[str, str], int]] = {
    "train": {("doctor", "female"): 19, ("doctor", "male"): 125,
              ("nurse", "female"): 165, ("nurse", "male"): 45},
    "test": {("doctor", "female"): 19, ("doctor", "male"): 17,
             ("nurse", "female"): 18, ("nurse", "male"): 15},
}
# Each split draws from its own random stream, so train and test never share figures.
STREAMS = {"train": 0, "test": 1, "balanced_test": 2}
GENDERS = ("female", "male")

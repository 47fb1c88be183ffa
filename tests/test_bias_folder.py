"""load_bias_folder never drops a photo silently: every layout is either read correctly or refused
with an error naming what is wrong (vislib.bias.loaders)."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from vislib.bias import GROUPS, BiasDataset, load_bias_folder
from vislib.image_files import UnreadableImageError


def _write(path, value: int = 0, shape=(10, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), value, np.uint8))


def _gendered(root, counts=None):
    """root/<class>/<gender>/<k>.png; pixel value = 10 * group index + k, so each image is traceable."""
    counts = counts or {"female doctor": 2, "male doctor": 1, "female nurse": 1, "male nurse": 3}
    for g, name in enumerate(GROUPS):
        gender, cls = name.split()
        for k in range(counts[name]):
            _write(root / cls / gender / f"{k}.png", 10 * g + k)
    return counts


def test_gender_layout_reads_every_image_into_its_group(tmp_path):
    counts = _gendered(tmp_path)
    ds = load_bias_folder(tmp_path, size=None)
    assert isinstance(ds, BiasDataset) and ds.counts() == counts and len(ds.files) == 7
    # each image's pixel value says which group it was written for
    for i in range(len(ds)):
        value = round(float(ds.images[i, 0, 0, 0]) * 255)
        assert GROUPS[value // 10] == ds.group_names[i], ds.files[i]
    sub = ds.subset(ds.in_group("male nurse"))
    assert [f.parent.name for f in sub.files] == ["male"] * 3 and sub.counts()["male nurse"] == 3


def test_flat_layout_reads_the_two_classes(tmp_path):
    for cls, n in (("doctor", 2), ("nurse", 3)):
        for k in range(n):
            _write(tmp_path / cls / f"{k}.png", 40 * k)
    ds = load_bias_folder(tmp_path, size=8)
    assert ds.female is None and ds.groups == ("doctor", "nurse")
    assert ds.labels.tolist() == [0, 0, 1, 1, 1] and ds.images.shape == (5, 3, 8, 8)


def test_mixed_flat_and_gender_layouts_are_refused(tmp_path):
    _gendered(tmp_path)
    for f in (tmp_path / "nurse").rglob("*.png"):     # nurse/ flat, doctor/ split by gender
        f.rename(tmp_path / "nurse" / f"{f.parent.name}_{f.name}")
    for d in ("female", "male"):
        (tmp_path / "nurse" / d).rmdir()
    with pytest.raises(ValueError, match=r"doctor is split into female/ and male/ but .*nurse is not"):
        load_bias_folder(tmp_path)


def test_loose_files_next_to_gender_folders_are_refused(tmp_path):
    _gendered(tmp_path)
    _write(tmp_path / "doctor" / "who_am_i.png")
    with pytest.raises(ValueError, match=r"next to its gender folders \(who_am_i.png\).*gender is unknown"):
        load_bias_folder(tmp_path)


def test_loose_files_in_the_root_and_stray_folders_are_refused(tmp_path):
    _gendered(tmp_path)
    _write(tmp_path / "orphan.png")
    with pytest.raises(ValueError, match=r"outside doctor/ and nurse/ \(orphan.png\)"):
        load_bias_folder(tmp_path)
    (tmp_path / "orphan.png").unlink()
    _write(tmp_path / "surgeon" / "s.png")
    with pytest.raises(ValueError, match=r"surgeon holds 1 image\(s\)"):
        load_bias_folder(tmp_path)
    (tmp_path / "surgeon" / "s.png").unlink()
    _write(tmp_path / "nurse" / "unknown" / "u.png")
    with pytest.raises(ValueError, match=r"unknown holds 1 image\(s\).*female/, male/"):
        load_bias_folder(tmp_path)
    (tmp_path / "nurse" / "unknown" / "u.png").unlink()
    _write(tmp_path / "nurse" / "male" / "deeper" / "d.png")
    with pytest.raises(ValueError, match=r"deeper holds 1 image\(s\)"):
        load_bias_folder(tmp_path)
    (tmp_path / "nurse" / "male" / "deeper" / "d.png").unlink()
    # hidden and empty folders, AppleDouble files: harmless
    _write(tmp_path / ".ipynb_checkpoints" / "x.png")
    (tmp_path / "doctor" / "female" / "._0.png").write_bytes(b"AppleDouble")
    assert len(load_bias_folder(tmp_path)) == 7


def test_an_empty_class_is_refused(tmp_path):
    (tmp_path / "doctor").mkdir()
    _write(tmp_path / "nurse" / "a.png")
    with pytest.raises(ValueError, match=r"doctor holds no image files"):
        load_bias_folder(tmp_path)
    for d in ("female", "male"):
        (tmp_path / "doctor" / d).mkdir()
    (tmp_path / "nurse" / "a.png").rename(tmp_path / "n.png")
    _write(tmp_path / "nurse" / "female" / "a.png")
    (tmp_path / "n.png").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the error comes first, no group warnings before it
        with pytest.raises(ValueError, match=r"doctor holds no image files in female/ or male/"):
            load_bias_folder(tmp_path)


def test_an_empty_or_missing_gender_folder_gives_an_empty_group_with_a_warning(tmp_path):
    _gendered(tmp_path, {"female doctor": 2, "male doctor": 1, "female nurse": 1, "male nurse": 0})
    with pytest.warns(UserWarning, match=r"no images of male nurses \(.*nurse/male/ is missing\)"):
        ds = load_bias_folder(tmp_path)
    assert ds.counts() == {"female doctor": 2, "male doctor": 1, "female nurse": 1, "male nurse": 0}
    (tmp_path / "nurse" / "male").mkdir()
    with pytest.warns(UserWarning, match="is empty"):
        load_bias_folder(tmp_path)


def test_folder_names_in_any_case_and_both_cases_refused(tmp_path):
    counts = _gendered(tmp_path)
    (tmp_path / "doctor" / "female").rename(tmp_path / "doctor" / "Female")
    (tmp_path / "nurse").rename(tmp_path / "Nurse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # nothing is missing, so no warning either
        ds = load_bias_folder(tmp_path)
    assert ds.counts() == counts
    _write(tmp_path / "doctor" / "female" / "9.png")   # now Female/ and female/ side by side
    with pytest.raises(ValueError, match=r"both Female/ and female/"):
        load_bias_folder(tmp_path)


def test_missing_class_folder_and_different_sizes(tmp_path):
    _write(tmp_path / "doctor" / "a.png")
    with pytest.raises(FileNotFoundError, match="missing \\['nurse'\\]"):
        load_bias_folder(tmp_path)
    _write(tmp_path / "nurse" / "b.png", shape=(14, 12))
    with pytest.raises(ValueError, match=r"a.png is 12 x 10 but .*b.png is 12 x 14"):
        load_bias_folder(tmp_path, size=None)
    assert load_bias_folder(tmp_path, size=16).images.shape == (2, 3, 16, 16)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bias_folder(tmp_path / "nowhere")


def test_a_corrupt_photo_is_named(tmp_path):
    _gendered(tmp_path)
    (tmp_path / "nurse" / "male" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(UnreadableImageError, match="bad.jpg"):
        load_bias_folder(tmp_path)

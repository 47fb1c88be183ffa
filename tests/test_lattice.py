"""vislib.lattice: periodicity of saliency maps (phase means, eta^2, Fourier peak) and outline regions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import f_oneway
from torch import nn

from vislib import attribution, lattice


# --------------------------------------------------------------------------- phase statistics
def test_phase_means_by_hand():
    m = torch.zeros(1, 4, 4)
    m[0, ::2, ::2] = 1.0                       # 4 of 16 pixels, all in phase (0, 0): mean 0.25
    p = lattice.phase_means(m, 2)
    assert p.shape == (1, 2, 2)
    assert torch.equal(p[0], torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64))


def test_phase_means_of_a_zero_map_are_ones():
    assert torch.equal(lattice.phase_means(torch.zeros(2, 8, 8), 4), torch.ones(2, 4, 4, dtype=torch.float64))


def test_phase_share_by_hand():
    # phases (0,0): 1, 3; (0,1): 2, 4; (1,0): 5, 7; (1,1): 6, 8 -> group means 2, 3, 6, 7, grand mean 4.5
    m = torch.arange(1.0, 9.0).view(1, 2, 4)
    between = 2 * ((2 - 4.5) ** 2 + (3 - 4.5) ** 2 + (6 - 4.5) ** 2 + (7 - 4.5) ** 2)    # 34
    total = sum((v - 4.5) ** 2 for v in range(1, 9))                                     # 42
    assert lattice.phase_share(m, 2).item() == pytest.approx(between / total, abs=1e-12)


def test_phase_share_extremes():
    lat = torch.tensor([[3.0, 1.0], [1.0, 0.0]]).repeat(4, 4)[None]      # constant on each phase
    assert lattice.phase_share(lat, 2).item() == pytest.approx(1.0, abs=1e-12)
    assert lattice.phase_share(torch.full((1, 8, 8), 2.5), 2).item() == 0.0
    # period 4 is a refinement of period 2: a period-2 lattice is also one of period 4
    assert lattice.phase_share(lat, 4).item() == pytest.approx(1.0, abs=1e-12)


def test_phase_share_chance_is_the_permutation_mean():
    # Average eta^2 over all 8! assignments of 8 values to the pixels of a 2x4 map: exactly (K-1)/(N-1).
    values = np.random.default_rng(0).normal(size=8)
    perms = np.array(list(itertools.permutations(range(8))))
    maps = torch.from_numpy(values[perms].reshape(-1, 2, 4))
    mean_share = lattice.phase_share(maps, 2).mean().item()
    assert mean_share == pytest.approx(3 / 7, abs=1e-12)
    assert lattice.phase_share_chance(8, 2).item() == pytest.approx(3 / 7)
    assert lattice.phase_share_chance(64 * 64, 8).item() == pytest.approx(63 / 4095)


def test_phase_share_with_a_mask_agrees_with_scipy_anova():
    gen = torch.Generator().manual_seed(1)
    m = torch.rand(3, 16, 16, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 16, 16, generator=gen) > 0.4
    share = lattice.phase_share(m, 4, mask)
    phase = (torch.arange(16)[:, None] % 4 * 4 + torch.arange(16)[None, :] % 4).flatten()
    for b in range(3):
        v, ph, keep = m[b].flatten().numpy(), phase.numpy(), mask[b].flatten().numpy()
        groups = [v[keep & (ph == k)] for k in range(16)]
        f = f_oneway(*groups).statistic
        n, k = keep.sum(), 16
        eta2 = f * (k - 1) / (f * (k - 1) + (n - k))          # eta^2 from the F statistic
        assert share[b].item() == pytest.approx(eta2, rel=1e-9)


def test_spectral_peak_ratio_matches_numpy_and_sees_stripes():
    gen = torch.Generator().manual_seed(2)
    m = torch.rand(2, 16, 16, generator=gen, dtype=torch.float64)
    got = lattice.spectral_peak_ratio(m, 4)
    for b in range(2):
        a = m[b].numpy() - m[b].numpy().mean()
        power = (np.abs(np.fft.fft(a, axis=1)) ** 2).mean(0) + (np.abs(np.fft.fft(a, axis=0)) ** 2).mean(1)
        assert got[b].item() == pytest.approx(power[4] / ((power[3] + power[5]) / 2), rel=1e-10)
    stripes = m + 5 * torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(8)[None, None, :]   # period 2
    assert (lattice.spectral_peak_ratio(stripes, 2) > 100).all()
    assert lattice.spectral_peak_ratio(torch.ones(1, 8, 8), 2).item() == 1.0


def _window_count(n: int) -> torch.Tensor:
    # How many windows of a 3x3, stride-2, padding-1 convolution cover each of n pixels (one axis).
    count = torch.zeros(n)
    for i in range((n - 1) // 2 + 1):                       # output i reads inputs 2i-1, 2i, 2i+1
        for j in (2 * i - 1, 2 * i, 2 * i + 1):
            if 0 <= j < n:
                count[j] += 1
    return count


def test_strided_convolution_gradient_has_a_period_two_lattice():
    # With all weights 1, dS/dx of S = sum of the conv outputs counts the windows covering each pixel:
    # 1 on even pixels and 2 on odd ones, per axis (the transposed convolution's uneven overlap).
    conv = nn.Conv2d(3, 1, 3, stride=2, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(16 * 16, 1, bias=False))
    nn.init.ones_(model[2].weight)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    g = attribution.gradient(model, x, 0)
    c = _window_count(32)
    assert torch.equal(g[0], c[:, None] * c[None, :])
    assert c[:4].tolist() == [1, 2, 1, 2]
    # the lattice statistics see it: without the last row and column (one window only) the map is
    # constant on each phase, so the phase explains all of its variance; a stride-1 convolution's
    # gradient has no lattice away from the border
    body = torch.zeros_like(g, dtype=torch.bool)
    body[:, :-1, :-1] = True
    assert lattice.phase_share(g, 2, body).item() == pytest.approx(1.0, abs=1e-12)
    assert lattice.phase_share(g, 2).item() > 100 * lattice.phase_share_chance(32 * 32, 2).item()
    stride1 = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32 * 32, 1, bias=False))
    nn.init.ones_(stride1[0].weight)
    nn.init.ones_(stride1[2].weight)
    g1 = attribution.gradient(stride1, x, 0)
    inner = torch.zeros_like(g1, dtype=torch.bool)
    inner[:, 1:-1, 1:-1] = True
    assert lattice.phase_share(g1, 2, inner).item() == 0.0
    assert lattice.spectral_peak_ratio(g, 2).item() > 10 * lattice.spectral_peak_ratio(g1, 2).item()


@pytest.mark.parametrize("bad, match", [
    (torch.rand(8, 8), r"\[B, H, W\]"),
    (torch.ones(1, 8, 8, dtype=torch.long), "floating-point"),
    (torch.full((1, 8, 8), float("nan")), "NaN"),
    (torch.rand(1, 9, 8), "multiple of the period"),
])
def test_phase_statistics_reject_bad_maps(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        lattice.phase_share(bad, 2)


@pytest.mark.parametrize("period", [1, 0, 2.0, True])
def test_bad_period(period):
    with pytest.raises(ValueError, match="period"):
        lattice.phase_means(torch.rand(1, 8, 8), period)


def test_bad_masks_and_sizes():
    m = torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match="shape"):
        lattice.phase_share(m, 2, torch.ones(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="select no pixel"):
        lattice.phase_share(m, 2, torch.zeros(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="square"):
        lattice.spectral_peak_ratio(torch.rand(1, 8, 16), 2)
    with pytest.raises(ValueError, match="more than"):
        lattice.phase_share_chance(4, 2)


# --------------------------------------------------------------------------- outline vs inside
def _square_mask():
    masks = torch.zeros(1, 20, 20, dtype=torch.bool)
    masks[0, 5:15, 5:15] = True                     # a 10 x 10 square
    return masks


def test_boundary_regions_by_hand():
    r = lattice.boundary_regions(_square_mask(), width=1)
    # interior: the square eroded by the radius-1 disk (a plus) = 8 x 8; the dilated square adds a
    # one-pixel rim on each side (no corners): 100 + 40 = 140 pixels; band = 140 - 64.
    assert int(r.interior.sum()) == 64 and int(r.band.sum()) == 76 and int(r.outside.sum()) == 260
    assert torch.equal(r.interior[0, 6:14, 6:14], torch.ones(8, 8, dtype=torch.bool))
    total = r.band.int() + r.interior.int() + r.outside.int()
    assert torch.equal(total, torch.ones_like(total))     # disjoint, and they cover the image


def test_region_density_by_hand():
    r = lattice.boundary_regions(_square_mask(), width=1)
    d = lattice.region_density(r.band.double(), r)             # all the mass on the band
    assert d["band"].item() == pytest.approx(400 / 76)
    assert d["interior"].item() == 0.0 and d["outside"].item() == 0.0
    uniform = lattice.region_density(torch.full((1, 20, 20), 3.0), r)
    assert all(v.item() == pytest.approx(1.0) for v in uniform.values())      # the chance level


def test_region_density_errors_and_empty_regions():
    r = lattice.boundary_regions(_square_mask(), width=1)
    with pytest.raises(ValueError, match="negative"):
        lattice.region_density(-torch.ones(1, 20, 20), r)
    with pytest.raises(ValueError, match="zero everywhere"):
        lattice.region_density(torch.zeros(1, 20, 20), r)
    thin = torch.zeros(1, 20, 20, dtype=torch.bool)
    thin[0, 10, 2:18] = True                        # a one-pixel line has no interior
    r_thin = lattice.boundary_regions(thin, width=2)
    with pytest.warns(RuntimeWarning, match="no interior"):
        d = lattice.region_density(torch.rand(1, 20, 20), r_thin)
    assert d["interior"].isnan().all() and not d["band"].isnan().any()
    with pytest.raises(ValueError, match="empty"):
        lattice.boundary_regions(torch.zeros(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="width"):
        lattice.boundary_regions(_square_mask(), width=0)

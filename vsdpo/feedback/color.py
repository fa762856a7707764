"""Perceptual colour difference: sRGB → CIELAB (D65) and CIEDE2000 ΔE, in numpy.

The reference metrics compare colours of matched chart series and text blocks; CIEDE2000
is the difference ChartMimic and Design2Code use. Implemented from the formula as written
in Sharma, Wu & Dalal (2005), "The CIEDE2000 colour-difference formula: implementation
notes, supplementary test data, and mathematical observations"; tested on their Table 1.

Shapes: `..., 3` — any leading dims, broadcast between the two arguments.
"""

import numpy as np

_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])


def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB in 0–255 (`..., 3`) to CIELAB L*a*b* under D65 (`..., 3`)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    # elementwise, not `@`: BLAS may round differently per shape, and equal colours must
    # give exactly equal Lab (ΔE = 0) however they are broadcast
    xyz = (linear[..., None, :] * _SRGB_TO_XYZ).sum(axis=-1) / _D65_WHITE
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def _hue_deg(b, a_prime):
    h = np.degrees(np.arctan2(b, a_prime))
    h = np.where(h < 0, h + 360.0, h)
    return np.where((a_prime == 0) & (b == 0), 0.0, h)


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 ΔE between L*a*b* colours (`..., 3` each; kL = kC = kH = 1)."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    # a' rescaling: neutral colours get their a* stretched (the G term)
    c_bar7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = _hue_deg(b1, a1p), _hue_deg(b2, a2p)
    chroma_zero = (c1p * c2p) == 0

    # differences; the hue difference wraps into [-180, 180]
    dLp, dCp = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_zero, 0.0, dh)
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))

    # means; the hue mean takes the short way round the circle
    Lbp, Cbp = (L1 + L2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    far = np.abs(h1p - h2p) > 180
    hbp = np.where(far, np.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    hbp = np.where(chroma_zero, hsum, hbp)

    t = (1 - 0.17 * np.cos(np.radians(hbp - 30)) + 0.24 * np.cos(np.radians(2 * hbp))
         + 0.32 * np.cos(np.radians(3 * hbp + 6)) - 0.20 * np.cos(np.radians(4 * hbp - 63)))
    d_theta = 30 * np.exp(-(((hbp - 275) / 25) ** 2))
    cbp7 = Cbp**7
    r_c = 2 * np.sqrt(cbp7 / (cbp7 + 25.0**7))
    s_l = 1 + 0.015 * (Lbp - 50) ** 2 / np.sqrt(20 + (Lbp - 50) ** 2)
    s_c = 1 + 0.045 * Cbp
    s_h = 1 + 0.015 * Cbp * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c

    tl, tc, th = dLp / s_l, dCp / s_c, dHp / s_h
    return np.sqrt(tl**2 + tc**2 + th**2 + r_t * tc * th)


def rgb_delta_e(rgb1, rgb2) -> np.ndarray:
    """CIEDE2000 between sRGB colours (0–255), broadcasting like `ciede2000`."""
    return ciede2000(srgb_to_lab(rgb1), srgb_to_lab(rgb2))


def color_similarity(rgb1, rgb2) -> np.ndarray:
    """1 for equal colours, falling linearly to 0 at ΔE00 = 100 (black vs white)."""
    return np.clip(1.0 - rgb_delta_e(rgb1, rgb2) / 100.0, 0.0, 1.0)

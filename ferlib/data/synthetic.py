"""Synthetic 48x48 grayscale faces whose expressions come from action units (the embedded dataset draws them:
`ferlib.data.embedded`).

Each face is drawn with PIL at 4x resolution and box-downsampled. Its expression is a sample of
FACS-style action-unit (AU) intensities whose distribution depends on the class, so classes overlap
as real ones do (Fear and Surprise share raised brows and an open mouth; Angry and Sad share
lowered brows). Identity (face shape, tone, feature size and spacing, hair), pose (roll, shift,
scale, slight yaw), lighting, background, blur and noise vary per image.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ferlib.classes import STUDY

# Human Face Emotions class shares (31/21/17/16/14 %), normalised so that they sum to 1.
_PERCENT = {"Angry": 17.0, "Fear": 16.0, "Happy": 31.0, "Sad": 21.0, "Surprise": 14.0}
CLASS_PROPORTIONS: dict[str, float] = {c: _PERCENT[c] / sum(_PERCENT.values()) for c in STUDY.names}

EXPRESSIONS: tuple[str, ...] = (*STUDY.names, "neutral")
SUPERSAMPLE = 4

AU_NAMES: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU12", "AU15", "AU20",
                             "AU23", "AU26", "AU43")
# Per class and AU: (probability the AU is present, mean intensity when present, sd). Absent AUs get
# a small |N(0, 0.06)| so that no two faces are exactly neutral. AU43 here means partial lid closure.
EXPRESSION_PROFILES: dict[str, dict[str, tuple[float, float, float]]] = {
    "Happy": {"AU12": (0.95, 0.7, 0.25), "AU6": (0.7, 0.45, 0.25), "AU7": (0.3, 0.3, 0.15),
              "AU26": (0.6, 0.45, 0.2), "AU1": (0.1, 0.2, 0.1), "AU2": (0.1, 0.2, 0.1)},
    "Surprise": {"AU1": (0.9, 0.7, 0.25), "AU2": (0.85, 0.65, 0.25), "AU5": (0.8, 0.6, 0.25),
                 "AU26": (0.8, 0.55, 0.25), "AU4": (0.2, 0.3, 0.15), "AU20": (0.15, 0.3, 0.15)},
    "Fear": {"AU1": (0.85, 0.6, 0.25), "AU2": (0.55, 0.45, 0.25), "AU4": (0.6, 0.45, 0.25),
             "AU5": (0.8, 0.55, 0.25), "AU20": (0.65, 0.5, 0.25), "AU26": (0.75, 0.45, 0.25),
             "AU15": (0.2, 0.3, 0.15), "AU7": (0.15, 0.3, 0.15)},
    "Angry": {"AU4": (0.9, 0.65, 0.25), "AU7": (0.75, 0.5, 0.25), "AU23": (0.55, 0.5, 0.25),
              "AU26": (0.3, 0.4, 0.2), "AU5": (0.25, 0.4, 0.2), "AU15": (0.25, 0.3, 0.15),
              "AU20": (0.2, 0.3, 0.15)},
    "Sad": {"AU1": (0.75, 0.55, 0.25), "AU4": (0.7, 0.45, 0.25), "AU15": (0.75, 0.55, 0.25),
            "AU43": (0.6, 0.45, 0.2), "AU26": (0.1, 0.2, 0.1), "AU20": (0.15, 0.25, 0.1),
            "AU7": (0.2, 0.3, 0.15), "AU23": (0.2, 0.3, 0.15)},
    "neutral": {},
}
_PROFILE_ARRAYS = {e: tuple(np.array([prof.get(au, (0.0, 0.0, 0.0))[i] for au in AU_NAMES])
                             for i in range(3)) for e, prof in EXPRESSION_PROFILES.items()}
# Overall expression strength per face, multiplying every AU: some people barely emote.
_STRENGTH_RANGE = (0.4, 1.1)


def class_counts(n: int) -> dict[str, int]:
    """Return exact per-class image counts for n images (largest-remainder rounding of the shares)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    quotas = np.array([CLASS_PROPORTIONS[c] * n for c in STUDY.names])
    counts = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - counts), kind="stable")  # ties go to the earlier class name
    counts[order[: n - counts.sum()]] += 1
    return {c: int(k) for c, k in zip(STUDY.names, counts)}


def sample_action_units(expression: str, rng: np.random.Generator) -> dict[str, float]:
    """Return one random draw of AU intensities in [0, 1] for an expression (a class or "neutral")."""
    if expression not in EXPRESSION_PROFILES:
        raise ValueError(f"unknown expression {expression!r}; expected one of {EXPRESSIONS}")
    p, mean, sd = _PROFILE_ARRAYS[expression]
    strength = rng.uniform(*_STRENGTH_RANGE)
    draws = rng.standard_normal((2, len(AU_NAMES)))
    present = rng.random(len(AU_NAMES)) < p
    values = np.where(present, (mean + sd * draws[0]) * strength, np.abs(0.06 * draws[1]))
    return dict(zip(AU_NAMES, np.clip(values, 0.0, 1.0).tolist()))


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return x and y coordinate grids in [-1, 1] for a size x size image (shared, do not modify)."""
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return tuple(np.meshgrid(axis, axis))


_CIRCLES = {n: (np.cos(t), np.sin(t)) for n in (10, 12, 14, 20, 40)
            for t in [np.linspace(0, 2 * np.pi, n, endpoint=False)]}
_U7, _U9, _U11, _U15 = (np.linspace(-1, 1, n) for n in (7, 9, 11, 15))
_CROWN = np.linspace(np.pi * 1.02, np.pi * 1.98, 14)
_LID = (1 - _U11 ** 2) ** 0.7

# Identity, pose, background and camera draws: uniform ranges in face units (face half-width ~1),
# pixel tones, or [0, 1) draws that pick a discrete option. All are drawn in one call per face.
_SCENE_RANGES: dict[str, tuple[float, float]] = {
    "fw": (0.88, 1.08), "fh": (1.12, 1.3), "taper": (0.12, 0.4), "skin": (80, 215),
    "es": (0.34, 0.45), "ey": (-0.05, 0.05), "ew": (0.12, 0.17), "eo": (0.32, 0.48),
    "iris": (0.42, 0.58), "bt": (0.035, 0.09), "bg": (0.17, 0.26), "arch": (0.0, 0.06),
    "brow": (0.15, 0.6), "nose": (0.4, 0.48), "nw": (0.09, 0.15), "mouth": (0.26, 0.32),
    "mw": (0.24, 0.34), "ul": (0.03, 0.07), "ll": (0.04, 0.09), "lip": (0.62, 0.88),
    "hair": (10, 60), "hair_pick": (0, 1), "style": (0, 1), "fringe": (0, 1), "hairline": (-0.72, -0.5),
    "teeth": (0, 1), "clothes": (10, 230), "yaw": (-0.15, 0.15), "scale": (0.93, 1.07),
    "bg_tone": (20, 235), "bg_slope": (0, 60), "bg_angle": (0, 2 * np.pi), "bg_edge": (0, 1),
    "bg_edge_at": (-0.8, 0.8), "bg_edge_step": (-70, 70), "blur": (0.0, 0.9), "light": (0.0, 0.35),
    "light_angle": (0, 2 * np.pi), "contrast": (0.7, 1.2), "brightness": (-20, 20), "noise": (1.0, 7.0),
}
_SCENE_LO, _SCENE_HI = (np.array([r[i] for r in _SCENE_RANGES.values()]) for i in (0, 1))


def _scene(rng: np.random.Generator) -> dict[str, float]:
    """Return one random identity, pose, background and camera setting."""
    sc = dict(zip(_SCENE_RANGES, rng.uniform(_SCENE_LO, _SCENE_HI).tolist()))
    roll, dx, dy = rng.standard_normal(3).tolist()
    sc.update(roll=np.deg2rad(min(15.0, max(-15.0, 5 * roll))), dx=0.02 * dx, dy=0.02 * dy)
    if sc["hair_pick"] > 0.9:  # mostly dark hair, some mid-grey, a few blond or grey
        sc["hair"] = 140 + 1.8 * sc["hair"]
    elif sc["hair_pick"] > 0.6:
        sc["hair"] = 60 + 1.6 * sc["hair"]
    sc["style"] = 0 if sc["style"] < 0.15 else 1 if sc["style"] < 0.65 else 2  # none, short, long
    sc["brow"] *= sc["skin"]
    sc["lip"] *= sc["skin"]
    return sc


def _background(sc: dict[str, float], full: int) -> Image.Image:
    """Return a non-uniform grayscale background (gradient, maybe an edge) at render resolution."""
    xs, ys = _grid(full // SUPERSAMPLE)  # drawn at output size: nearest upscaling survives reduce()
    a = sc["bg_angle"]
    base = sc["bg_tone"] + sc["bg_slope"] * (xs * np.cos(a) + ys * np.sin(a))
    if sc["bg_edge"] < 0.5:  # a wall corner, door frame or window edge behind the head
        edge = xs * np.cos(a + 1.3) + ys * np.sin(a + 1.3) > sc["bg_edge_at"]
        base = base + sc["bg_edge_step"] * edge
    low = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    return low.resize((full, full), Image.NEAREST)


class _Sketch:
    """Shapes in face units, mapped to pixels in one vectorised step and then drawn in order."""

    def __init__(self) -> None:
        self.xs, self.ys, self.ops = [], [], []  # ops: (is_line, fill, width, is_feature)

    def add(self, x, y, fill: float, width: float = 0.0, feature: bool = True) -> None:
        """Queue a filled polygon (width 0) or a polyline of the given width in face units."""
        self.xs.append(x)
        self.ys.append(y)
        self.ops.append((width > 0, int(fill), width, feature))

    def ellipse(self, x0: float, y0: float, rx: float, ry: float, fill: float, n: int = 20,
                feature: bool = True) -> None:
        c, s = _CIRCLES[n]
        self.add(x0 + rx * c, y0 + ry * s, fill, feature=feature)

    def draw(self, img: Image.Image, sc: dict[str, float]) -> None:
        """Draw every shape onto img, posed by the scene's roll, yaw, shift and scale."""
        full = img.size[0]
        lengths = [len(x) for x in self.xs]
        x = np.concatenate(self.xs).astype(float)
        y = np.concatenate(self.ys).astype(float)
        feature = np.repeat([op[3] for op in self.ops], lengths)
        yaw = sc["yaw"]  # features squeeze and slide sideways when the head turns; the outline less
        x = np.where(feature, x * (1 - 0.25 * abs(yaw)) + 0.2 * yaw, x - 0.05 * yaw)
        s = 0.42 * full * sc["scale"]
        cx, cy = full * (0.5 + sc["dx"]), full * (0.51 + sc["dy"])
        cos, sin = np.cos(sc["roll"]) * s, np.sin(sc["roll"]) * s
        coords = np.column_stack([cx + cos * x - sin * y, cy + sin * x + cos * y]).ravel().tolist()
        draw = ImageDraw.Draw(img)
        bounds = np.cumsum([0, *lengths]) * 2  # each shape's slice of the flat coordinates
        for (is_line, fill, width, _), start, end in zip(self.ops, bounds, bounds[1:]):
            xy = coords[start:end]
            if is_line:
                draw.line(xy, fill=fill, width=max(1, int(round(width * s))), joint="curve")
            else:
                draw.polygon(xy, fill=fill)


def _sketch_head(k: _Sketch, au: dict[str, float], sc: dict[str, float]) -> None:
    """Add clothes, neck, hair, ears and the face outline, whose chin drops with the jaw (AU26)."""
    skin, fw, fh, hair, style, yaw = sc["skin"], sc["fw"], sc["fh"], sc["hair"], sc["style"], sc["yaw"]
    opening = 0.5 * au["AU26"]

    # Clothes, neck, hair behind the head, ears.
    k.ellipse(0, 2.35, 2.3, 0.95, sc["clothes"], feature=False)
    k.add([-0.42, 0.42, 0.5, -0.5], [0.5, 0.5, 2.0, 2.0], skin * 0.72, feature=False)
    c, s = _CIRCLES[20]
    if style == 1:
        k.add(fw * 1.08 * c, fh * 0.98 * s - 0.22, hair, feature=False)
    elif style == 2:
        k.add(fw * 1.2 * c, np.minimum(fh * 1.2 * s + 0.1, 1.5), hair, feature=False)
    for sgn in (-1, 1):
        k.ellipse(sgn * fw * 0.97, sc["ey"] + 0.2, 0.12, 0.22, skin * 0.8, 12, feature=False)

    # Face: egg shape with a tapering chin that drops with the jaw (AU26); shaded rim, lit centre.
    fx, fy = _CIRCLES[40][0].copy(), _CIRCLES[40][1].copy()
    lower = fy > 0
    fx[lower] *= 1 - sc["taper"] * fy[lower] ** 2
    fx, fy = fx * fw, fy * fh
    fy[lower] += 0.7 * opening * (fy[lower] / fh) ** 2
    light = 0.08 if yaw >= 0 else -0.08
    for scale, tone in ((1.0, 0.8), (0.94, 0.9), (0.84, 1.0)):
        k.add(fx * scale + light * (1 - scale) * 6, fy * scale - 0.2 * (1 - scale), skin * tone,
              feature=False)

    # Hairline: a cap over the top of the head, lower and ragged for a fringe.
    if style:
        line_x = -fw * 0.93 * _U9
        if sc["fringe"] < 0.3:
            line_y = sc["hairline"] + 0.06 * np.sin(line_x * 14) - 0.25 * (line_x / fw) ** 4
        else:
            line_y = -0.85 - 0.05 * np.cos(line_x * 3) + 0.3 * (line_x / fw) ** 2
        k.add(np.r_[fw * 1.02 * np.cos(_CROWN), line_x], np.r_[fh * 1.02 * np.sin(_CROWN), line_y], hair,
              feature=False)


def _sketch_eyes(k: _Sketch, au: dict[str, float], sc: dict[str, float]) -> None:
    """Add forehead lines, eyes and brows."""
    skin, yaw = sc["skin"], sc["yaw"]
    ey, es, ew = sc["ey"], sc["es"], sc["ew"]
    brow_y = ey - sc["bg"]
    # Forehead wrinkles with raised brows (AU1+2), frown lines with lowered brows (AU4).
    raised = 0.6 * au["AU1"] + 0.4 * au["AU2"]
    if raised > 0.3:
        x = 0.35 * _U7
        for row in range(2):
            k.add(x, brow_y - 0.32 - 0.1 * row + 0.04 * (x / 0.35) ** 2, skin * (1 - 0.3 * raised), 0.025)
    if au["AU4"] > 0.35:
        for sgn in (-1, 1):
            k.add([sgn * 0.05, sgn * 0.04], [brow_y - 0.02, brow_y + 0.1], skin * (1 - 0.3 * au["AU4"]),
                  0.025)

    # Eyes: socket shadow (deeper under lowered brows), cheek lit when raised (AU6), almond opened by
    # AU5 and closed by AU7/AU6/AU43, iris clipped to the lids.
    open_up = min(2.2, max(0.12, 1 + 0.9 * au["AU5"] - 0.45 * au["AU7"] - 0.3 * au["AU6"] - 0.6 * au["AU43"]))
    open_lo = min(1.5, max(0.12, 1 + 0.2 * au["AU5"] - 0.55 * au["AU7"] - 0.6 * au["AU6"]))
    up, lo = ew * sc["eo"] * open_up, ew * sc["eo"] * 0.75 * open_lo
    upper, lower = ey - up * _LID, ey + lo * _LID
    ic, is_ = _CIRCLES[14]
    for sgn in (-1, 1):
        ex = sgn * es
        xs = ex + ew * _U11
        k.ellipse(ex, ey - 0.03, ew * 1.5, ew * 1.1, skin * (0.9 - 0.12 * au["AU4"] - 0.06 * au["AU7"]), 14)
        k.ellipse(ex * 1.05, ey + 0.3, 0.2, 0.12, min(255.0, skin * (1 + 0.15 * au["AU6"])), 12)
        k.add(np.r_[xs, xs[::-1]], np.r_[upper, lower[::-1]], min(255.0, skin + (255 - skin) * 0.5))
        iu = np.minimum(1.0, np.maximum(-1.0, 0.75 * yaw + sc["iris"] * ic))
        ip = (1 - iu ** 2) ** 0.7
        iris_y = np.minimum(ey + lo * ip, np.maximum(ey - up * ip, ey + ew * sc["iris"] * is_))
        k.add(ex + ew * iu, iris_y, skin * 0.2)
        k.add(xs, upper, skin * 0.25, 0.03)
        if open_up < 1.5:
            k.add(xs[1:-1], upper[1:-1] - 0.05, skin * 0.75, 0.02)
        k.add(xs[2:-2], lower[2:-2] + 0.05, skin * (0.9 - 0.25 * au["AU6"]), 0.025)

        # Brows: AU1 lifts the inner end, AU2 the outer end, AU4 lowers them and pulls them together.
        k.add([sgn * (es - 1.1 * ew + 0.06 * au["AU4"]), sgn * (es + 0.1 * ew), sgn * (es + 1.4 * ew)],
               [brow_y + 0.02 - 0.22 * au["AU1"] + 0.14 * au["AU4"],
                brow_y - sc["arch"] - 0.1 * au["AU1"] - 0.14 * au["AU2"] + 0.09 * au["AU4"],
                brow_y + 0.04 - 0.16 * au["AU2"] + 0.03 * au["AU4"]], sc["brow"], sc["bt"])


def _sketch_nose_mouth(k: _Sketch, au: dict[str, float], sc: dict[str, float]) -> None:
    """Add the nose, the folds around the mouth and the lips, teeth or seam."""
    skin, ey = sc["skin"], sc["ey"]
    opening = 0.5 * au["AU26"]
    # Nose: side shadow, tip shadow and nostrils.
    ny, nw = ey + sc["nose"], sc["nw"]
    side = 1 if sc["yaw"] >= 0 else -1
    k.add([side * 0.06, side * nw * 0.9], [ey + 0.08, ny - 0.06], skin * 0.8, 0.04)
    k.add([-nw, 0, nw], [ny - 0.02, ny + 0.04, ny - 0.02], skin * 0.72, 0.03)
    for sgn in (-1, 1):
        k.ellipse(sgn * nw * 0.55, ny, 0.045, 0.022, skin * 0.45, 10)

    # Mouth: AU12 lifts and widens the corners, AU15 drops them, AU20 stretches them sideways into a
    # rectangle, AU23 presses the lips thin, AU26 opens the jaw.
    my = ny + sc["mouth"]
    mw = sc["mw"] * (1 + 0.18 * au["AU12"] + 0.28 * au["AU20"] - 0.12 * au["AU23"]
                     - 0.15 * au["AU26"] * (1 - au["AU20"]))
    dy = -0.22 * au["AU12"] + 0.16 * au["AU15"] + 0.03 * au["AU20"]
    mx = mw * _U15
    prof = 1 - np.abs(_U15) ** (2 + 3 * au["AU20"])
    seam = my + dy * _U15 ** 2
    up_in, lo_in = seam - opening * 0.3 * prof, seam + opening * 0.7 * prof
    thick = (1 - 0.7 * au["AU23"]) * np.sqrt(prof)
    for sgn in (-1, 1):  # nasolabial folds deepen with a smile; marionette lines with AU15
        if au["AU12"] > 0.25:
            k.add([sgn * (nw + 0.04), sgn * (nw + 0.13), sgn * (mw + 0.06)],
                  [ny - 0.02, ny + 0.12, my + dy + 0.06], skin * (1 - 0.3 * au["AU12"]), 0.03)
        if au["AU15"] > 0.3:
            k.add([sgn * (mw + 0.01), sgn * (mw + 0.04)], [my + dy + 0.02, my + dy + 0.16],
                   skin * (1 - 0.25 * au["AU15"]), 0.025)
    lips_y = np.r_[up_in - sc["ul"] * thick, (lo_in + sc["ll"] * thick)[::-1]]
    k.add(np.r_[mx, mx[::-1]], lips_y, sc["lip"])
    if opening > 0.03:
        k.add(np.r_[mx, mx[::-1]], np.r_[up_in, lo_in[::-1]], skin * 0.15)
        if sc["teeth"] < 0.7:
            teeth = np.minimum(up_in + opening * (0.25 + 0.4 * au["AU12"]) * prof, lo_in)
            k.add(np.r_[mx[2:-2], mx[-3:1:-1]], np.r_[up_in[2:-2], teeth[-3:1:-1]],
                  min(255.0, skin * 1.1 + 30))
    else:
        k.add(mx, seam, skin * 0.3, 0.025)


def render_face(expression: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Return one synthetic face as a uint8 (size, size) array; expression is a class or "neutral"."""
    au = sample_action_units(expression, rng)
    sc = _scene(rng)
    img = _background(sc, size * SUPERSAMPLE)
    sketch = _Sketch()  # the head (clothes, hair, face), then its features, in face units and drawing order
    for part in (_sketch_head, _sketch_eyes, _sketch_nose_mouth):
        part(sketch, au, sc)
    sketch.draw(img, sc)
    small = img.reduce(SUPERSAMPLE)
    if sc["blur"] > 0.2:
        small = small.filter(ImageFilter.GaussianBlur(sc["blur"]))
    arr = np.asarray(small, dtype=np.float32)
    xs, ys = _grid(size)
    a = sc["light_angle"]
    arr = arr * (1 + sc["light"] * (xs * np.cos(a) + ys * np.sin(a)))
    mean = arr.mean()
    arr = (arr - mean) * sc["contrast"] + mean + sc["brightness"]
    arr += rng.normal(0.0, sc["noise"], arr.shape).astype(np.float32)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def draw_faces(counts: dict[str, int], names: tuple[str, ...], rng: np.random.Generator,
              size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (faces, label indices into names) with counts[name] of each, in a random order."""
    labels = rng.permutation(np.repeat(np.arange(len(names), dtype=np.int64), [counts[c] for c in names]))
    images = np.empty((len(labels), size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = render_face(names[label], rng, size)
    return images, labels


def generate_faces(n: int, seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (n, size, size), labels int64 into STUDY.names) in a seeded shuffled order."""
    return draw_faces(class_counts(n), STUDY.names, np.random.default_rng(seed), size)

"""From a loaded scan to the model's input, keeping every intermediate image for display.

grayscale -> blur -> Otsu threshold -> largest contour -> square crop with margin -> resize
-> intensity normalisation. Pure NumPy/OpenCV; no TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

DEFAULT_SIZE = 128
CROP_MARGIN = 0.06  # fraction of the brain box added on each side
MIN_BRAIN_FRACTION = 0.03  # a contour smaller than this share of the image is not a brain


@dataclass(frozen=True)
class CropBox:
    """Square crop in original pixel coordinates; may extend past the image (zero padded)."""

    x0: int
    y0: int
    side: int

    @property
    def x1(self) -> int:
        return self.x0 + self.side

    @property
    def y1(self) -> int:
        return self.y0 + self.side


@dataclass
class Prepared:
    input: np.ndarray  # float32, size x size x 1, in [0, 1]
    box: CropBox
    original_shape: tuple[int, int]
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (caption, uint8 image)
    notes: list[str] = field(default_factory=list)
    brain_found: bool = True


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """H x W or H x W x C array (any range) -> float32 H x W in [0, 1]."""
    img = np.asarray(pixels, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]
    lo, hi = float(img.min()), float(img.max())
    if hi > 1.0 or lo < 0.0:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


def as_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def blur(gray8: np.ndarray) -> np.ndarray:
    k = max(3, (min(gray8.shape) // 64) | 1)  # odd kernel that grows with the image
    return cv2.GaussianBlur(gray8, (k, k), 0)


def otsu_mask(blurred8: np.ndarray) -> np.ndarray:
    _, mask = cv2.threshold(blurred8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Close small gaps (sulci, dark lesions) so the brain is one contour.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)


def largest_contour(mask: np.ndarray) -> np.ndarray | None:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    return max(contours, key=cv2.contourArea)


def brain_box(contour: np.ndarray | None, shape: tuple[int, int], margin: float = CROP_MARGIN) -> CropBox | None:
    """Square box around a plausible brain contour, or None when there is none."""
    h, w = shape
    if contour is None or cv2.contourArea(contour) < MIN_BRAIN_FRACTION * h * w:
        return None
    x, y, bw, bh = cv2.boundingRect(contour)
    side = int(round(max(bw, bh) * (1 + 2 * margin)))
    cx, cy = x + bw / 2, y + bh / 2
    return CropBox(int(round(cx - side / 2)), int(round(cy - side / 2)), max(side, 1))


def whole_image_box(shape: tuple[int, int]) -> CropBox:
    h, w = shape
    side = max(h, w)
    return CropBox((w - side) // 2, (h - side) // 2, side)


def crop_square(img: np.ndarray, box: CropBox) -> np.ndarray:
    """Cut box out of img, padding with zeros where the box leaves the image."""
    h, w = img.shape[:2]
    out = np.zeros((box.side, box.side) + img.shape[2:], dtype=img.dtype)
    sx0, sy0 = max(box.x0, 0), max(box.y0, 0)
    sx1, sy1 = min(box.x1, w), min(box.y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - box.y0 : sy1 - box.y0, sx0 - box.x0 : sx1 - box.x0] = img[sy0:sy1, sx0:sx1]
    return out


def resize(img: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def normalize_intensity(img: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Percentile stretch over the non-background pixels, so scanners and sequences share one range."""
    fg = img[img > 0.02]
    if fg.size < 16:
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    lo, hi = np.percentile(fg, [low, high])
    if hi - lo < 1e-6:
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def prepare(pixels: np.ndarray, size: int = DEFAULT_SIZE, keep_steps: bool = True) -> Prepared:
    """Run every preprocessing step on one image; see the module docstring."""
    gray = to_gray(pixels)
    gray8 = as_uint8(gray)
    blurred = blur(gray8)
    mask = otsu_mask(blurred)
    contour = largest_contour(mask)
    box = brain_box(contour, gray.shape)
    notes: list[str] = []
    if box is None:
        box = whole_image_box(gray.shape)
        notes.append("No plausible brain outline was found, so the whole image was used.")
    cropped = crop_square(gray, box)
    resized = resize(cropped, size)
    normalized = normalize_intensity(resized)
    prepared = Prepared(
        input=normalized[..., None].astype(np.float32),
        box=box,
        original_shape=gray.shape,
        notes=notes,
        brain_found=not notes,
    )
    if keep_steps:
        outlined = cv2.cvtColor(gray8, cv2.COLOR_GRAY2RGB)
        if contour is not None:
            thickness = max(1, min(gray.shape) // 150)
            cv2.drawContours(outlined, [contour], -1, (0, 220, 90), thickness)
            cv2.rectangle(outlined, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), (255, 170, 0), thickness)
        prepared.steps = [
            ("1. Grayscale", gray8),
            ("2. Blurred", blurred),
            ("3. Otsu threshold", mask),
            ("4. Largest contour and crop box", outlined),
            (f"5. Cropped and resized to {size}x{size}", as_uint8(resized)),
            ("6. Intensity normalised (model input)", as_uint8(normalized)),
        ]
    return prepared


def strip_skull(pixels: np.ndarray, depth: float = 0.15) -> np.ndarray:
    """A crude skull strip: keep the part of the head outline that lies deeper than `depth` times the
    outline's largest inscribed radius; everything else becomes 0.

    Not an anatomical brain extraction: it peels a ring of roughly scalp-and-skull thickness off the
    head so a training image looks like the skull-stripped volumes of research collections (BRATS).
    Returns the grayscale image unchanged when no head outline is found."""
    gray = to_gray(pixels)
    contour = largest_contour(otsu_mask(blur(as_uint8(gray))))
    if contour is None:
        return gray
    filled = np.zeros(gray.shape, np.uint8)
    cv2.drawContours(filled, [contour], -1, 255, thickness=-1)
    depth_map = cv2.distanceTransform(filled, cv2.DIST_L2, 5)  # distance to the outline, inside it
    return np.where(depth_map > depth * depth_map.max(), gray, 0.0).astype(np.float32)


def to_original(heat: np.ndarray, box: CropBox, original_shape: tuple[int, int]) -> np.ndarray:
    """Map a model-space map (size x size) back onto the original image by undoing resize and crop."""
    h, w = original_shape
    up = cv2.resize(heat.astype(np.float32), (box.side, box.side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((h, w), dtype=np.float32)
    sx0, sy0 = max(box.x0, 0), max(box.y0, 0)
    sx1, sy1 = min(box.x1, w), min(box.y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0:sy1, sx0:sx1] = up[sy0 - box.y0 : sy1 - box.y0, sx0 - box.x0 : sx1 - box.x0]
    return out

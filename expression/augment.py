"""Training-time augmentation of 48x48 faces: one affine warp per image plus random erasing.

Flip, shift, small rotation and zoom are folded into a single 2x3 matrix, so each image
is resampled once (cv2.warpAffine, ~10 us); erasing is one vectorised mask for the batch.

robust=True adds what separates webcam and web photos from FER2013 besides framing: a
random gamma (exposure curves), lower resolution (small faces scaled up) and sensor noise.
jpeg > 0 re-encodes that share of the images as JPEG at a random quality, as video and web
photos are compressed. mixup() blends pairs of images and their targets, a regulariser for a
net that fits its training faces better than new ones.
"""
import cv2
import numpy as np

from .data import IMAGE_SIZE


def augment(images, rng, shift=0.1, rotate=10.0, zoom=0.1, flip=True, erase=0.5, robust=False, jpeg=0.0):
    """uint8 (N, 48, 48, 1) -> float32 (N, 48, 48, 1) in 0..255, randomly transformed."""
    n, size = len(images), IMAGE_SIZE
    angles = rng.uniform(-rotate, rotate, n)
    scales = rng.uniform(1 - zoom, 1 + zoom, n)
    shifts = rng.uniform(-shift, shift, (n, 2)) * size
    flips = flip & (rng.random(n) < 0.5)
    centre = ((size - 1) / 2, (size - 1) / 2)
    out = np.empty((n, size, size, 1), np.float32)
    for i in range(n):
        matrix = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
        matrix[:, 2] += shifts[i]
        if flips[i]:  # mirror after the warp: x -> (size - 1) - x
            matrix[0] = -matrix[0]
            matrix[0, 2] += size - 1
        # Reflecting the border keeps face-like texture instead of black wedges.
        out[i, :, :, 0] = cv2.warpAffine(images[i, :, :, 0], matrix, (size, size),
                                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if robust:
        _degrade(out, rng)
    if jpeg > 0:
        _compress(out, rng, jpeg)
    if erase > 0:
        _erase(out, rng, erase)
    return out


def _degrade(images, rng, low_res=0.25, noise=0.25):
    """In place: gamma 0.67-1.5 on every image; a `low_res` share shrunk to 14-36 px and scaled
    back up; a `noise` share given Gaussian noise of sigma 2-10 grey levels."""
    n, size = len(images), images.shape[1]
    for i in np.flatnonzero(rng.random(n) < low_res):
        small = int(rng.integers(14, 37))
        shrunk = cv2.resize(images[i, :, :, 0], (small, small), interpolation=cv2.INTER_AREA)
        images[i, :, :, 0] = cv2.resize(shrunk, (size, size), interpolation=cv2.INTER_LINEAR)
    gamma = np.exp(rng.uniform(np.log(1 / 1.5), np.log(1.5), n)).astype(np.float32)
    np.clip(images, 0, 255, out=images)
    images[:] = 255 * (images / 255) ** gamma[:, None, None, None]
    noisy = (rng.random(n) < noise)[:, None, None, None]
    sigma = rng.uniform(2, 10, n).astype(np.float32)[:, None, None, None]
    images += noisy * sigma * rng.standard_normal(images.shape, dtype=np.float32)
    np.clip(images, 0, 255, out=images)


def _compress(images, rng, share, qualities=(20, 90)):
    """In place: a `share` of the images JPEG-encoded at a random quality and decoded again.

    Webcams send MJPG or H.264 and web photos are JPEGs; a net trained only on FER2013's own
    JPEGs loses 3 points on real faces re-encoded at quality 75 (docs/experiments.md)."""
    for i in np.flatnonzero(rng.random(len(images)) < share):
        quality = int(rng.integers(qualities[0], qualities[1] + 1))
        pixels = np.clip(images[i, :, :, 0], 0, 255).astype(np.uint8)
        _, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
        images[i, :, :, 0] = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def _erase(images, rng, probability, min_side=0.15, max_side=0.4):
    """Random erasing: a rectangle of random grey on a `probability` share of the images."""
    n, size = len(images), images.shape[1]
    h = (rng.uniform(min_side, max_side, n) * size).astype(int)
    w = (rng.uniform(min_side, max_side, n) * size).astype(int)
    y0 = rng.integers(0, size - h + 1)
    x0 = rng.integers(0, size - w + 1)
    grey = rng.uniform(0, 255, n).astype(np.float32)
    chosen = rng.random(n) < probability
    rows = np.arange(size)[None, :, None]
    cols = np.arange(size)[None, None, :]
    mask = ((rows >= y0[:, None, None]) & (rows < (y0 + h)[:, None, None])
            & (cols >= x0[:, None, None]) & (cols < (x0 + w)[:, None, None]) & chosen[:, None, None])
    images[..., 0] = np.where(mask, grey[:, None, None], images[..., 0])


def mixup(images, targets, rng, alpha):
    """Blend each image and target with another of the batch: weight w ~ Beta(alpha, alpha) on its own.

    Zhang et al.'s mixup: the net is trained on straight lines between faces, which keeps it
    from memorising single training faces. alpha = 0 returns the batch as it is, drawing nothing.
    """
    if alpha <= 0:
        return images, targets
    n = len(images)
    partner = rng.permutation(n)
    weight = rng.beta(alpha, alpha, n).astype(np.float32)
    blended = weight[:, None, None, None] * images + (1 - weight[:, None, None, None]) * images[partner]
    return blended.astype(np.float32), weight[:, None] * targets + (1 - weight[:, None]) * targets[partner]

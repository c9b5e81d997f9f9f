"""Tiny stand-in networks and in-memory batches for the training tests (shared by several files)."""

import keras
import numpy as np
import tensorflow as tf

from models.shm import SemanticHumanMatting
from shm.training.options import TrainOptions
from shm.trimap import to_one_hot, trimap_from_alpha


def disc_batches(n: int = 8, size: int = 16, seed: int = 0) -> dict:
    """`n` samples of soft discs on noisy backgrounds, with every key of the M-Net / SHM pipelines."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    alphas, images = [], []
    for _ in range(n):
        cx, cy, radius = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        alpha = np.clip((radius - np.hypot(xx - cx, yy - cy)) / 0.08 + 0.5, 0, 1)[..., None]
        colour, background = rng.uniform(0, 1, 3), rng.uniform(0, 0.5, (size, size, 3))
        alphas.append(alpha)
        images.append(alpha * colour + (1 - alpha) * background)
    alphas, images = np.float32(alphas), np.float32(images)
    trimaps = np.stack([to_one_hot(trimap_from_alpha(alpha, 2)).numpy() for alpha in alphas])
    return {"image": images, "trimap": trimaps, "alpha": alphas, "fg": images, "bg": images,
            "has_fg_bg": np.zeros(n, np.float32)}


def dataset(arrays: dict, batch_size: int = 4, keys=None) -> tf.data.Dataset:
    keys = keys or tuple(arrays)
    return tf.data.Dataset.from_tensor_slices({key: arrays[key] for key in keys}).batch(batch_size)


def engine_options(out_dir, epochs: int, **kwargs) -> TrainOptions:
    """The options of an engine-only run (`fit_stage` on in-memory data): no data folder, a quick
    rate, no TensorBoard, silent."""
    return TrainOptions(data_dir=(), out_dir=out_dir, epochs=epochs, lr=1e-2,
                        **{"tensorboard": False, "verbose": 0, **kwargs})


def tiny_tnet(input_size: int | None = None) -> keras.Model:
    """A two-conv T-Net of softmax (B, U, F) probabilities, of any size or `input_size` square."""
    image = keras.Input((input_size, input_size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    return keras.Model(image, keras.layers.Conv2D(3, 3, padding="same", activation="softmax")(x), name="tiny_tnet")


def tiny_mnet() -> keras.Model:
    inputs = keras.Input((None, None, 6))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x), name="tiny_mnet")


def tiny_shm() -> keras.Model:
    """The SHM model of models/shm.py with the tiny stages: dict outputs trimap / alpha_raw / alpha."""
    return SemanticHumanMatting(tiny_tnet(), tiny_mnet(), name="tiny_shm")


def write_disc_folder(folder, n: int = 8, size: int = 64, seed: int = 0):
    """A data folder (image/, alpha/ PNGs) of `disc_batches` samples, as the stage scripts read it."""
    from shm.io import write_png_atomic

    arrays = disc_batches(n, size, seed)
    for index in range(n):
        write_png_atomic(folder / "image" / f"{index}.png", arrays["image"][index])
        write_png_atomic(folder / "alpha" / f"{index}.png", arrays["alpha"][index])
    return folder

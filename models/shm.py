"""The whole Semantic Human Matting model: T-Net -> (image, trimap) -> M-Net -> fusion.

Example:
    model = SemanticHumanMatting.from_preset("lite", input_size=320)
    outputs = model(images)  # {"trimap": (B,320,320,3), "alpha_raw": (B,320,320,1), "alpha": ...}
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import keras
from keras import layers

import models
import models.light_tnet  # noqa: F401  registers the T-Nets' classes, so that .keras files load
import models.pspnet50  # noqa: F401
from models.fusion import Fusion
from models.layers import Normalize, Resize, ResizeLike
from models.mnet import SIZE_MULTIPLE, MNet
from models.presets import PRESETS


def tnet_on_rgb(tnet: keras.Model, image: keras.KerasTensor, tnet_size: int | None = None,
                tnet_mean: Sequence[float] | None = None, tnet_std: Sequence[float] | None = None) -> keras.KerasTensor:
    """The T-Net's (B, H, W, 3) probabilities of `image` (a Keras tensor of RGB [0, 1] at the
    model's size): the SHM graph's T-Net path, and stage 1's network (`shm.training.stages`).

    `tnet_size`: the T-Net's own working size; the image is resized to it and the probabilities
    back to the image's size. `tnet_mean` / `tnet_std`: a `Normalize` in front of a T-Net that
    takes preprocessed input. Without either the T-Net sees `image` as it is.
    """
    tnet_input = image
    if tnet_size is not None:
        tnet_input = Resize(tnet_size, tnet_size, name="tnet_resize")(image)
    if tnet_mean is not None:
        tnet_input = Normalize(tnet_mean, tnet_std, name="tnet_normalize")(tnet_input)
    trimap = tnet(tnet_input)
    if tnet_size is not None:
        # Bilinear weights sum to 1, so the resized probabilities still sum to 1.
        trimap = ResizeLike(name="trimap_resize")([trimap, image])
    return trimap


@keras.saving.register_keras_serializable(package="shm")
class SemanticHumanMatting(keras.Model):
    """SHM built from a T-Net and an M-Net instance (their weights are this model's weights).

    Input `image`: (B, H, W, 3) RGB float32 in [0, 1], H = W = `input_size` (a multiple of 16)
    or any valid size when `input_size` is None. Outputs a dict: `trimap` (B, H, W, 3) softmax
    probabilities (Background, Uncertain, Foreground), `alpha_raw` (B, H, W, 1) the M-Net's
    matte, `alpha` (B, H, W, 1) the fused matte `F + U * alpha_raw`.

    `tnet_size`: the T-Net's own working size; the image is resized to it inside the graph and
    the probabilities resized back to H, W (None: the T-Net runs on the image as it is).
    `tnet_mean` / `tnet_std`: a `Normalize` in front of the T-Net, for T-Nets that take
    preprocessed input (PSPNet-50); None when the T-Net takes RGB [0, 1] itself.
    `model.tnet` and `model.mnet` are the two stages, e.g. for `model.tnet.load_weights(...)`.
    `preset`: the name of the preset the model was built from (`from_preset`), None for others;
    kept in the config so exports and inference find the preset's sizes.
    """

    def __init__(
        self,
        tnet: keras.Model,
        mnet: keras.Model,
        tnet_size: int | None = None,
        tnet_mean: Sequence[float] | None = None,
        tnet_std: Sequence[float] | None = None,
        input_size: int | None = None,
        preset: str | None = None,
        **kwargs,
    ):
        if input_size is not None and input_size % SIZE_MULTIPLE:
            raise ValueError(f"SHM input_size must be a multiple of {SIZE_MULTIPLE}, got {input_size}")
        if (tnet_mean is None) != (tnet_std is None):
            raise ValueError("give both tnet_mean and tnet_std, or neither")

        image = keras.Input((input_size, input_size, 3), name="image")
        trimap = tnet_on_rgb(tnet, image, tnet_size, tnet_mean, tnet_std)
        alpha_raw = mnet(layers.Concatenate(name="image_and_trimap")([image, trimap]))
        alpha = Fusion(name="fusion")([trimap, alpha_raw])
        outputs = {
            "trimap": layers.Identity(name="trimap")(trimap),
            "alpha_raw": layers.Identity(name="alpha_raw")(alpha_raw),
            "alpha": layers.Identity(name="alpha")(alpha),
        }
        kwargs.setdefault("name", "shm")
        super().__init__(inputs=image, outputs=outputs, **kwargs)

        self.tnet = tnet
        self.mnet = mnet
        self.tnet_size = tnet_size
        self.tnet_mean = None if tnet_mean is None else [float(m) for m in tnet_mean]
        self.tnet_std = None if tnet_std is None else [float(s) for s in tnet_std]
        self.input_size = input_size
        self.preset = preset

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "tnet": keras.saving.serialize_keras_object(self.tnet),
            "mnet": keras.saving.serialize_keras_object(self.mnet),
            "tnet_size": self.tnet_size,
            "tnet_mean": self.tnet_mean,
            "tnet_std": self.tnet_std,
            "input_size": self.input_size,
            "preset": self.preset,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SemanticHumanMatting":
        config = dict(config)
        if "preset" not in config:
            # Files saved before the preset was part of the config (the shipped shm_lite.keras
            # among them) name their model `shm_<preset>`.
            named = re.fullmatch(r"shm_(\w+)", config.get("name", ""))
            config["preset"] = named.group(1) if named and named.group(1) in PRESETS else None
        config["tnet"] = keras.saving.deserialize_keras_object(config["tnet"])
        config["mnet"] = keras.saving.deserialize_keras_object(config["mnet"])
        return cls(**config)


    @classmethod
    def from_preset(
        cls,
        preset: str = "lite",
        input_size: int | None = None,
        tnet: keras.Model | None = None,
        mnet: keras.Model | None = None,
        **overrides,
    ) -> "SemanticHumanMatting":
        """The model of a preset (`models.presets.PRESETS`), with random weights.

        `input_size`: the M-Net working size (a multiple of the preset's `size_multiple`), or None
        for any valid size. `tnet` / `mnet`: existing stages to use instead of new ones (e.g. trained
        in stages 1 and 2). `overrides`: preset settings to replace, e.g. `mnet_kwargs={...}`.
        """
        settings = resolve_preset(preset, **overrides)
        multiple = settings["size_multiple"]
        if input_size is not None and input_size % multiple:
            raise ValueError(f"preset {preset!r} needs input_size to be a multiple of {multiple}, got {input_size}")
        if tnet is None:
            tnet_kwargs = dict(settings["tnet_kwargs"])
            if settings["tnet_size"] is None:
                tnet_kwargs["input_size"] = input_size
            tnet = settings["tnet_builder"](**tnet_kwargs)
        if mnet is None:
            mnet = MNet(input_size=input_size, **settings["mnet_kwargs"])
        return cls(
            tnet=tnet,
            mnet=mnet,
            tnet_size=settings["tnet_size"],
            tnet_mean=settings["tnet_mean"],
            tnet_std=settings["tnet_std"],
            input_size=input_size,
            preset=preset,
            name=f"shm_{preset}",
        )


def resolve_preset(preset: str, **overrides) -> dict[str, Any]:
    """The preset's settings with `overrides` applied, plus `tnet_builder`: the function its `tnet`
    names. Dict settings (`tnet_kwargs`, `mnet_kwargs`) are updated key by key, so
    `tnet_kwargs={"backbone_weights": None}` keeps the other keys."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    settings = dict(PRESETS[preset])
    for key, value in overrides.items():
        if key not in settings:
            raise ValueError(f"preset {preset!r} has no setting {key!r}; settings: {sorted(settings)}")
        if isinstance(settings[key], dict) and isinstance(value, dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    settings["tnet_builder"] = getattr(models, settings["tnet"])
    return settings


def build_shm(preset: str = "lite", input_size: int | None = None, tnet: keras.Model | None = None,
              mnet: keras.Model | None = None, **overrides) -> SemanticHumanMatting:
    """`SemanticHumanMatting.from_preset(...)`."""
    return SemanticHumanMatting.from_preset(preset, input_size=input_size, tnet=tnet, mnet=mnet, **overrides)

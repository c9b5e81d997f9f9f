"""Reading photos and alphas robustly, writing outputs atomically.

Every reader returns plain numpy arrays and raises `ImageReadError` (a `ValueError`) whose message
names the file and the problem, so command-line tools can print one line and go on.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC / HEIF photos (phones) when the pillow-heif package is installed (requirements.txt)
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_EXTENSIONS: tuple[str, ...] = (".heic", ".heif")
except ImportError:
    HEIF_EXTENSIONS = ()

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp") + HEIF_EXTENSIONS
# The grey levels of trimap PNG files for the classes 0 Background, 1 Uncertain, 2 Foreground.
TRIMAP_PNG_VALUES = (0, 128, 255)

# The largest photo read by default: inference needs about 30 bytes of memory per pixel
# (docs/benchmarks.md, "Memory per pixel"), so 64 MP (phone and most camera photos) stays under 2 GB;
# `set_max_pixels` (inference.py --max-pixels) raises it. Pillow refuses larger files when it opens
# them, before decoding anything (a 200 KB PNG can hold 200 MP: a decompression bomb).
DEFAULT_MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


def set_max_pixels(pixels: int) -> None:
    """The largest image (width x height) the readers accept, for this process."""
    if pixels < 1:
        raise ValueError(f"the pixel limit must be at least 1, got {pixels}")
    Image.MAX_IMAGE_PIXELS = int(pixels)


class ImageReadError(ValueError):
    """A file that cannot be read as an image; the message names the file and the reason."""


def _open(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return _load(path, path)


def _load(source: Path | io.BytesIO, name: str | os.PathLike) -> Image.Image:
    """Decode a file or a buffer; `name` is the file the messages name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            image.load()
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not an image file (format not recognised)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels[1]) / 1e6:g} MP, " if pixels else ""
        raise ImageReadError(f"{name}: {size}over the limit of {Image.MAX_IMAGE_PIXELS / 1e6:g} MP "
                             "(--max-pixels raises it; memory grows with the pixels)") from None
    except MemoryError:
        raise ImageReadError(f"{name}: out of memory while decoding the image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{name}: corrupt or truncated image ({error})") from None
    frames = getattr(image, "n_frames", 1)
    # MPO (camera JPEGs with a preview or depth frame) holds the photo in its first frame.
    if frames > 1 and image.format != "MPO":
        raise ImageReadError(f"{name}: an animated or multi-page {image.format} ({frames} frames), not one "
                             "photo; extract its frames (e.g. with ffmpeg) or save the one you want")
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not cost the photo itself
        return image


# Rows of full-resolution work at a time (here, shm.upsampling and shm.foreground): temporaries of an
# 8000-pixel-wide float32 RGB band are 6 MB each, whatever the photo's height.
BAND_ROWS = 256


def row_bands(height: int) -> list[slice]:
    """`slice`s of `BAND_ROWS` rows covering `height` rows."""
    return [slice(start, min(start + BAND_ROWS, height)) for start in range(0, height, BAND_ROWS)]


def to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit values of an image or alpha: uint8 as it is, bool as 0 / 255, float in [0, 1] rounded
    (band by band, no full-size float temporary), 16- or 32-bit integers scaled down."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        converted = np.empty(array.shape, np.uint8)
        for rows in row_bands(array.shape[0]):
            converted[rows] = np.clip(np.rint(array[rows] * 255.0), 0, 255)
        return converted
    # 16-bit (or 32-bit integer) greyscale: Pillow keeps the full range; scale it down.
    maximum = 65535 if array.max(initial=0) > 255 else 255
    return np.clip(np.rint(array.astype(np.float64) * (255.0 / maximum)), 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as uint8 RGB (H, W, 3) (`decode_image` reads one from bytes, e.g. standard input).

    Applies the EXIF orientation; converts greyscale, palette, CMYK and 16-bit images; drops an
    alpha channel (use `read_alpha` to read one).
    """
    return _as_rgb(_open(path), path)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """`read_image` of a file's bytes (read from any storage); `name` is the file the errors name."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    return _as_rgb(_load(io.BytesIO(data), name), name)


def _as_rgb(image: Image.Image, name: str | os.PathLike) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = to_uint8(np.asarray(image))
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageReadError(f"{name}: image has no pixels ({array.shape[1]}x{array.shape[0]})")
    return np.ascontiguousarray(array)


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte or mask as float32 (H, W) in [0, 1].

    A greyscale file is the alpha itself; an RGBA file gives its alpha channel; an RGB file its
    first channel (masks are often saved as grey RGB).
    """
    image = _open(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        array = np.asarray(image).astype(np.float64)
        scale = 65535.0 if array.max(initial=0) > 255 else 255.0
        return (array / scale).astype(np.float32)
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if image.mode == "1":
        return np.asarray(image, dtype=np.float32)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        channel = np.asarray(image)[..., -1]
    elif image.mode == "L":
        channel = np.asarray(image)
    else:
        channel = np.asarray(image.convert("RGB"))[..., 0]
    return channel.astype(np.float32) / 255.0


# `.NAME.PID.XXXXXXXX.tmp[.suffixes]` (files) and `.NAME.PID.XXXXXXXX.tmp` / `.old` (directories):
# the temporaries of `temporary_prefix`, with the id of the process that writes them.
_TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[a-z0-9_]{8}\.(tmp|old)(\..+)?$")


def temporary_prefix(name: str) -> str:
    """The prefix of a temporary beside the output `name` (for `tempfile.mkstemp` / `mkdtemp`): hidden,
    and naming this process, so `sweep_stale_temporaries` can tell a killed run's leftovers."""
    return f".{name}.{os.getpid()}."


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale_temporaries(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files and directories of `atomic_path` (and `shm.export.atomic_directory`)
    in `folder` whose writing process is no longer running on this machine (a run killed with
    -9, a power cut); return them. Those of live processes (a concurrent run) stay."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(".*") if recursive else folder.glob(".*")):
        match = _TEMPORARY_NAME.match(path.name)
        if match is None or _running(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


class Terminated(KeyboardInterrupt):
    """SIGTERM (a timeout, `docker stop`, Slurm), raised like Ctrl-C so that every `finally` runs."""


def _raise_terminated(signum, frame):
    raise Terminated(f"terminated by signal {signum}")


def stop_on_sigterm_like_sigint() -> None:
    """Make SIGTERM stop this process as Ctrl-C does: temporaries removed, nothing half-written.
    For command-line entry points (signal handlers belong to the main thread)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: writers (cv2, Keras) choose the format from it.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.stem),
                                         suffix=f".tmp{path.suffix}")
    os.close(handle)
    temporary = Path(temporary)
    # mkstemp creates owner-only files; outputs get the permissions a plain open() would give.
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it replaces `path` (a folder) only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp"))
    os.chmod(temporary, 0o777 & ~_umask())
    try:
        yield temporary
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Create the output folder, or raise `OSError` naming it if it cannot be written to."""
    output_dir = Path(output_dir)
    if output_dir.is_file():
        raise OSError(f"{output_dir}: a file, not a folder (the outputs go into a folder)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=output_dir).close()
    except OSError as error:
        raise OSError(f"{output_dir}: output folder is not writable ({error.strerror or error})") from None
    return output_dir


def _png_image(array: np.ndarray, name: str) -> Image.Image:
    array = to_uint8(np.asarray(array))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    mode = {2: "L", 3: {3: "RGB", 4: "RGBA"}}
    image_mode = mode[array.ndim] if array.ndim == 2 else mode[3].get(array.shape[2])
    if image_mode is None:
        raise ValueError(f"{name}: cannot write an array of shape {array.shape} as PNG")
    return Image.fromarray(array, mode=image_mode)


def write_png_atomic(path: str | os.PathLike, array: np.ndarray, compress_level: int = 1) -> Path:
    """Write a uint8 (H, W), RGB (H, W, 3) or RGBA (H, W, 4) array as PNG, atomically.

    Float arrays are taken to be in [0, 1] and rounded to 8 bits. `compress_level` 1 (zlib's
    fastest) writes a 12 MP RGBA about 3x faster than Pillow's default 6, for ~30 % larger files.
    """
    path = Path(path)
    image = _png_image(array, str(path))
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG", compress_level=compress_level)
    return path


def check_distinct_folders(output_dir: str | os.PathLike, input_dir: str | os.PathLike,
                           input_name: str = "the input folder") -> None:
    """Raise `ValueError` naming `output_dir` when it is `input_dir` (outputs would mix with the inputs)."""
    if Path(output_dir).resolve() == Path(input_dir).resolve():
        raise ValueError(f"{output_dir}: the output folder must differ from {input_name}")


def check_no_input_overwritten(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """Raise `ValueError` naming the first of `outputs` that is one of the `inputs` files under another
    path (a symlinked folder, an input that is a link into the output folder)."""
    inputs = {Path(path).resolve() for path in inputs}
    for output in map(Path, outputs):
        # Resolve the folder, not the file: an atomic write replaces an output that is a symlink (an
        # image link left by an earlier run) instead of writing through it into its target.
        if output.parent.resolve() / output.name in inputs:
            raise ValueError(f"{output}: output would overwrite an input file")


def png_bytes(array: np.ndarray, compress_level: int = 1, name: str = "array") -> bytes:
    """`write_png_atomic`'s PNG as bytes, for storage other than local files; `name` is the file
    a `ValueError` names for a shape PNG cannot hold."""
    buffer = io.BytesIO()
    _png_image(array, name).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (by extension), sorted; hidden files are ignored."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def images_by_stem(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """The image files of `folder` grouped by stem (`a.jpg`, `a.png` -> "a"), each group sorted: how
    data folders, predictions and ground truths are paired (`shm.data`, `shm.evaluation`)."""
    groups: dict[str, list[Path]] = {}
    for path in list_images(folder):
        groups.setdefault(path.stem, []).append(path)
    return groups

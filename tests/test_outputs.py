"""shm/outputs.py: `--background` parsing (the output kinds' pictures and writing run in test_inference.py)."""

import numpy as np
import pytest
from PIL import Image

from shm.outputs import parse_background


def test_parse_background(tmp_path):
    assert parse_background("lime").tolist() == [0, 255, 0]
    assert parse_background("green").tolist() == [0, 128, 0]  # CSS
    assert parse_background("#0000ff").tolist() == [0, 0, 255]
    assert parse_background("1, 2,3").tolist() == [1, 2, 3]
    image_path = tmp_path / "beach.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)).save(image_path)
    assert parse_background(str(image_path)).shape == (5, 7, 3)
    for bad in ["1,2,300", "nope", "a,b,c"]:
        with pytest.raises(ValueError, match=bad):
            parse_background(bad)

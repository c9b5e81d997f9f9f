"""The one rule for the network's input size (shm.geometry), in Python and as TF ops."""
import numpy as np
import pytest
import tensorflow as tf

from shm.geometry import network_size, network_size_tf


@pytest.mark.parametrize("height, width, expected", [
    (800, 550, (320, 224)),   # CCP: 220 -> 224
    (877, 550, (320, 192)),   # 200.7 -> 192
    (640, 480, (320, 256)),   # 240 -> 256 (7.5 multiples rounds half to even: 8)
    (480, 640, (256, 320)),
    (100, 3000, (32, 320)),   # never below one multiple
    (50, 50, (64, 64)),       # never above the photo's size, but for rounding to the multiple
])
def test_network_size_keeps_the_aspect_with_sides_in_multiples(height, width, expected):
    assert network_size(height, width, 320) == expected


def test_tf_twin_equals_the_python_rule_everywhere():
    rng = np.random.default_rng(0)
    sizes = [(int(h), int(w)) for h, w in rng.integers(1, 4000, (300, 2))] + [(640, 480), (480, 640), (1, 1)]
    for working_size, multiple in ((320, 32), (512, 16)):
        for height, width in sizes:
            twin = tuple(int(v) for v in network_size_tf(tf.constant([height, width]), working_size, multiple))
            assert twin == network_size(height, width, working_size, multiple), (height, width)


def test_matter_uses_the_rule():
    from shm.backends import Runner
    from shm.inference import Matter

    class Constant(Runner):
        backend, input_size = "constant", None

        def _run(self, images):
            return {"alpha": np.ones((*images.shape[:3], 1)), "trimap": np.ones((*images.shape[:3], 3)) / 3}

    matter = Matter(Constant(), working_size=320)
    assert matter.network_size(877, 550) == network_size(877, 550, 320) == (320, 192)
    with pytest.raises(ValueError, match="positive sides"):
        network_size(0, 5, 320)

"""Pytest set-up shared by every test: quiet TensorFlow, the repository on sys.path, no numba JIT."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# pymatting (shm.alpha_from_mask) compiles every numba function it has on import: 30-80 s on 2 cores
# in a fresh environment, for tests that solve 40x40 images. Run as plain Python they take ~2 s
# longer than compiled and cached, whatever the machine and cache (NUMBA_DISABLE_JIT=0 to compile).
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

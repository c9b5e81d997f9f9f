"""shm: the library of Semantic Human Matting (data, losses, metrics, training, inference)."""

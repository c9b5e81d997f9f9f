"""Networks of Semantic Human Matting: T-Nets, M-Net, fusion, the SHM model, weights, presets."""



def test_setup_py_installs_the_onnx_path_on_workers_with_the_tested_ranges():
    setup = runpy.run_path(str(Path(__file__).parents[1] / "setup.py"), run_name="setup")
    requirements = setup["worker_requirements"]()
    assert [line.split(">")[0].split("<")[0].split("=")[0] for line in requirements] == \
        [name for name in ("numpy", "opencv-python-headless", "tqdm", "pillow", "onnxruntime")]
    assert "onnxruntime>=1.31,<2" in requirements

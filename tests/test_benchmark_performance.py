"""benchmarks/performance.py on tiny sizes: every group runs in its child processes, the page keeps
what lies outside its markers, the derived figures follow from the measured ones."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import performance  # noqa: E402
from report import write_section  # noqa: E402

TINY = ["--presets", "lite", "--repeats", "2", "--warmup", "1", "--matmul-size", "64",
        "--conv-shapes", "16x16x8", "--size", "64", "--photo-sizes", "64x48",
        "--scaling-counts", "1", "2", "3", "--scaling-size", "64x48"]
PAGE_BEFORE = "# Benchmarks\n\nintro kept\n\n"
PAGE_AFTER = "\n\n## Later section\n\nkept too\n"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("performance")
    page, raw = folder / "page.md", folder / "raw.json"
    page.write_text(PAGE_BEFORE + performance.START_MARK + "\nold figures\n" + performance.END_MARK + PAGE_AFTER)
    exit_code = performance.main(TINY + ["--output", str(page), "--json", str(raw)])
    return exit_code, page.read_text(), json.loads(raw.read_text())


def test_page_section_is_replaced_and_the_rest_kept(tiny_run):
    exit_code, page, _ = tiny_run
    assert exit_code == 0
    assert page.startswith(PAGE_BEFORE + performance.START_MARK)
    assert page.endswith(performance.END_MARK + PAGE_AFTER)
    assert "old figures" not in page
    section = page.split(performance.START_MARK)[1].split(performance.END_MARK)[0]
    assert "`python benchmarks/performance.py --presets lite" in section
    assert "cores" in section and "TensorFlow" in section and "load average" in section
    for heading in ("### Machine peak", "### Forward pass", "### End-to-end per photo", "### Many photos"):
        assert heading in section
    assert "| lite | on (default) | whole | 64x64x3 | 4 |" in section
    assert "| lite | onnx | 64x48 |" in section
    assert "| 3 |" in section


def test_forward_figures_follow_from_the_latency(tiny_run):
    _, page, results = tiny_run
    rows = results["forward"]["lite"]["rows"]
    assert {(row["part"], row["batch"]) for row in rows} == {
        (part, batch) for part in ("T-Net", "M-Net", "whole") for batch in (1, 4)}
    for row in rows:
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["images_per_s"] == pytest.approx(1000.0 * row["batch"] / row["median_ms"])
        assert row["gflops_per_image"] > 0 and row["peak_rss_mb"] > 0
        assert row["gflop_per_s"] == pytest.approx(row["gflops_per_image"] * row["batch"] * 1000 / row["median_ms"])
    batch4 = next(row for row in rows if row["part"] == "whole" and row["batch"] == 4)
    assert f"| {batch4['images_per_s']:.2f} |" in page
    whole = [row["gflops_per_image"] for row in rows if row["part"] == "whole"]
    assert whole[0] == whole[1]  # per image, whatever the batch


def test_peak_is_the_largest_of_both_onednn_settings(tiny_run):
    _, _, results = tiny_run
    assert [run["onednn"] for run in results["peak"]] == ["default", "0"]
    rates = [row["gflop_per_s"] for run in results["peak"] for row in run["rows"]]
    runtimes = [(row["runtime"], row["kernel"]) for row in results["peak"][0]["rows"]]
    assert runtimes == [("TensorFlow", "matmul"), ("numpy (BLAS)", "matmul"), ("onnxruntime", "matmul"),
                        ("TensorFlow", "conv 3x3"), ("onnxruntime", "conv 3x3")]
    assert len(rates) == 10 and min(rates) > 0
    assert results["peak_gflop_per_s"] == max(rates)
    matmul = results["peak"][0]["rows"][0]
    assert matmul["gflops"] == pytest.approx(2 * 64**3 / 1e9)


def test_e2e_and_scaling_figures(tiny_run):
    _, _, results = tiny_run
    (row,) = results["e2e"]["lite"]["rows"]
    assert row["photo"] == "64x48"
    for stage in performance.E2E_STAGES:
        assert row[f"{stage}_s"] > 0
    assert row["total_s"] >= row["network_s"] and row["peak_rss_mb"] > 0
    scaling = results["scaling"]
    assert [row["photos"] for row in scaling["rows"]] == [1, 2, 3]
    assert all(row["wall_s"] > 0 and row["peak_rss_mb"] > 0 for row in scaling["rows"])
    assert isinstance(scaling["linear"], bool) and isinstance(scaling["flat"], bool)


def test_scaling_verdicts():
    def rows(walls, peaks):
        table = [{"photos": photos, "wall_s": wall, "peak_rss_mb": peak}
                 for photos, wall, peak in zip((1, 10, 100), walls, peaks)]
        for row in table[1:]:
            row["per_photo_after_first_s"] = (row["wall_s"] - table[0]["wall_s"]) / (row["photos"] - 1)
        return table

    assert performance.scaling_verdicts(rows((2.0, 4.7, 31.7), (300, 301, 305))) == {"linear": True, "flat": True}
    # 0.3 s per extra photo up to 10, then 0.5 s; memory up by 40 %.
    assert performance.scaling_verdicts(rows((2.0, 4.7, 51.5), (300, 350, 420))) == {"linear": False, "flat": False}
    # Warm-up growth before the largest two folders does not count; growth between them does.
    assert performance.scaling_verdicts(rows((2.0, 4.7, 31.7), (160, 195, 196)))["flat"] is True
    assert performance.scaling_verdicts(rows((2.0, 4.7, 31.7), (160, 161, 190)))["flat"] is False
    assert performance.scaling_verdicts(rows((2.0, 4.7), (300, 301))) == {"linear": None, "flat": True}


def test_bad_group_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        performance.parse_args(["--groups", "peak", "bogus"])
    assert exit_info.value.code == 2
    assert "argument --groups: invalid choice: 'bogus'" in capsys.readouterr().err


def test_bad_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        performance.parse_args(["--photo-sizes", "600by800"])
    assert "'600by800': expected positive integers joined by x" in capsys.readouterr().err


def test_failing_worker_names_the_group_and_its_last_error_line():
    command = [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('out of memory')"]
    with pytest.raises(RuntimeError, match=r"^forward pspnet50: worker failed \(exit 1\): out of memory$"):
        performance.run_worker_process(command, "forward pspnet50")


def test_write_section_appends_to_a_page_without_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\ntext\n")
    write_section(page, "<!-- a -->\nnew\n<!-- b -->", "<!-- a -->", "<!-- b -->")
    assert page.read_text() == "# Title\n\ntext\n\n<!-- a -->\nnew\n<!-- b -->\n"

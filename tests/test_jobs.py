"""shm/jobs.py: planning a folder's jobs and output names (matting them runs in test_inference.py)."""

from pathlib import Path

import pytest

from shm.jobs import collect_jobs, unique_output_stems


def test_collect_jobs_names_outputs_without_collisions(tmp_path):
    for name in ["a.jpg", "a.png", "b.PNG", "clip.mp4", "notes.txt", ".hidden.png", "sub/c.png",
                 "b_alpha.png"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    jobs, ignored = collect_jobs(tmp_path, tmp_path)  # output folder = input folder
    assert {job.output_stem.name for job in jobs} == {"a_jpg", "a_png", "b", "clip"}
    assert [path.name for path in ignored] == ["notes.txt"]
    assert [job.is_video for job in jobs].count(True) == 1
    jobs, _ = collect_jobs(tmp_path, tmp_path / "out", recursive=True)
    stems = {job.output_stem.relative_to(tmp_path / "out").as_posix() for job in jobs}
    assert stems == {"a_jpg", "a_png", "b", "b_alpha", "clip", "sub/c"}
    with pytest.raises(FileNotFoundError, match="missing"):
        collect_jobs(tmp_path / "missing", tmp_path)


def test_unique_output_stems_keep_extensions_and_number_what_still_collides():
    names = ["a.jpg", "a.JPG", "a.png", "b.jpg", "b.png", "b_jpg.png", "c.png", "C.jpg", "sub/a.png"]
    stems = [stem.as_posix() for stem in unique_output_stems([Path(name) for name in names])]
    assert stems == ["a_jpg", "a_JPG_2", "a_png", "b_jpg_2", "b_png", "b_jpg", "c_png", "C_jpg", "sub/a"]
    assert len({stem.casefold() for stem in stems}) == len(names)

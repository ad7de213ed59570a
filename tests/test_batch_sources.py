"""SOURCE arguments of vmf-predict --engine ray: folders, globs, path lists, URIs; bad ones fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="the ray extra (which brings pyarrow) is not installed")

from vmf_deploy.batch.sources import SourceError, expand_sources  # noqa: E402
from vmf_deploy.cli.predict import EXIT_RAY, EXIT_USAGE, main  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Videos (contents do not matter to listing) at two depths, plus files that are not videos."""
    for name in ("b.mp4", "a.avi", "sub/c.MOV", "sub/deeper/d.mkv", "notes.txt", "sub/e.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def names(paths: list[str], root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in paths]


def test_folders_are_searched_recursively_for_videos_and_paths_come_out_absolute_once(tree, monkeypatch):
    monkeypatch.chdir(tree)
    paths, duplicates = expand_sources([".", "a.avi", f"file://{tree}/b.mp4", "missing.mp4"])
    assert names(paths, tree) == ["a.avi", "b.mp4", "sub/c.MOV", "sub/deeper/d.mkv", "missing.mp4"]
    assert duplicates == 2 and all(Path(p).is_absolute() for p in paths)


def test_glob_patterns_match_within_a_folder_or_across_folders_with_double_star(tree):
    assert names(expand_sources([f"{tree}/*.mp4"])[0], tree) == ["b.mp4"]
    assert names(expand_sources([f"{tree}/**/*.mkv"])[0], tree) == ["sub/deeper/d.mkv"]
    assert names(expand_sources([f"{tree}/sub/[cd].MOV"])[0], tree) == ["sub/c.MOV"]


def test_path_lists_in_text_csv_and_parquet_resolve_relative_paths_against_the_lists_folder(tree, tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lists = tmp_path_factory.mktemp("lists")
    (lists / "videos.txt").write_text(f"# library\n{tree}/a.avi\n\n../{lists.name}/clip.mp4\n")
    (lists / "videos.csv").write_text(f"path,label\n{tree}/b.mp4,x\nother.mp4,y\n")
    pq.write_table(pa.table({"path": [f"{tree}/sub/c.MOV"]}), lists / "videos.parquet")
    paths, _ = expand_sources([str(lists / n) for n in ("videos.txt", "videos.csv", "videos.parquet")])
    assert paths == [f"{tree}/a.avi", f"{lists}/clip.mp4", f"{tree}/b.mp4", f"{lists}/other.mp4", f"{tree}/sub/c.MOV"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: str(d / "*.webm"), "matches no file; check it"),
    (lambda d: (d / "empty").mkdir() or str(d / "empty"), "holds no video files"),
    (lambda d: (d / "l.csv").write_text("file\nx.mp4\n") and str(d / "l.csv"), "has no 'path' column"),
    (lambda d: (d / "l.txt").write_text("# nothing\n") and str(d / "l.txt"), "names no path"),
    (lambda d: (d / "l.parquet").write_text("garbage") and str(d / "l.parquet"), "is malformed"),
])
def test_bad_sources_say_what_is_wrong(tree, make, message):
    with pytest.raises(SourceError, match=message):
        expand_sources([make(tree)])


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "r.parquet"], "--out goes with --engine ray"),
    (["--resume"], "--resume goes with --engine ray"),
    (["--engine", "ray"], "--engine ray needs --out FILE.parquet"),
    (["--engine", "ray", "--out", "r.parquet", "--json", "r.json"], "not --json"),
    (["--engine", "ray", "--out", "r.parquet", "--actors", "0"], "--actors must be a positive integer"),
    (["--engine", "ray", "--out", "r.parquet", "--hint", "throughput"], "--hint throughput is for the local engine"),
])
def test_ray_options_are_checked_before_anything_runs(tree, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main([str(tree), "--variant", "560m", *args])
    assert e.value.code == EXIT_USAGE and message in capsys.readouterr().err


def test_bad_out_and_empty_folder_fail_with_one_line_before_ray_starts(tree, capsys):
    for out, message in ((tree / "r.csv", "name a .parquet or .jsonl file"),
                         (tree / "no" / "r.parquet", "its folder does not exist")):
        with pytest.raises(SystemExit) as e:
            main([str(tree), "--variant", "560m", "--engine", "ray", "--out", str(out)])
        err = capsys.readouterr().err
        assert e.value.code == EXIT_USAGE and message in err and len(err.strip().splitlines()) == 1


def test_an_address_where_nothing_listens_fails_at_once_with_one_line(tree, capsys):
    out = tree / "r.parquet"
    code = main([str(tree), "--variant", "560m", "--frames", "4", "--engine", "ray", "--address", "127.0.0.1:9",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_RAY and len(err.strip().splitlines()) == 1, err
    assert "nothing answers at --address 127.0.0.1:9" in err and "ray start --head" in err
    assert not list(tree.glob("r.parquet*"))  # no result, no empty journal, no empty Ray log


def test_a_model_that_cannot_load_fails_with_exit_3_before_ray_starts(tree, capsys):
    from vmf_deploy.cli.predict import EXIT_MODEL

    with pytest.raises(SystemExit) as e:
        main([str(tree), "--artifact", str(tree / "none.onnx"), "--engine", "ray", "--out", str(tree / "r.parquet")])
    err = capsys.readouterr().err
    assert e.value.code == EXIT_MODEL and "none.onnx not found; export one with vmf-export" in err

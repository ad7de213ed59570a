"""vmf-predict end to end with eager PyTorch: output, JSON records, batches that go on past bad files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.cli.predict import EXIT_MODEL, EXIT_OK, EXIT_USAGE, EXIT_VIDEO_FAILED, main
from vmf_deploy.predict import Predictor, top_k

SEEDED = ["--variant", "560m", "--frames", "4"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with two good videos, one truncated, one text file posing as a video, and a README."""
    d = tmp_path_factory.mktemp("batch")
    vf.write_video(d / "a_walk.avi", 40, (96, 64))
    vf.write_video(d / "b_turn.mp4", 30, (64, 96))
    vf.truncate(d / "a_walk.avi", d / "c_cut.avi", 0.4)
    (d / "d_fake.mp4").write_text("not a video\n" * 10)
    (d / "README.txt").write_text("not listed: no video extension\n")
    return d


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_single_video_prints_topk_timings_and_seeded_note(batch, capsys):
    assert main([str(batch / "a_walk.avi"), *SEEDED, "--topk", "3"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "560m · seeded init (seed 0) · backend torch-cpu · input 1×3×4×172×172" in out
    assert "weights are the deterministic seeded init, not trained: the labels are meaningless" in out
    assert "a_walk.avi  96×64, 40 frames, 1.3 s, MJPG/AVI → 4-frame clip" in out
    assert "    1. 0.0" in out and "    3. 0.0" in out and "    4. " not in out
    assert "decode " in out and " s · preprocess " in out and " s · inference " in out


def test_directory_batch_goes_on_past_bad_files(batch, tmp_path, capsys):
    out_json = tmp_path / "pred.json"
    assert main([str(batch), *SEEDED, "--json", str(out_json)]) == EXIT_VIDEO_FAILED
    out = capsys.readouterr().out
    assert "2 of 4 videos predicted, 2 failed" in out
    doc = read_json(out_json)
    assert doc["schema"] == "vmf-deploy/predictions" and doc["failed"] == 2
    assert [Path(r["video"]).name for r in doc["videos"]] == ["a_walk.avi", "b_turn.mp4", "c_cut.avi", "d_fake.mp4"]
    good, portrait, cut, fake = doc["videos"]
    assert good["ok"] and portrait["ok"] and not cut["ok"] and not fake["ok"]
    assert cut["error"]["kind"] == "truncated" and "--allow-partial" in cut["error"]["message"]
    assert fake["error"] == {"kind": "not-a-video", "message": fake["error"]["message"]}
    assert fake["error"]["message"].startswith("not a video")
    assert (portrait["video_info"]["width"], portrait["video_info"]["height"]) == (64, 96)
    assert good["sampled_frames"] == [5, 15, 25, 35] and len(good["logits"]) == 400
    assert [t["rank"] for t in good["top"]] == [1, 2, 3, 4, 5]
    assert set(good["seconds"]) == {"decode", "preprocess", "inference"}
    assert good["decoding"] == {"passes": 1, "grabbed": 40, "retrieved": 4}


def test_record_scores_are_the_softmax_of_the_logits(batch, tmp_path):
    out_json = tmp_path / "pred.json"
    assert main([str(batch / "a_walk.avi"), *SEEDED, "--json", str(out_json)]) == EXIT_OK
    rec = read_json(out_json)["videos"][0]
    logits = np.array(rec["logits"], dtype=np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [t["index"] for t in rec["top"]] == np.argsort(-p, kind="stable")[:5].tolist()
    np.testing.assert_allclose([t["score"] for t in rec["top"]], np.sort(p)[::-1][:5], rtol=1e-6)


def test_allow_partial_predicts_the_truncated_video(batch, capsys):
    assert main([str(batch / "c_cut.avi"), *SEEDED, "--allow-partial"]) == EXIT_OK
    assert "of 40 frames decodable" in capsys.readouterr().out


def test_json_to_stdout_is_pure_json(batch, capsys):
    assert main([str(batch / "b_turn.mp4"), *SEEDED, "--json", "-"]) == EXIT_OK
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["videos"][0]["ok"] and doc["model"]["backend"] == "torch-cpu"
    assert "b_turn.mp4" in captured.err  # the human report goes to stderr


def test_missing_video_fails_that_file_only(batch, capsys):
    assert main([str(batch / "nope.mp4"), str(batch / "a_walk.avi"), *SEEDED]) == EXIT_VIDEO_FAILED
    out = capsys.readouterr().out
    assert "nope.mp4  missing: no such file; check the path" in out and "1 of 2 videos predicted" in out


@pytest.mark.parametrize("args, message", [
    (["--variant", "560m", "--backend", "onnxruntime-cpu"], "--variant runs eager PyTorch (torch-cpu, torch-cuda); "
                                                            "to use onnxruntime-cpu, export first"),
    (["--artifact", "x.onnx", "--frames", "8"], "--checkpoint and --frames go with --variant"),
    (["--variant", "560m", "--topk", "0"], "--topk must be a positive integer, got 0"),
    (["--variant", "3g"], "unknown variant '3g'; valid variants:"),
    (["--variant", "560m", "--json", "/no/such/dir/out.json"], "its folder /no/such/dir does not exist"),
    (["--variant", "560m", "--checkpoint", "c.safetensors", "--frames", "8"], "--frames applies to the seeded init"),
    ([], "one of the arguments --artifact --variant is required"),
])
def test_usage_errors_exit_2(batch, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main([str(batch / "a_walk.avi"), *args])
    assert e.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_directory_without_videos_exits_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path), *SEEDED])
    assert e.value.code == EXIT_USAGE and "holds no video files" in capsys.readouterr().err


def test_model_load_errors_exit_3(batch, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(SystemExit) as e:
        main([str(batch / "a_walk.avi"), "--variant", "560m", "--checkpoint", str(bad)])
    assert e.value.code == EXIT_MODEL and "is not a readable safetensors file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([str(batch / "a_walk.avi"), "--artifact", str(tmp_path / "missing.onnx")])
    assert e.value.code == EXIT_MODEL and "artifact" in capsys.readouterr().err


def test_checkpoint_predictions_equal_the_model_it_saves(batch, tmp_path):
    from vmf_deploy import build_seeded_model, save_checkpoint

    ckpt = save_checkpoint(build_seeded_model("560m", seed=3, frames=4), tmp_path / "m.safetensors")
    p = Predictor.from_variant("560m", checkpoint=ckpt)
    assert p.notes == [] and p.model_info["source"] == "checkpoint" and p.spec.frames == 4  # from the checkpoint
    seeded = Predictor.from_variant("560m", frames=4, seed=3)
    video = batch / "a_walk.avi"
    np.testing.assert_array_equal(p.predict(video).logits, seeded.predict(video).logits)


def test_top_k_orders_by_probability_and_sums_below_one():
    labels = tuple(f"c{i}" for i in range(6))
    top = top_k(np.array([0.0, 3.0, 1.0, 3.0, -2.0, 2.0]), labels, 4)
    assert [i for i, _, _ in top] == [1, 3, 5, 2]
    assert top[0][2] == pytest.approx(top[1][2]) and sum(s for _, _, s in top) < 1.0

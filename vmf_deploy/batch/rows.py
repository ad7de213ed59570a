"""One flat result row per video, built from ``vmf-predict``'s per-video record, and its Arrow schema.

A row has the video's ``path``; ``ok`` with ``error_kind``/``error_message`` (the kinds of
:class:`vmf_deploy.video.VideoError`, ``inference``, ``error``); the top-k ``top_indices``,
``top_labels``, ``top_scores`` (softmax); ``logits`` when asked for; the video's info
(``frames``, ``width``, ``height``, ``fps``, ``codec``, ``container``, ...); the sampled
frame indices and notes; and the per-stage seconds (``decode_s``, ``preprocess_s``,
``inference_s``). Fields that do not apply to a failed video are null.
"""

from __future__ import annotations

VIDEO_FIELDS = ("frames", "header_frames", "width", "height", "fps", "rotation", "codec", "container")
STAGES = ("decode", "preprocess", "inference")


def record_row(record: dict, keep_logits: bool) -> dict:
    """The flat row of one ``Prediction.to_record()`` or ``error_record()`` dict."""
    row: dict = {"path": record["video"], "ok": bool(record["ok"]), "error_kind": None, "error_message": None,
                 "top_indices": None, "top_labels": None, "top_scores": None, "logits": None,
                 **dict.fromkeys(VIDEO_FIELDS), "sampled_frames": None, "notes": None,
                 **{f"{stage}_s": None for stage in STAGES}}
    if not record["ok"]:
        row["error_kind"], row["error_message"] = record["error"]["kind"], record["error"]["message"]
        return row
    row["top_indices"] = [t["index"] for t in record["top"]]
    row["top_labels"] = [t["label"] for t in record["top"]]
    row["top_scores"] = [t["score"] for t in record["top"]]
    if keep_logits:
        row["logits"] = record["logits"]
    row.update({name: record["video_info"][name] for name in VIDEO_FIELDS})
    row["sampled_frames"] = record["sampled_frames"]
    row["notes"] = record["notes"]
    row.update({f"{stage}_s": record["seconds"][stage] for stage in STAGES})
    return row


def arrow_schema() -> object:
    """The ``pyarrow.Schema`` of result rows (the Parquet file's columns, in order)."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("ok", pa.bool_()), ("error_kind", pa.string()), ("error_message", pa.string()),
        ("top_indices", pa.list_(pa.int32())), ("top_labels", pa.list_(pa.string())),
        ("top_scores", pa.list_(pa.float64())), ("logits", pa.list_(pa.float32())),
        ("frames", pa.int64()), ("header_frames", pa.int64()), ("width", pa.int32()), ("height", pa.int32()),
        ("fps", pa.float64()), ("rotation", pa.int32()), ("codec", pa.string()), ("container", pa.string()),
        ("sampled_frames", pa.list_(pa.int64())), ("notes", pa.list_(pa.string())),
        ("decode_s", pa.float64()), ("preprocess_s", pa.float64()), ("inference_s", pa.float64()),
    ])

"""Batch prediction over a video library: the Ray Data engine of ``vmf-predict --engine ray``.

``sources`` turns SOURCE arguments into the list of video paths, ``rows`` turns per-video
records into flat result rows, ``results`` keeps them on disk (journal, resume, atomic
Parquet/JSONL), ``ray_engine`` runs decode tasks and inference actors on a Ray cluster.
"""

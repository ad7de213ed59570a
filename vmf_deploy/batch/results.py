"""Result files of a batch run: a journal that survives interruption, resume, and the atomic final write.

While a run goes on, every finished row is appended to ``<out>.partial.jsonl`` and flushed,
so a killed or interrupted run keeps what it finished. ``--resume`` reads the rows already
in ``<out>`` and in that journal and skips their paths. At the end all rows are written to
``<out>`` in one go (Parquet, or JSON Lines when ``<out>`` ends in ``.jsonl``) through a temp
file and a rename, and the journal is removed: ``<out>`` is never half-written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_output
from .rows import arrow_schema

OUT_SUFFIXES = (".parquet", ".jsonl")


class ResultsError(ValueError):
    """An output path that cannot be written or an existing result file that cannot be resumed from."""


def journal_path(out: Path) -> Path:
    """The journal of ``out``'s unfinished run, beside it."""
    return out.with_name(out.name + ".partial.jsonl")


def check_out(out: Path) -> None:
    """Raise :class:`ResultsError` unless ``out`` is a .parquet/.jsonl path in an existing folder."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ResultsError(f"--out {out}: name a .parquet or .jsonl file (the suffix chooses the format)")
    if out.is_dir():
        raise ResultsError(f"--out {out} is a folder; pass a file path, e.g. {out / 'predictions.parquet'}")
    if not out.resolve().parent.is_dir():
        raise ResultsError(f"--out {out}: its folder does not exist; create it first")


def read_rows(out: Path) -> list[dict]:
    """The rows of a finished result file (Parquet or JSON Lines); [] when it does not exist."""
    if not out.exists():
        return []
    try:
        if out.suffix.lower() == ".jsonl":
            return _read_jsonl(out, tolerate_torn_tail=False)
        import pyarrow.parquet as pq

        return pq.read_table(out).to_pylist()
    except Exception as e:  # pyarrow and json raise several types for a damaged file
        raise ResultsError(f"--resume cannot read {out} ({str(e).splitlines()[0]}); move it away and run "
                           "without --resume") from None


def read_journal(out: Path) -> list[dict]:
    """The rows an interrupted run journalled (a torn last line, from a kill mid-write, is dropped)."""
    path = journal_path(out)
    try:
        return _read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"--resume cannot read the journal {path} ({e}); delete it to start over") from None


class Journal:
    """Appends finished rows to the journal, one JSON line each, flushed as they come (created with the first)."""

    def __init__(self, out: Path, fresh: bool) -> None:
        self.path = journal_path(out)
        if fresh:
            self.path.unlink(missing_ok=True)
        self._file = None

    def append(self, rows: list[dict]) -> None:
        """Write ``rows`` and flush them to the operating system."""
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._file.writelines(json.dumps(row, allow_nan=True) + "\n" for row in rows)
        self._file.flush()

    def close(self) -> None:
        """Close the journal (it stays on disk until the final write succeeds)."""
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Remove the journal once the final result file holds its rows."""
        self.close()
        self.path.unlink(missing_ok=True)


def write_rows(out: Path, rows: list[dict]) -> None:
    """Write all ``rows`` to ``out`` atomically: Parquet, or JSON Lines for a ``.jsonl`` name."""
    with atomic_output(out, suffix=out.suffix) as tmp:
        if out.suffix.lower() == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, allow_nan=True) + "\n" for row in rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), tmp)


def _read_jsonl(path: Path, tolerate_torn_tail: bool) -> list[dict]:
    """Rows of a JSON Lines file; with ``tolerate_torn_tail`` an unparseable last line is skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if tolerate_torn_tail and i == len(lines) - 1:
                break
            raise
    return rows

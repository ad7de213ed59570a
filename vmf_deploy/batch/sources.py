"""SOURCE arguments to video paths: files, folders, glob patterns and path lists, on any pyarrow filesystem.

A SOURCE is a video file (kept even when missing: it becomes that path's ``missing`` error
row), a folder (its videos, searched recursively, sorted), a glob pattern (``*``, ``?``,
``[...]``, ``**`` for any depth), or a list of paths: ``.txt``/``.lst`` (one path a line, ``#``
comments), ``.csv`` or ``.parquet`` (a ``path`` column). Relative paths inside a list are
relative to the list's folder. Local paths come out absolute; others keep their URI
(``s3://bucket/key``, ``gs://...``): whatever ``pyarrow.fs.FileSystem.from_uri`` opens.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath

from ..video import VIDEO_EXTENSIONS

LIST_SUFFIXES = (".txt", ".lst", ".csv", ".parquet")
GLOB_CHARS = "*?["


class SourceError(ValueError):
    """A SOURCE argument that names no video (bad pattern, empty folder, malformed list); the message says the fix."""


def is_remote(path: str) -> bool:
    """True for a URI with a scheme other than ``file://`` (read through pyarrow, not the local filesystem)."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.lower() != "file" and len(scheme) > 1


def local_path(path: str) -> str:
    """A local path as an absolute path (``file://`` stripped); a remote URI unchanged."""
    if is_remote(path):
        return path
    if path.lower().startswith("file://"):
        path = path[len("file://"):]
    return os.path.abspath(os.path.expanduser(path))


def open_filesystem(path: str) -> tuple[object, str]:
    """``(pyarrow filesystem, path inside it)`` for a local path or a URI."""
    import pyarrow.fs as pafs

    if not is_remote(path):
        return pafs.LocalFileSystem(), local_path(path)
    try:
        return pafs.FileSystem.from_uri(path)
    except (pafs.ArrowInvalid, OSError, ValueError) as e:
        raise SourceError(f"{path}: pyarrow cannot open this URI ({e}); use a local path or a filesystem "
                          "pyarrow supports (s3://, gs://, hdfs://, file://)") from None


def expand_sources(sources: list[str]) -> tuple[list[str], int]:
    """Every video path the SOURCE arguments name, in order, each once; and how many duplicates were dropped."""
    paths: list[str] = []
    for source in sources:
        paths.extend(_expand_one(source))
    unique = list(dict.fromkeys(paths))
    return unique, len(paths) - len(unique)


def _expand_one(source: str) -> list[str]:
    """The video paths of one SOURCE argument."""
    import pyarrow.fs as pafs

    if any(c in source for c in GLOB_CHARS):
        return _glob(source)
    fs, inner = open_filesystem(source)
    kind = fs.get_file_info(inner).type
    if kind == pafs.FileType.Directory:
        videos = [p for p in _list_files(fs, inner, recursive=True) if _is_video(p)]
        if not videos:
            raise SourceError(f"folder {source} holds no video files ({', '.join(VIDEO_EXTENSIONS[:6])}, ...); "
                              "pass a folder of videos, a glob pattern or a list of paths")
        return [_outer(source, p) for p in videos]
    if kind == pafs.FileType.File and inner.lower().endswith(LIST_SUFFIXES):
        return _read_list(source, fs, inner)
    return [local_path(source)]


def _glob(pattern: str) -> list[str]:
    """Files matching ``pattern`` (``**`` crosses folders), sorted; an error when none does."""
    fs, inner = open_filesystem(pattern)
    parts = inner.split("/")
    fixed = next(i for i, part in enumerate(parts) if any(c in part for c in GLOB_CHARS))
    base = "/".join(parts[:fixed]) or "/"
    recursive = "**" in inner or fixed < len(parts) - 1
    regex = _glob_regex(inner)
    matches = [p for p in _list_files(fs, base, recursive) if regex.fullmatch(p)]
    if not matches:
        raise SourceError(f"pattern {pattern} matches no file; check it (quote it so the shell does not expand it)")
    return [_outer(pattern, p) for p in matches]


def _glob_regex(pattern: str) -> object:
    """A compiled regex for a glob: ``**/`` is any number of folders, ``*`` and ``?`` stay within one."""
    import re

    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i:end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _list_files(fs: object, base: str, recursive: bool) -> list[str]:
    """Paths of the regular files under ``base``, sorted."""
    import pyarrow.fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=True))
    except OSError as e:
        raise SourceError(f"cannot list {base}: {e}") from None
    return sorted(info.path for info in infos if info.type == pafs.FileType.File)


def _is_video(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _outer(source: str, inner: str) -> str:
    """``inner`` (a path inside the filesystem ``source`` named) as the path users and workers open."""
    if not is_remote(source):
        return inner
    return f"{source.partition('://')[0]}://{inner}"


def _read_list(source: str, fs: object, inner: str) -> list[str]:
    """The paths listed in a .txt/.lst (one a line), .csv or .parquet (``path`` column) file."""
    suffix = posixpath.splitext(inner)[1].lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(inner, filesystem=fs)
            entries = _path_column(source, table)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            with fs.open_input_stream(inner) as f:
                entries = _path_column(source, pacsv.read_csv(f))
        else:
            with fs.open_input_stream(inner) as f:
                lines = f.read().decode("utf-8").splitlines()
            entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    except SourceError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read the path list {source}: {e}") from None
    except Exception as e:  # pyarrow's parse errors (ArrowInvalid) are ValueErrors with a long text
        raise SourceError(f"the path list {source} is malformed ({str(e).splitlines()[0]}); write one path per "
                          "line (.txt) or a 'path' column (.csv, .parquet)") from None
    if not entries:
        raise SourceError(f"the path list {source} names no path; add one path per line or row")
    return [_resolve_entry(source, entry) for entry in entries]


def _resolve_entry(list_source: str, entry: str) -> str:
    """A listed path: URIs and absolute paths as they are, relative ones against the list's folder."""
    if is_remote(entry) or entry.lower().startswith("file://"):
        return local_path(entry)
    if is_remote(list_source):
        return entry if posixpath.isabs(entry) else posixpath.join(posixpath.dirname(list_source), entry)
    return local_path(os.path.join(os.path.dirname(local_path(list_source)), entry))


def _path_column(source: str, table: object) -> list[str]:
    """The non-empty strings of ``table``'s ``path`` column."""
    if "path" not in table.column_names:
        raise SourceError(f"the path list {source} has no 'path' column (columns: {', '.join(table.column_names)}); "
                          "name the column of video paths 'path'")
    return [str(p).strip() for p in table.column("path").to_pylist() if p is not None and str(p).strip()]

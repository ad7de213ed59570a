"""Serve one ``.onnx`` in onnxruntime's CPU provider, one clip per stdin line: run inside the aarch64 userland.

Started by ``vmf_deploy/runners/onnxruntime_arm64.py`` as
``qemu-aarch64-static ROOT/usr/bin/python3.11 -I ort_server.py MODEL.onnx [--threads N]``. It imports
only the standard library, numpy and onnxruntime (the userland has nothing else), creates the session
once with the options of the ``onnxruntime-cpu`` backend, and prints ``ready <input shape>``
(``1x3x16x172x172``; ``?`` for a symbolic axis). Then, for each stdin line:

* ``run IN.raw OUT.raw SHAPE``: reads IN (little-endian float32 of SHAPE), runs the session, writes
  the first output to OUT as float32 and prints ``ok <output shape>``, or ``error <message>``;
* ``quit``: exits.

A model that cannot be loaded prints ``error <message>`` and exits with code 1. Nothing is timed:
latency under emulation means nothing.
"""

from __future__ import annotations

import argparse
import sys


def dims(shape: object) -> str:
    """A shape as ``AxBxC`` (``?`` for an axis that is not a fixed int)."""
    return "x".join(str(d) if isinstance(d, int) else "?" for d in shape)


def reply(line: str) -> None:
    """One protocol line on stdout."""
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def load(model: str, threads: int | None):  # noqa: ANN201 - onnxruntime.InferenceSession
    """The session, with the ``onnxruntime-cpu`` backend's options."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_mem_pattern = False
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def serve(session) -> None:  # noqa: ANN001 - onnxruntime.InferenceSession
    """Answer ``run`` lines until ``quit`` or end of input."""
    import numpy as np

    name = session.get_inputs()[0].name
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            return
        if parts[0] != "run" or len(parts) != 4:
            reply(f"error bad request {line.strip()!r}: expected 'run IN.raw OUT.raw SHAPE' or 'quit'")
            continue
        src, dst, shape = parts[1], parts[2], tuple(int(d) for d in parts[3].split("x"))
        try:
            clip = np.fromfile(src, dtype=np.float32).reshape(shape)
            out = np.ascontiguousarray(session.run(None, {name: clip})[0], dtype=np.float32)
            out.tofile(dst)
        except Exception as e:  # onnxruntime raises its own untyped exceptions; the runner reports the message
            reply(f"error {type(e).__name__}: {e}")
            continue
        reply(f"ok {dims(out.shape)}")


def main() -> int:
    """Load the model named on the command line and serve it."""
    parser = argparse.ArgumentParser(description="serve one .onnx over stdin/stdout")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    try:
        session = load(args.model, args.threads)
    except Exception as e:  # onnxruntime's load errors are untyped
        reply(f"error {type(e).__name__}: {e}")
        return 1
    reply(f"ready {dims(session.get_inputs()[0].shape)}")
    serve(session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""ExecuTorch's C++ runtime bindings, loaded without importing ``executorch.exir``.

``executorch.runtime`` imports ``executorch.extension.pybindings.portable_lib``, and that module
imports all of ``executorch.exir`` (the export compiler, 7–11 s on a 2-core VM) for one warning
class, before it re-exports the names of the compiled ``_C`` extension unchanged. Running a
``.pte`` needs only ``_C``. This module loads it the way ``portable_lib`` does, after ``torch``
(whose ``libtorch`` the extension links against), in milliseconds. The functions called here are
the ones ``executorch.runtime.Runtime`` calls, with the same arguments.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from executorch.extension.pybindings._C import ExecuTorchProgram


def bindings() -> ModuleType:
    """The ``executorch.extension.pybindings._C`` extension; raises ImportError when executorch is missing."""
    import torch  # noqa: F401  (loads libtorch, which the extension resolves its symbols against)
    from executorch.extension.pybindings import _C

    return _C


def registered_backends() -> list[str]:
    """Names of the delegates this executorch build registered (e.g. ``XnnpackBackend``)."""
    return list(bindings()._get_registered_backend_names())


def load_program(path: Path) -> ExecuTorchProgram:
    """The ``.pte`` at ``path`` as an ``ExecuTorchProgram``, verified as ``Runtime.load_program`` verifies it."""
    _C = bindings()
    return _C._load_program(str(path), program_verification=_C.Verification.InternalConsistency)


def set_threads(threads: int) -> None:
    """Resize the process-wide threadpool XNNPACK runs on (experimental in ExecuTorch; global to the process)."""
    bindings()._unsafe_reset_threadpool(int(threads))

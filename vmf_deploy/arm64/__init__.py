"""Running aarch64 code on this x86-64 host under ``qemu-aarch64-static``: ARM kernels checked without a phone.

:mod:`.userland` builds the cached aarch64 CPython userland (Debian + PyPI wheels) that the
``onnxruntime-arm64`` backend runs in; :mod:`.qemu` says which CPU qemu emulates and writes the
``/proc/cpuinfo`` view that CPU's programs read; :mod:`.ort_server` is the script run inside it.
"""

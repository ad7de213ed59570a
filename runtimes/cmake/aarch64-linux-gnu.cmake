# Cross-compile runtimes/ for 64-bit ARM Linux (glibc) with Debian's g++-aarch64-linux-gnu, and run
# its executables (ctest, vmf_run) under qemu-aarch64-static. vmf_deploy/native_build.py --arch aarch64
# passes this file; by hand:
#   cmake -S runtimes -B runtimes/build-aarch64 --toolchain runtimes/cmake/aarch64-linux-gnu.cmake \
#         -DCMAKE_PREFIX_PATH=<unpacked aarch64 executorch wheel>/executorch
# The executorch wheel's CMake config needs CMake >= 3.28 (pip install cmake). QEMU_CPU picks the
# emulated core (cortex-a76 unless the environment says otherwise).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(VMF_AARCH64_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${VMF_AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${VMF_AARCH64_TRIPLE}-g++)

# Debian's multiarch cross root: the aarch64 libc, libstdc++ and (libgtest-dev:arm64) GoogleTest.
set(VMF_AARCH64_SYSROOT /usr/${VMF_AARCH64_TRIPLE})
set(CMAKE_FIND_ROOT_PATH ${VMF_AARCH64_SYSROOT} /usr/lib/${VMF_AARCH64_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
# BOTH: the executorch package (CMAKE_PREFIX_PATH), nlohmann_json (header-only, host /usr/share) and
# GoogleTest's config are found outside the cross root.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L ${VMF_AARCH64_SYSROOT})

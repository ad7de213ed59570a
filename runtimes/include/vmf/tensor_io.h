// Float32 tensors in files: raw little-endian float32, and NumPy .npy (dtype <f4, C order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmf {

// A float32 tensor loaded from a file.
struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Reads raw float32 values; `expected_count` (> 0) is enforced with a clear message.
std::vector<float> read_raw_f32(const std::string& path, int64_t expected_count);

// Writes raw float32 values atomically (temp file + rename).
void write_raw_f32(const std::string& path, const float* data, size_t count);

// Reads a .npy file holding a C-ordered little-endian float32 array.
FloatTensor read_npy_f32(const std::string& path);

// Writes a C-ordered little-endian float32 array as .npy (format 1.0), atomically; numpy.load reads it.
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data, size_t count);

// True if `path` names a .npy file (by its extension).
bool is_npy_path(const std::string& path);

// Writes `content` to `path` through a temp file + rename (never a half-written file).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace vmf

// SHA-256 (FIPS 180-4), self-contained so the same code builds on Linux, Android NDK and iOS.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace vmf {

// Incremental SHA-256: update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // Finishes the hash and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

// Lower-case hex of bytes.
std::string to_hex(const uint8_t* data, size_t size);

// Hex SHA-256 of a memory buffer.
std::string sha256_hex(const void* data, size_t size);

// Hex SHA-256 of a file's bytes (streamed); throws vmf::Error if it cannot be read.
std::string file_sha256_hex(const std::string& path);

// Hex tree hash of a directory artifact (.mlpackage), as docs/manifest.md defines it: SHA-256 over
// the files sorted by relative POSIX path (component by component), of path bytes || sha256(file).
std::string tree_sha256_hex(const std::string& directory);

// file_sha256_hex for a regular file, tree_sha256_hex for a directory.
std::string artifact_sha256_hex(const std::string& path);

}  // namespace vmf

#include "vmf/tensor_io.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <unistd.h>

#include "vmf/error.h"

namespace vmf {

std::vector<float> read_raw_f32(const std::string& path, int64_t expected_count) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open input tensor " + path);
  const auto bytes = int64_t(in.tellg());
  if (bytes != expected_count * int64_t(sizeof(float))) {
    throw Error(path + " holds " + std::to_string(bytes) + " bytes, but the model input needs " +
                std::to_string(expected_count) + " float32 values (" + std::to_string(expected_count * 4) +
                " bytes): write the preprocessed clip with numpy's tofile() in the manifest's input shape");
  }
  std::vector<float> data(static_cast<size_t>(expected_count));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), bytes);
  if (!in) throw Error("I/O error reading " + path);
  return data;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), std::streamsize(content.size()));
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("cannot write " + path);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error("cannot write " + path + ": " + ec.message());
  }
}

void write_raw_f32(const std::string& path, const float* data, size_t count) {
  write_file_atomic(path, std::string(reinterpret_cast<const char*>(data), count * sizeof(float)));
}

FloatTensor read_npy_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::string(magic, 6) != "\x93NUMPY") throw Error(path + " is not a .npy file");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(len_bytes), major == 1 ? 2 : 4);
  for (int i = (major == 1 ? 1 : 3); i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw Error(path + ": truncated .npy header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'")) || (m[1] != "<f4" && m[1] != "=f4")) {
    throw Error(path + ": dtype must be float32 (np.float32, little-endian); got header " + header);
  }
  if (!std::regex_search(header, m, std::regex("'fortran_order':\\s*False"))) {
    throw Error(path + ": array must be C-ordered (np.ascontiguousarray)");
  }
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw Error(path + ": no shape in header");
  FloatTensor t;
  const std::string dims = m[1];
  int64_t count = 1;
  const std::regex number("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    t.shape.push_back(std::stoll(it->str()));
    count *= t.shape.back();
  }
  t.data.resize(size_t(count));
  in.read(reinterpret_cast<char*>(t.data.data()), std::streamsize(count * sizeof(float)));
  if (in.gcount() != std::streamsize(count * sizeof(float))) throw Error(path + ": truncated .npy data");
  return t;
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data, size_t count) {
  int64_t numel = 1;
  std::string dims;
  for (const int64_t d : shape) {
    numel *= d;
    dims += std::to_string(d) + ",";
  }
  if (shape.size() > 1) dims.pop_back();  // numpy writes (3,) for one dimension, (1, 400) for two
  if (numel != int64_t(count)) {
    throw Error(path + ": " + std::to_string(count) + " values do not fill the shape given for the .npy file");
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + header + '\n' is padded with spaces to a multiple of 64
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string content("\x93NUMPY\x01\x00", 8);
  content.push_back(char(header.size() & 0xff));
  content.push_back(char(header.size() >> 8));
  content += header;
  content.append(reinterpret_cast<const char*>(data), count * sizeof(float));
  write_file_atomic(path, content);
}

bool is_npy_path(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
}

}  // namespace vmf

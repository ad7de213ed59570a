// NumPy .npy tensors: what vmf_run reads as --input-npy and writes as --output-npy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vmf/error.h"
#include "vmf/tensor_io.h"

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A .npy file with a hand-written header, as numpy.save writes it (format 1.0).
void write_npy_by_hand(const fs::path& path, const std::string& header_dict, const std::string& payload) {
  std::string header = header_dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out << std::string("\x93NUMPY\x01\x00", 8) << char(header.size() & 0xff) << char(header.size() >> 8) << header
      << payload;
}

}  // namespace

TEST(TensorIo, NpyRoundTripsShapeAndValues) {
  const fs::path path = fs::temp_directory_path() / "vmf_tensor_io_roundtrip.npy";
  const std::vector<float> values = {0.f, -1.5f, 3.25f, 1e-30f, 7.f, 8.f};
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{6}, {2, 3}, {1, 2, 1, 3}}) {
    vmf::write_npy_f32(path.string(), shape, values.data(), values.size());
    const std::string bytes = read_bytes(path);
    EXPECT_EQ((bytes.size() - values.size() * 4) % 64, 0u);  // numpy pads the header to 64 bytes
    const vmf::FloatTensor t = vmf::read_npy_f32(path.string());
    EXPECT_EQ(t.shape, shape);
    EXPECT_EQ(t.data, values);
  }
  vmf::write_npy_f32(path.string(), {6}, values.data(), values.size());
  EXPECT_NE(read_bytes(path).find("'shape': (6,)"), std::string::npos);  // a 1-tuple, as Python spells it
  fs::remove(path);
}

TEST(TensorIo, NpyWriterRefusesAShapeThatDoesNotFit) {
  const std::vector<float> values(5, 1.f);
  EXPECT_THROW(vmf::write_npy_f32((fs::temp_directory_path() / "vmf_bad.npy").string(), {2, 3}, values.data(),
                                  values.size()),
               vmf::Error);
}

TEST(TensorIo, NpyReaderReadsNumpysHeaders) {
  const fs::path path = fs::temp_directory_path() / "vmf_tensor_io_numpy.npy";
  const float v[2] = {1.f, 2.f};
  write_npy_by_hand(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
                    std::string(reinterpret_cast<const char*>(v), sizeof(v)));
  const vmf::FloatTensor t = vmf::read_npy_f32(path.string());
  EXPECT_EQ(t.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.data, (std::vector<float>{1.f, 2.f}));
  fs::remove(path);
}

TEST(TensorIo, NpyReaderRefusesOtherDtypesOrdersAndTruncation) {
  const fs::path path = fs::temp_directory_path() / "vmf_tensor_io_bad.npy";
  const std::string eight(8, '\0');
  auto message = [&]() -> std::string {
    try {
      vmf::read_npy_f32(path.string());
    } catch (const vmf::Error& e) {
      return e.what();
    }
    return "";
  };
  write_npy_by_hand(path, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", eight);
  EXPECT_NE(message().find("dtype must be float32"), std::string::npos);
  write_npy_by_hand(path, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight);
  EXPECT_NE(message().find("C-ordered"), std::string::npos);
  write_npy_by_hand(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", eight);
  EXPECT_NE(message().find("truncated"), std::string::npos);
  std::ofstream(path, std::ios::binary) << "not numpy at all";
  EXPECT_NE(message().find("is not a .npy file"), std::string::npos);
  fs::remove(path);
}

TEST(TensorIo, NpyPathsAreRecognisedByExtension) {
  EXPECT_TRUE(vmf::is_npy_path("out/logits.npy"));
  EXPECT_FALSE(vmf::is_npy_path("out/logits.raw"));
  EXPECT_FALSE(vmf::is_npy_path("npy"));
}

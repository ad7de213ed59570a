// Binary PPM/PGM frames and frame directories.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vmf/error.h"
#include "vmf/image_io.h"
#include "vmf/tensor_io.h"

namespace fs = std::filesystem;

TEST(ImageIo, RoundTripsPpmAndPgmWithComments) {
  const fs::path dir = fs::temp_directory_path() / "vmf_image_io_test";
  fs::create_directories(dir);
  vmf::Image rgb;
  rgb.height = 2;
  rgb.width = 3;
  rgb.pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  vmf::write_pnm((dir / "b.ppm").string(), rgb);
  const vmf::Image back = vmf::read_pnm((dir / "b.ppm").string());
  EXPECT_EQ(back.pixels, rgb.pixels);
  EXPECT_EQ(back.format, vmf::PixelFormat::kRGB);
  // A header with comments and odd whitespace; pixel bytes that look like whitespace.
  std::ofstream(dir / "a.pgm", std::ios::binary) << "P5\n# made by hand\n2  1\n# another\n255\n" << '\n' << ' ';
  const vmf::Image gray = vmf::read_pnm((dir / "a.pgm").string());
  EXPECT_EQ(gray.format, vmf::PixelFormat::kGray);
  EXPECT_EQ(gray.pixels, (std::vector<uint8_t>{'\n', ' '}));
  std::ofstream(dir / "notes.txt") << "ignored";
  EXPECT_EQ(vmf::list_frame_files(dir.string()),
            (std::vector<std::string>{(dir / "a.pgm").string(), (dir / "b.ppm").string()}));
  fs::remove_all(dir);
}

TEST(ImageIo, RefusesBadFrames) {
  const fs::path dir = fs::temp_directory_path() / "vmf_image_io_bad";
  fs::create_directories(dir);
  std::ofstream(dir / "ascii.ppm") << "P3\n1 1\n255\n0 0 0\n";
  std::ofstream(dir / "deep.ppm") << "P6\n1 1\n65535\n";
  std::ofstream(dir / "short.ppm", std::ios::binary) << "P6\n2 2\n255\nabc";
  for (const char* name : {"ascii.ppm", "deep.ppm", "short.ppm"}) {
    EXPECT_THROW(vmf::read_pnm((dir / name).string()), vmf::Error) << name;
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_THROW(vmf::list_frame_files(dir.string()), vmf::Error);  // no frames
  EXPECT_THROW(vmf::list_frame_files((dir / "nope").string()), vmf::Error);
  fs::remove_all(dir);
}

TEST(TensorIo, RawRoundTripAndSizeCheck) {
  const fs::path path = fs::temp_directory_path() / "vmf_tensor_io.raw";
  const std::vector<float> v = {1.5f, -2.0f, 3.25f};
  vmf::write_raw_f32(path.string(), v.data(), v.size());
  EXPECT_EQ(vmf::read_raw_f32(path.string(), 3), v);
  EXPECT_THROW(vmf::read_raw_f32(path.string(), 4), vmf::Error);
  fs::remove(path);
}

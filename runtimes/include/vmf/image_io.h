// Reading decoded frames without an image library: binary PNM, i.e. P6 (RGB) and P5 (grayscale),
// 8-bit (maxval 255). `ffmpeg -i video.mp4 DIR/%06d.ppm` writes such a directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmf/preprocess.h"

namespace vmf {

// One decoded frame that owns its pixels.
struct Image {
  int height = 0;
  int width = 0;
  PixelFormat format = PixelFormat::kRGB;
  std::vector<uint8_t> pixels;

  // A borrowed view for preprocessing.
  FrameView view() const { return FrameView{pixels.data(), height, width, format, 0}; }
};

// Reads a binary P6 (RGB) or P5 (grayscale) file; throws vmf::Error naming the problem.
Image read_pnm(const std::string& path);

// Writes a binary P6 (RGB) or P5 (grayscale) file.
void write_pnm(const std::string& path, const Image& image);

// The frame files (*.ppm, *.pgm, *.pnm) of a directory in name order; throws if there are none.
std::vector<std::string> list_frame_files(const std::string& directory);

}  // namespace vmf

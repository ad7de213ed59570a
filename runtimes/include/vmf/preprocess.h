// The manifest's preprocessing, exactly as vmf_deploy/preprocess.py and docs/manifest.md specify:
// sampling over the whole video, short-side bilinear (half-pixel) resize computed only inside the
// centre crop, x * scale, (x - mean) / std, NCTHW float32. Apps call this; they hold no constants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "vmf/manifest.h"

namespace vmf {

// Byte order of one pixel of a decoded frame (8 bits per channel, interleaved).
enum class PixelFormat { kGray, kRGB, kRGBA, kBGRA };

// Number of bytes per pixel of a format.
int bytes_per_pixel(PixelFormat format);

// A borrowed, decoded frame: `height` rows of `row_stride` bytes (>= width * bytes_per_pixel).
struct FrameView {
  const uint8_t* data = nullptr;
  int height = 0;
  int width = 0;
  PixelFormat format = PixelFormat::kRGB;
  size_t row_stride = 0;  // 0 means tightly packed
};

// Indices of the `frames` frames of one clip among `num_frames` decoded frames:
// floor((2i + 1) * num_frames / (2 * frames)); a short video repeats frames in order.
std::vector<int64_t> sample_indices(int64_t num_frames, int frames);

// (height, width) after scaling the short side to `short_side` (long side rounded half-to-even).
std::pair<int, int> resized_size(int height, int width, int short_side);

// Bilinear short-side resize + centre crop of one frame into `out` (crop * crop * 3 values, HWC,
// RGB, in [0, 255] as double). Throws vmf::Error for an empty frame or short_side < crop.
void resize_center_crop(const FrameView& frame, int short_side, int crop, double* out);

// Builds one clip tensor (1, 3, T, crop, crop) frame by frame, so an app decodes and holds only
// one sampled frame at a time.
class ClipBuilder {
 public:
  explicit ClipBuilder(const PreprocessSpec& spec);
  // Preprocesses `frame` into time slot t (0 <= t < spec.frames).
  void set_frame(int t, const FrameView& frame);
  // True once every time slot has been set.
  bool complete() const;
  // The NCTHW float32 tensor; throws vmf::Error while slots are missing.
  const std::vector<float>& tensor() const;

 private:
  PreprocessSpec spec_;
  std::vector<float> tensor_;
  std::vector<bool> filled_;
  std::vector<double> pixels_;
};

// Preprocesses the already-sampled frames of one clip (exactly spec.frames of them).
std::vector<float> preprocess_clip(const std::vector<FrameView>& sampled, const PreprocessSpec& spec);

// Samples one clip from all decoded frames of a video and preprocesses it.
std::vector<float> preprocess_video(const std::vector<FrameView>& frames, const PreprocessSpec& spec);

}  // namespace vmf

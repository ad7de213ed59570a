#include "vmf/preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "vmf/error.h"

namespace vmf {
namespace {

// Source rows/columns and the weight of `hi` for output pixels start .. start + count - 1.
struct AxisWeights {
  std::vector<int> lo, hi;
  std::vector<double> w;
};

AxisWeights axis_weights(int in_size, int out_size, int start, int count) {
  AxisWeights a;
  a.lo.resize(count);
  a.hi.resize(count);
  a.w.resize(count);
  const double scale = double(in_size) / double(out_size);
  for (int i = 0; i < count; ++i) {
    const double src = std::clamp((double(start + i) + 0.5) * scale - 0.5, 0.0, double(in_size - 1));
    const int lo = int(std::floor(src));
    a.lo[i] = lo;
    a.hi[i] = std::min(lo + 1, in_size - 1);
    a.w[i] = src - lo;
  }
  return a;
}

// Channel offsets of R, G, B inside one pixel.
std::array<int, 3> rgb_offsets(PixelFormat format) {
  switch (format) {
    case PixelFormat::kGray: return {0, 0, 0};
    case PixelFormat::kRGB:
    case PixelFormat::kRGBA: return {0, 1, 2};
    case PixelFormat::kBGRA: return {2, 1, 0};
  }
  throw Error("unknown pixel format");
}

}  // namespace

int bytes_per_pixel(PixelFormat format) {
  switch (format) {
    case PixelFormat::kGray: return 1;
    case PixelFormat::kRGB: return 3;
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRA: return 4;
  }
  throw Error("unknown pixel format");
}

std::vector<int64_t> sample_indices(int64_t num_frames, int frames) {
  if (num_frames < 1) throw Error("the video has no decodable frames");
  if (frames < 1) throw Error("a clip needs at least one frame (preprocessing.frames >= 1)");
  std::vector<int64_t> idx(frames);
  for (int64_t i = 0; i < frames; ++i) {
    idx[i] = std::min(((2 * i + 1) * num_frames) / (2 * int64_t(frames)), num_frames - 1);
  }
  return idx;
}

std::pair<int, int> resized_size(int height, int width, int short_side) {
  if (height < 1 || width < 1) throw Error("a frame must be at least 1x1 pixels");
  // std::nearbyint rounds half to even, like Python's round().
  if (height <= width) {
    return {short_side, std::max(short_side, int(std::nearbyint(double(width) * short_side / height)))};
  }
  return {std::max(short_side, int(std::nearbyint(double(height) * short_side / width))), short_side};
}

void resize_center_crop(const FrameView& frame, int short_side, int crop, double* out) {
  if (frame.data == nullptr || frame.height < 1 || frame.width < 1) throw Error("empty frame (no pixels)");
  const auto [rh, rw] = resized_size(frame.height, frame.width, short_side);
  if (rh < crop || rw < crop) {
    throw Error("short_side " + std::to_string(short_side) + " is smaller than the crop " + std::to_string(crop));
  }
  const int bpp = bytes_per_pixel(frame.format);
  const size_t stride = frame.row_stride ? frame.row_stride : size_t(frame.width) * bpp;
  if (stride < size_t(frame.width) * bpp) throw Error("frame row_stride is smaller than width * bytes per pixel");
  const AxisWeights ys = axis_weights(frame.height, rh, (rh - crop) / 2, crop);
  const AxisWeights xs = axis_weights(frame.width, rw, (rw - crop) / 2, crop);
  const std::array<int, 3> off = rgb_offsets(frame.format);
  // Rows first, then columns (the order vmf_deploy.preprocess uses), in double precision.
  std::vector<double> rows(size_t(crop) * frame.width * 3);
  for (int y = 0; y < crop; ++y) {
    const uint8_t* lo = frame.data + size_t(ys.lo[y]) * stride;
    const uint8_t* hi = frame.data + size_t(ys.hi[y]) * stride;
    const double wy = ys.w[y];
    double* row = rows.data() + size_t(y) * frame.width * 3;
    for (int x = 0; x < frame.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const size_t i = size_t(x) * bpp + off[c];
        row[x * 3 + c] = double(lo[i]) * (1.0 - wy) + double(hi[i]) * wy;
      }
    }
  }
  for (int y = 0; y < crop; ++y) {
    const double* row = rows.data() + size_t(y) * frame.width * 3;
    for (int x = 0; x < crop; ++x) {
      const double wx = xs.w[x];
      for (int c = 0; c < 3; ++c) {
        out[(size_t(y) * crop + x) * 3 + c] = row[xs.lo[x] * 3 + c] * (1.0 - wx) + row[xs.hi[x] * 3 + c] * wx;
      }
    }
  }
}

ClipBuilder::ClipBuilder(const PreprocessSpec& spec)
    : spec_(spec),
      tensor_(size_t(3) * spec.frames * spec.crop * spec.crop),
      filled_(spec.frames, false),
      pixels_(size_t(spec.crop) * spec.crop * 3) {
  if (spec.frames < 1 || spec.crop < 1 || spec.short_side < spec.crop) {
    throw Error("invalid preprocessing spec: need frames >= 1, crop >= 1 and short_side >= crop");
  }
}

void ClipBuilder::set_frame(int t, const FrameView& frame) {
  if (t < 0 || t >= spec_.frames) {
    throw Error("time slot " + std::to_string(t) + " is outside the clip [0, " + std::to_string(spec_.frames) + ")");
  }
  resize_center_crop(frame, spec_.short_side, spec_.crop, pixels_.data());
  const size_t plane = size_t(spec_.crop) * spec_.crop;
  for (int c = 0; c < 3; ++c) {
    float* dst = tensor_.data() + (size_t(c) * spec_.frames + t) * plane;
    for (size_t i = 0; i < plane; ++i) {
      dst[i] = float((pixels_[i * 3 + c] * spec_.scale - spec_.mean[c]) / spec_.std_dev[c]);
    }
  }
  filled_[t] = true;
}

bool ClipBuilder::complete() const { return std::all_of(filled_.begin(), filled_.end(), [](bool f) { return f; }); }

const std::vector<float>& ClipBuilder::tensor() const {
  if (!complete()) throw Error("the clip is incomplete: set_frame was not called for every time slot");
  return tensor_;
}

std::vector<float> preprocess_clip(const std::vector<FrameView>& sampled, const PreprocessSpec& spec) {
  if (int(sampled.size()) != spec.frames) {
    throw Error("expected " + std::to_string(spec.frames) + " sampled frames, got " + std::to_string(sampled.size()) +
                "; use sample_indices first");
  }
  ClipBuilder clip(spec);
  for (int t = 0; t < spec.frames; ++t) clip.set_frame(t, sampled[t]);
  return clip.tensor();
}

std::vector<float> preprocess_video(const std::vector<FrameView>& frames, const PreprocessSpec& spec) {
  const std::vector<int64_t> idx = sample_indices(int64_t(frames.size()), spec.frames);
  std::vector<FrameView> sampled;
  sampled.reserve(idx.size());
  for (int64_t i : idx) sampled.push_back(frames[size_t(i)]);
  return preprocess_clip(sampled, spec);
}

}  // namespace vmf

// Preprocessing on small known images: sampling, resize arithmetic, crop, normalisation, formats.
#include <gtest/gtest.h>

#include <numeric>

#include "vmf/error.h"
#include "vmf/preprocess.h"

namespace {

vmf::PreprocessSpec raw_spec(int frames, int crop, int short_side) {
  // scale 1, mean 0, std 1: the output is the resized pixel values themselves.
  vmf::PreprocessSpec s;
  s.frames = frames;
  s.crop = crop;
  s.short_side = short_side;
  s.mean = {0, 0, 0};
  s.std_dev = {1, 1, 1};
  s.scale = 1.0;
  return s;
}

std::vector<uint8_t> ramp(int h, int w, int channels) {
  std::vector<uint8_t> px(size_t(h) * w * channels);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i * 37 + 11) % 251);
  return px;
}

}  // namespace

TEST(Sampling, CoversTheWholeVideo) {
  const auto idx = vmf::sample_indices(640, 64);
  ASSERT_EQ(idx.size(), 64u);
  EXPECT_EQ(idx.front(), 5);
  EXPECT_EQ(idx.back(), 635);
  for (size_t i = 1; i < idx.size(); ++i) EXPECT_EQ(idx[i] - idx[i - 1], 10);
  EXPECT_EQ(vmf::sample_indices(7, 3), (std::vector<int64_t>{1, 3, 5}));  // floor((2i+1)*7/6)
}

TEST(Sampling, ShortVideoRepeatsFramesInOrder) {
  const auto idx = vmf::sample_indices(3, 8);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 0, 0, 1, 1, 2, 2, 2}));
  EXPECT_EQ(vmf::sample_indices(1, 4), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_THROW(vmf::sample_indices(0, 4), vmf::Error);
}

TEST(Resize, SizesKeepAspectAndRoundHalfToEven) {
  EXPECT_EQ(vmf::resized_size(480, 640, 224), (std::pair<int, int>{224, 299}));
  EXPECT_EQ(vmf::resized_size(1920, 1080, 172), (std::pair<int, int>{306, 172}));
  EXPECT_EQ(vmf::resized_size(2, 3, 3), (std::pair<int, int>{3, 4}));  // 4.5 -> 4, as Python's round()
  EXPECT_EQ(vmf::resized_size(2, 5, 3), (std::pair<int, int>{3, 8}));  // 7.5 -> 8
  EXPECT_EQ(vmf::resized_size(10, 10, 4), (std::pair<int, int>{4, 4}));
}

TEST(Resize, IdentityResizeIsACenterCrop) {
  const auto px = ramp(8, 10, 3);
  std::vector<double> out(4 * 4 * 3);
  vmf::resize_center_crop({px.data(), 8, 10, vmf::PixelFormat::kRGB, 0}, 8, 4, out.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_DOUBLE_EQ(out[(y * 4 + x) * 3 + c], px[((y + 2) * 10 + x + 3) * 3 + c]);
}

TEST(Resize, DownscaleByTwoAveragesPixelQuads) {
  const auto px = ramp(8, 8, 3);
  std::vector<double> out(4 * 4 * 3);
  vmf::resize_center_crop({px.data(), 8, 8, vmf::PixelFormat::kRGB, 0}, 4, 4, out.data());
  auto at = [&](int y, int x, int c) { return double(px[(y * 8 + x) * 3 + c]); };
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) {
        const double expect =
            (at(2 * y, 2 * x, c) + at(2 * y + 1, 2 * x, c) + at(2 * y, 2 * x + 1, c) + at(2 * y + 1, 2 * x + 1, c)) / 4;
        EXPECT_NEAR(out[(y * 4 + x) * 3 + c], expect, 1e-9);
      }
}

TEST(Resize, UpscaleUsesHalfPixelCentresAndClamps) {
  // One row 2 pixels wide, gray: a=0, b=100. Upscaled x2: src x = -0.25, 0.25, 0.75, 1.25 -> clamp.
  const std::vector<uint8_t> px = {0, 100, 0, 100};  // 2x2 gray, columns a|b
  std::vector<double> out(4 * 4 * 3);
  vmf::resize_center_crop({px.data(), 2, 2, vmf::PixelFormat::kGray, 0}, 4, 4, out.data());
  const double row[4] = {0, 25, 75, 100};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(out[(y * 4 + x) * 3 + c], row[x], 1e-12);
}

TEST(Resize, PixelFormatsAndStrideAgree) {
  const int h = 5, w = 7;
  const auto rgb = ramp(h, w, 3);
  std::vector<uint8_t> rgba, bgra, padded;
  for (int i = 0; i < h * w; ++i) {
    rgba.insert(rgba.end(), {rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 255});
    bgra.insert(bgra.end(), {rgb[i * 3 + 2], rgb[i * 3 + 1], rgb[i * 3], 7});
  }
  for (int y = 0; y < h; ++y) {
    padded.insert(padded.end(), rgb.begin() + y * w * 3, rgb.begin() + (y + 1) * w * 3);
    padded.insert(padded.end(), 5, 0);  // row padding
  }
  std::vector<double> a(9 * 3), b(9 * 3), c(9 * 3), d(9 * 3);
  vmf::resize_center_crop({rgb.data(), h, w, vmf::PixelFormat::kRGB, 0}, 4, 3, a.data());
  vmf::resize_center_crop({rgba.data(), h, w, vmf::PixelFormat::kRGBA, 0}, 4, 3, b.data());
  vmf::resize_center_crop({bgra.data(), h, w, vmf::PixelFormat::kBGRA, 0}, 4, 3, c.data());
  vmf::resize_center_crop({padded.data(), h, w, vmf::PixelFormat::kRGB, size_t(w * 3 + 5)}, 4, 3, d.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, d);
}

TEST(Resize, Errors) {
  const std::vector<uint8_t> px(12, 0);
  std::vector<double> out(100);
  EXPECT_THROW(vmf::resize_center_crop({px.data(), 2, 2, vmf::PixelFormat::kRGB, 0}, 2, 3, out.data()), vmf::Error);
  EXPECT_THROW(vmf::resize_center_crop({nullptr, 2, 2, vmf::PixelFormat::kRGB, 0}, 2, 2, out.data()), vmf::Error);
  EXPECT_THROW(vmf::resize_center_crop({px.data(), 2, 2, vmf::PixelFormat::kRGB, 3}, 2, 2, out.data()), vmf::Error);
}

TEST(Clip, ConstantFrameNormalisesExactlyInNcthw) {
  vmf::PreprocessSpec spec = raw_spec(2, 4, 4);
  spec.mean = {0.45, 0.40, 0.35};
  spec.std_dev = {0.225, 0.25, 0.2};
  spec.scale = 1.0 / 255.0;
  std::vector<uint8_t> px(6 * 9 * 3);
  for (size_t i = 0; i < px.size(); i += 3) {
    px[i] = 10;
    px[i + 1] = 120;
    px[i + 2] = 250;
  }
  const vmf::FrameView f{px.data(), 6, 9, vmf::PixelFormat::kRGB, 0};
  const std::vector<float> t = vmf::preprocess_clip({f, f}, spec);
  ASSERT_EQ(t.size(), 3u * 2 * 4 * 4);
  const double value[3] = {10, 120, 250};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2 * 16; ++i) {
      EXPECT_FLOAT_EQ(t[c * 32 + i], float((value[c] / 255.0 - spec.mean[c]) / spec.std_dev[c]));
    }
}

TEST(Clip, FramesLandInTheirTimeSlot) {
  const vmf::PreprocessSpec spec = raw_spec(3, 2, 2);
  std::vector<std::vector<uint8_t>> frames;
  std::vector<vmf::FrameView> views;
  for (int n = 0; n < 6; ++n) frames.push_back(std::vector<uint8_t>(2 * 2, uint8_t(10 * n)));
  for (const auto& f : frames) views.push_back({f.data(), 2, 2, vmf::PixelFormat::kGray, 0});
  const std::vector<float> t = vmf::preprocess_video(views, spec);  // samples frames 1, 3, 5
  for (int c = 0; c < 3; ++c)
    for (int s = 0; s < 3; ++s)
      for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(t[(c * 3 + s) * 4 + i], float(10 * (2 * s + 1)));
}

TEST(Clip, BuilderRefusesIncompleteClipsAndBadSlots) {
  vmf::ClipBuilder clip(raw_spec(2, 2, 2));
  const std::vector<uint8_t> px(4, 1);
  clip.set_frame(0, {px.data(), 2, 2, vmf::PixelFormat::kGray, 0});
  EXPECT_FALSE(clip.complete());
  EXPECT_THROW(clip.tensor(), vmf::Error);
  EXPECT_THROW(clip.set_frame(2, {px.data(), 2, 2, vmf::PixelFormat::kGray, 0}), vmf::Error);
  clip.set_frame(1, {px.data(), 2, 2, vmf::PixelFormat::kGray, 0});
  EXPECT_TRUE(clip.complete());
  EXPECT_EQ(clip.tensor().size(), 3u * 2 * 2 * 2);
  EXPECT_THROW(vmf::preprocess_clip({}, raw_spec(2, 2, 2)), vmf::Error);
}

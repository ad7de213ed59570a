#include "vmf/image_io.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "vmf/error.h"

namespace vmf {
namespace {

// Next header token of a PNM file, skipping whitespace and '#' comments.
std::string next_token(std::istream& in, const std::string& path) {
  std::string token;
  int c;
  while ((c = in.get()) != EOF) {
    if (c == '#') {
      while ((c = in.get()) != EOF && c != '\n') {
      }
      continue;
    }
    if (std::isspace(c)) {
      if (!token.empty()) return token;
      continue;
    }
    token.push_back(char(c));
  }
  if (token.empty()) throw Error(path + ": truncated PNM header");
  return token;
}

int header_int(std::istream& in, const std::string& path, const char* what) {
  const std::string token = next_token(in, path);
  if (token.empty() || token.size() > 9 || !std::all_of(token.begin(), token.end(), ::isdigit)) {
    throw Error(path + ": bad PNM " + what + " '" + token + "'");
  }
  return std::stoi(token);
}

}  // namespace

Image read_pnm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open frame " + path);
  const std::string magic = next_token(in, path);
  Image image;
  if (magic == "P6") {
    image.format = PixelFormat::kRGB;
  } else if (magic == "P5") {
    image.format = PixelFormat::kGray;
  } else {
    throw Error(path + " is not a binary PPM/PGM (magic '" + magic +
                "', expected P6 or P5); write frames with e.g. `ffmpeg -i video.mp4 DIR/%06d.ppm`");
  }
  image.width = header_int(in, path, "width");
  image.height = header_int(in, path, "height");
  const int maxval = header_int(in, path, "maxval");
  if (image.width < 1 || image.height < 1) throw Error(path + ": image has no pixels");
  if (maxval != 255) throw Error(path + ": maxval " + std::to_string(maxval) + " unsupported; frames must be 8-bit");
  // next_token consumed exactly one whitespace byte after maxval: pixel data starts here.
  image.pixels.resize(size_t(image.width) * image.height * bytes_per_pixel(image.format));
  in.read(reinterpret_cast<char*>(image.pixels.data()), std::streamsize(image.pixels.size()));
  if (size_t(in.gcount()) != image.pixels.size()) {
    throw Error(path + ": truncated pixel data (" + std::to_string(in.gcount()) + " of " +
                std::to_string(image.pixels.size()) + " bytes)");
  }
  return image;
}

void write_pnm(const std::string& path, const Image& image) {
  if (image.format != PixelFormat::kRGB && image.format != PixelFormat::kGray) {
    throw Error("write_pnm writes RGB or grayscale images only");
  }
  std::ofstream out(path, std::ios::binary);
  out << (image.format == PixelFormat::kRGB ? "P6" : "P5") << "\n" << image.width << " " << image.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.pixels.data()), std::streamsize(image.pixels.size()));
  if (!out) throw Error("cannot write " + path);
}

std::vector<std::string> list_frame_files(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) throw Error("frames directory " + directory + " not found");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (entry.is_regular_file() && (ext == ".ppm" || ext == ".pgm" || ext == ".pnm")) {
      files.push_back(entry.path().string());
    }
  }
  if (ec) throw Error("cannot list " + directory + ": " + ec.message());
  if (files.empty()) {
    throw Error("frames directory " + directory +
                " has no .ppm/.pgm frames; decode a video with `ffmpeg -i video.mp4 " + directory + "/%06d.ppm`");
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace vmf

// SHA-256 against the FIPS 180-4 / NIST example vectors, incremental updates, and the tree hash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "vmf/error.h"
#include "vmf/sha256.h"

namespace fs = std::filesystem;

TEST(Sha256, NistVectors) {
  EXPECT_EQ(vmf::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(vmf::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(vmf::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string long_msg =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  EXPECT_EQ(vmf::sha256_hex(long_msg.data(), long_msg.size()),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, MillionAsIncrementallyInOddChunks) {
  vmf::Sha256 h;
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  const auto d = h.digest();
  EXPECT_EQ(vmf::to_hex(d.data(), d.size()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges hash identically in one update or byte by byte.
  for (size_t n : {55, 56, 57, 63, 64, 65, 119, 120, 128}) {
    const std::string msg(n, 'x');
    vmf::Sha256 h;
    for (char c : msg) h.update(&c, 1);
    const auto d = h.digest();
    EXPECT_EQ(vmf::to_hex(d.data(), d.size()), vmf::sha256_hex(msg.data(), msg.size())) << n;
  }
}

TEST(Sha256, DigestTwiceIsAnError) {
  vmf::Sha256 h;
  h.digest();
  EXPECT_THROW(h.digest(), vmf::Error);
  EXPECT_THROW(h.update("a", 1), vmf::Error);
}

TEST(Sha256, FileAndTree) {
  const fs::path dir = fs::temp_directory_path() / "vmf_sha256_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "a");
  std::ofstream(dir / "a" / "x.bin", std::ios::binary) << "abc";
  std::ofstream(dir / "a-b", std::ios::binary) << "";
  EXPECT_EQ(vmf::file_sha256_hex((dir / "a" / "x.bin").string()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Component-wise order puts "a/x.bin" before "a-b" (plain string order would not).
  vmf::Sha256 expect;
  const std::string p1 = "a/x.bin", p2 = "a-b";
  vmf::Sha256 f1;
  f1.update("abc", 3);
  const auto d1 = f1.digest();
  vmf::Sha256 f2;
  const auto d2 = f2.digest();
  expect.update(p1.data(), p1.size());
  expect.update(d1.data(), d1.size());
  expect.update(p2.data(), p2.size());
  expect.update(d2.data(), d2.size());
  const auto d = expect.digest();
  EXPECT_EQ(vmf::tree_sha256_hex(dir.string()), vmf::to_hex(d.data(), d.size()));
  EXPECT_EQ(vmf::artifact_sha256_hex(dir.string()), vmf::tree_sha256_hex(dir.string()));
  EXPECT_THROW(vmf::file_sha256_hex((dir / "missing").string()), vmf::Error);
  fs::remove_all(dir);
}

// Shared by the cache, compile, par_compile and jit tests: small C Programs whose results
// are checked element by element, and a private cache directory per test.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cache/memory_cache.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit::testing {

// C[i] = A[i] * scale + B[i] + offset; `scale` is baked into the source, so every value is a
// distinct Program (and cache key). `offset` comes from an included header when given.
inline Program axpy_program(int scale, const std::string& include_dir = "",
                            const std::string& name = "axpy") {
  std::string source;
  if (!include_dir.empty())
    source += "#include \"axpy_offset.h\"\n";
  else
    source += "#define AXPY_OFFSET 0.0f\n";
  source += fmt::format(
      "void axpy(const float* A, const float* B, float* C, int n) {{\n"
      "  for (int i = 0; i < n; ++i) C[i] = A[i] * {}.0f + B[i] + AXPY_OFFSET;\n"
      "}}\n",
      scale);
  ProgramBuilder builder(name);
  builder.source(source, Language::kC)
      .tensor("A", "float32", {"n"})
      .tensor("B", "float32", {"n"})
      .tensor("C", "float32", {"n"})
      .launch(Launch("axpy"))
      .out_idx({-1});
  if (!include_dir.empty()) builder.include_dir(include_dir);
  return builder.build();
}

// Runs the axpy kernel on random data of an odd size and checks every element.
inline void expect_axpy_correct(const Kernel& kernel, int scale, float offset = 0.0f) {
  ASSERT_TRUE(kernel);
  std::mt19937 rng(1234 + scale);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  const int64_t n = 1000 + 37 * (scale % 7);
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  for (auto& v : a) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  TensorView A(a.data(), "float32", {n});
  TensorView B(b.data(), "float32", {n});
  std::vector<Tensor> outs = kernel({A, B});
  ASSERT_EQ(outs.size(), 1u);
  const float* c = outs[0].data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float expected =
        a[static_cast<size_t>(i)] * static_cast<float>(scale) + b[static_cast<size_t>(i)] + offset;
    ASSERT_FLOAT_EQ(c[i], expected) << "element " << i << " of " << n << " (scale " << scale << ")";
  }
}

// Points TILELANG_CACHE_DIR at a fresh private directory, empties the in-process cache, and
// restores both afterwards.
class ScopedCacheDir {
 public:
  ScopedCacheDir() : dir_("tilejit-test-cache") {
    if (const char* old = std::getenv("TILELANG_CACHE_DIR")) old_ = old;
    root_ = dir_.path() / "cache";
    ::setenv("TILELANG_CACHE_DIR", root_.c_str(), 1);
    ::unsetenv("TILELANG_DISABLE_CACHE");
    detail::MemoryCache::global().clear();
  }
  ~ScopedCacheDir() {
    if (old_)
      ::setenv("TILELANG_CACHE_DIR", old_->c_str(), 1);
    else
      ::unsetenv("TILELANG_CACHE_DIR");
    detail::MemoryCache::global().clear();
  }
  ScopedCacheDir(const ScopedCacheDir&) = delete;
  ScopedCacheDir& operator=(const ScopedCacheDir&) = delete;

  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& scratch() const { return dir_.path(); }
  std::filesystem::path entry(const std::string& key) const {
    return root_ / "v1" / key.substr(0, 2) / key;
  }

 private:
  detail::TempDir dir_;
  std::filesystem::path root_;
  std::optional<std::string> old_;
};

}  // namespace tilejit::testing

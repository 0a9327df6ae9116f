// par_compile: results in input order, ignore_error, errors propagated after every compile
// has finished, and real parallelism (the memory cache never serializes distinct keys).
#include <gtest/gtest.h>

#include "cache_test_support.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"

namespace tilejit {
namespace {

using detail::CompileSource;
using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::ScopedCacheDir;

std::vector<Program> programs_with_scales(const std::vector<int>& scales) {
  std::vector<Program> programs;
  for (int scale : scales)
    programs.push_back(axpy_program(scale, "", fmt::format("axpy_{}", scale)));
  return programs;
}

Program broken_program(const std::string& name) {
  Program program = axpy_program(99, "", name);
  program.source += "int broken = ;\n";
  return program;
}

TEST(ParCompile, ResultsAreInInputOrder) {
  ScopedCacheDir cache;
  const std::vector<int> scales{7, 2, 9, 4, 11, 3, 8};
  const std::vector<Program> programs = programs_with_scales(scales);
  const std::vector<Kernel> kernels = par_compile(programs, {}, 3);
  ASSERT_EQ(kernels.size(), programs.size());
  for (size_t i = 0; i < kernels.size(); ++i) {
    EXPECT_EQ(kernels[i].program().name, programs[i].name);
    expect_axpy_correct(kernels[i], scales[i]);
  }
  // The same list again: every one a memory hit, same Kernels.
  const std::vector<Kernel> again = par_compile(programs, {}, 2);
  for (size_t i = 0; i < again.size(); ++i)
    EXPECT_EQ(&detail::kernel_state(again[i]), &detail::kernel_state(kernels[i]));
}

TEST(ParCompile, DuplicatesCompileOnce) {
  ScopedCacheDir cache;
  const std::vector<Program> programs = programs_with_scales({5, 5, 5, 5});
  const std::vector<Kernel> kernels = par_compile(programs, {}, 4);
  for (const Kernel& kernel : kernels)
    EXPECT_EQ(&detail::kernel_state(kernel), &detail::kernel_state(kernels[0]));
  expect_axpy_correct(kernels[3], 5);
}

TEST(ParCompile, IgnoreErrorLeavesAnEmptyKernelAndLogs) {
  ScopedCacheDir cache;
  std::vector<Program> programs = programs_with_scales({2, 3, 4});
  programs.insert(programs.begin() + 1, broken_program("broken_one"));
  ::testing::internal::CaptureStderr();
  const std::vector<Kernel> kernels = par_compile(programs, {}, 2, /*ignore_error=*/true);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(kernels.size(), 4u);
  EXPECT_FALSE(kernels[1]);
  EXPECT_NE(log.find("broken_one"), std::string::npos) << log;
  EXPECT_NE(log.find("failed (ignored)"), std::string::npos) << log;
  expect_axpy_correct(kernels[0], 2);
  expect_axpy_correct(kernels[2], 3);
  expect_axpy_correct(kernels[3], 4);
}

TEST(ParCompile, FirstErrorIsRethrownAfterTheRestFinish) {
  ScopedCacheDir cache;
  std::vector<Program> programs = programs_with_scales({12, 13, 14, 15});
  programs.insert(programs.begin() + 1, broken_program("first_broken"));
  programs.push_back(broken_program("second_broken"));
  try {
    (void)par_compile(programs, {}, 2);
    ADD_FAILURE() << "no exception";
  } catch (const CompileError& e) {
    // The first failure in input order, whichever worker finished first.
    EXPECT_NE(std::string(e.what()).find("first_broken"), std::string::npos) << e.what();
    EXPECT_FALSE(e.log().empty());
  }
  // Every good Program was compiled before the error came back: all are memory hits now.
  for (const int scale : {12, 13, 14, 15}) {
    EXPECT_EQ(
        detail::compile_with_outcome(axpy_program(scale, "", fmt::format("axpy_{}", scale)), {})
            .source,
        CompileSource::kMemoryCache)
        << scale;
  }
}

TEST(ParCompile, ProgramErrorsPropagateWithTheirType) {
  ScopedCacheDir cache;
  std::vector<Program> programs = programs_with_scales({21});
  CompileOptions bad;
  bad.out_idx = std::vector<int>{7};
  EXPECT_THROW((void)par_compile(programs, bad, 2), ArgumentError);
  EXPECT_TRUE(par_compile(std::span<const Program>(), {}, 4).empty());
}

TEST(ParCompile, ManyWorkersManyPrograms) {
  ScopedCacheDir cache;
  std::vector<int> scales;
  for (int i = 0; i < 12; ++i) scales.push_back(30 + i);
  const std::vector<Program> programs = programs_with_scales(scales);
  const std::vector<Kernel> kernels = par_compile(programs, {}, 8);
  for (size_t i = 0; i < kernels.size(); ++i) expect_axpy_correct(kernels[i], scales[i]);
}

}  // namespace
}  // namespace tilejit

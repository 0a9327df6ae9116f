// The C++ jit: lazy mode memoizes Kernels on the compile-time arguments, eager mode
// specializes on the tensors it is called with and runs at once.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "cache_test_support.h"
#include "compile/kernel_state.h"
#include "tilejit/jit.h"

namespace tilejit {
namespace {

using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::ScopedCacheDir;

TEST(JitLazy, MemoizesOnArguments) {
  ScopedCacheDir cache;
  std::atomic<int> calls{0};
  auto axpy = jit([&](int scale) {
    ++calls;
    return axpy_program(scale);
  });
  const Kernel k3 = axpy(3);
  expect_axpy_correct(k3, 3);
  EXPECT_EQ(&detail::kernel_state(axpy(3)), &detail::kernel_state(k3));
  EXPECT_EQ(calls.load(), 1);
  const Kernel k4 = axpy(4);
  expect_axpy_correct(k4, 4);
  EXPECT_NE(&detail::kernel_state(k4), &detail::kernel_state(k3));
  EXPECT_EQ(calls.load(), 2);

  EXPECT_EQ(axpy.parse_cache_key(3), k3.cache_key());
  EXPECT_NE(axpy.parse_cache_key(4), k3.cache_key());
  EXPECT_EQ(axpy.get_kernel_source(3), k3.get_kernel_source());
  EXPECT_NE(axpy.get_kernel_source(3).find("3.0f"), std::string::npos);

  // A second jit object over the same function finds the same kernel in the memory cache.
  auto again = jit([](int scale) { return axpy_program(scale); });
  EXPECT_EQ(&detail::kernel_state(again(3)), &detail::kernel_state(k3));
}

// A thread's last hit answers a repeat without the memo's lock; it must never answer for
// another Jit of the same type (other options, or a later Jit at a reused address) nor for
// other arguments.
TEST(JitLazy, TheLastHitBelongsToOneJitAndOneArgumentTuple) {
  ScopedCacheDir cache;
  const auto make = [](int scale, const std::string& name) {
    return axpy_program(scale, "", name);
  };
  auto first = jit(make);
  const Kernel a = first(3, "axpy_a");
  EXPECT_EQ(&detail::kernel_state(first(3, "axpy_a")), &detail::kernel_state(a));
  const Kernel b = first(5, "axpy_a");
  expect_axpy_correct(b, 5);
  EXPECT_NE(&detail::kernel_state(first(3, "axpy_a")), &detail::kernel_state(b));
  expect_axpy_correct(first(3, "axpy_a"), 3);

  // The same function type, other options: its own kernels, never the other Jit's last hit.
  CompileOptions other;
  other.compile_flags = {"-O1"};
  auto second = jit(make, other);
  (void)first(3, "axpy_a");  // this thread's last hit is now first's
  const Kernel c = second(3, "axpy_a");
  EXPECT_NE(&detail::kernel_state(c), &detail::kernel_state(a));
  EXPECT_NE(c.cache_key(), a.cache_key());
  expect_axpy_correct(c, 3);

  // Jits made and dropped one after another (their States may reuse an address) each run
  // their own function.
  for (int scale = 6; scale < 10; ++scale) {
    auto once =
        jit([scale](int, const std::string& name) { return axpy_program(scale, "", name); });
    expect_axpy_correct(once(0, "axpy_b"), scale);
    expect_axpy_correct(once(0, "axpy_b"), scale);
  }
}

TEST(JitLazy, OptionsApply) {
  ScopedCacheDir cache;
  CompileOptions options;
  options.out_idx = std::vector<int>{1, 2};
  auto axpy =
      jit([](int scale, std::string name) { return axpy_program(scale, "", name); }, options);
  const Kernel kernel = axpy(5, std::string("two_outputs"));
  EXPECT_EQ(kernel.out_idx(), (std::vector<int>{1, 2}));
  EXPECT_EQ(kernel.program().name, "two_outputs");
}

TEST(JitLazy, ParCompileOverArgumentTuples) {
  ScopedCacheDir cache;
  std::atomic<int> calls{0};
  auto axpy = jit([&](int scale) {
    ++calls;
    return axpy_program(scale);
  });
  const std::vector<Kernel> kernels = axpy.par_compile({{6}, {2}, {9}, {6}}, 3);
  ASSERT_EQ(kernels.size(), 4u);
  expect_axpy_correct(kernels[0], 6);
  expect_axpy_correct(kernels[1], 2);
  expect_axpy_correct(kernels[2], 9);
  EXPECT_EQ(&detail::kernel_state(kernels[3]), &detail::kernel_state(kernels[0]));
  const int after_par = calls.load();
  EXPECT_EQ(&detail::kernel_state(axpy(9)),
            &detail::kernel_state(kernels[2]));  // memoized by par_compile
  EXPECT_EQ(calls.load(), after_par);
}

TEST(JitLazy, ParCompileIgnoresFailingConfigurations) {
  ScopedCacheDir cache;
  auto axpy = jit([](int scale) {
    if (scale < 0) throw ProgramError("scale must be positive");
    return axpy_program(scale);
  });
  ::testing::internal::CaptureStderr();
  const std::vector<Kernel> kernels = axpy.par_compile({{3}, {-1}}, 2, /*ignore_error=*/true);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(kernels[0]);
  EXPECT_FALSE(kernels[1]);
  EXPECT_NE(log.find("configuration 1"), std::string::npos) << log;
  EXPECT_THROW((void)axpy.par_compile({{3}, {-1}}, 2), ProgramError);
}

TEST(JitLazy, ConcurrentCallersShareOneKernel) {
  ScopedCacheDir cache;
  auto axpy = jit([](int scale) { return axpy_program(scale); });
  std::vector<Kernel> seen(6);
  std::vector<std::thread> threads;
  for (auto& slot : seen) threads.emplace_back([&] { slot = axpy(8); });
  for (auto& thread : threads) thread.join();
  for (const Kernel& kernel : seen)
    EXPECT_EQ(&detail::kernel_state(kernel), &detail::kernel_state(seen[0]));
  expect_axpy_correct(seen[0], 8);
}

// Eager mode: the Program is specialized on the tensors' dtype; a float64 call compiles a
// second kernel, a repeat of either compiles nothing.
Program scale_program_for(DataType dtype) {
  const std::string c_type = dtype == DataType::parse("float64") ? "double" : "float";
  return ProgramBuilder("eager_scale_" + dtype.str())
      .source(fmt::format("void eager_scale(const {0}* X, {0}* Y, int n) {{\n"
                          "  for (int i = 0; i < n; ++i) Y[i] = X[i] * 3 + 1;\n"
                          "}}\n",
                          c_type),
              Language::kC)
      .tensor("X", dtype.str(), {"n"})
      .tensor("Y", dtype.str(), {"n"})
      .launch(Launch("eager_scale"))
      .build();
}

template <class T>
void check_eager(auto& eager, const char* dtype, int64_t n) {
  std::mt19937 rng(static_cast<unsigned>(n));
  std::uniform_real_distribution<double> dist(-8, 8);
  std::vector<T> x(static_cast<size_t>(n)), y(static_cast<size_t>(n), T(-1));
  for (auto& v : x) v = static_cast<T>(dist(rng));
  TensorView X(x.data(), dtype, {n});
  TensorView Y(y.data(), dtype, {n});
  (void)eager({X, Y});
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[static_cast<size_t>(i)], x[static_cast<size_t>(i)] * T(3) + T(1))
        << dtype << " element " << i;
  }
}

TEST(JitEager, SpecializesOnTensorsAndRuns) {
  ScopedCacheDir cache;
  std::atomic<int> calls{0};
  std::vector<ArgSpecs> seen;
  auto eager = jit([&](const ArgSpecs& specs) {
    ++calls;
    seen.push_back(specs);
    return scale_program_for(specs.at(0).dtype);
  });
  check_eager<float>(eager, "float32", 1001);
  EXPECT_EQ(calls.load(), 1);
  ASSERT_EQ(seen[0].size(), 2u);
  EXPECT_EQ(seen[0][0].kind, Arg::Kind::kTensor);
  EXPECT_EQ(seen[0][0].shape, std::vector<int64_t>{1001});
  EXPECT_EQ(seen[0][1].dtype, DataType::parse("float32"));
  check_eager<float>(eager, "float32", 1001);  // same specs: memoized
  EXPECT_EQ(calls.load(), 1);
  check_eager<double>(eager, "float64", 1001);  // new dtype: specialized again
  EXPECT_EQ(calls.load(), 2);
  check_eager<float>(eager, "float32", 77);  // new shape: the function decides again
  EXPECT_EQ(calls.load(), 3);
  check_eager<double>(eager, "float64", 1001);
  EXPECT_EQ(calls.load(), 3);
}

TEST(JitEager, BadArgumentsStillFailTheBinder) {
  ScopedCacheDir cache;
  auto eager = jit([](const ArgSpecs& specs) { return scale_program_for(specs.at(0).dtype); });
  std::vector<float> x(10), y(12);
  TensorView X(x.data(), "float32", {10});
  TensorView Y(y.data(), "float32", {12});
  try {
    (void)eager({X, Y});
    ADD_FAILURE() << "mismatched shapes accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("Y"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tilejit

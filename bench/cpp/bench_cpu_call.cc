// Host overhead of the CPU call path: Kernel::operator() (Binder checks + call_packed) of an
// empty C function taking 3 tensors and 1 int, against a direct call of the same function
// from the same shared library through a function pointer. Both run in this process, in this
// run; the ratio is printed at the end.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "backend/shared_library.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace {

constexpr const char* kSource = R"(
void empty_kernel(float* A, float* B, float* C, int n) {
  (void)A; (void)B; (void)C; (void)n;
}
)";

using EmptyFn = void (*)(float*, float*, float*, int);

struct Fixture {
  Fixture() {
    const tilejit::Program program = tilejit::ProgramBuilder("empty_kernel")
                                         .source(kSource, tilejit::Language::kC)
                                         .tensor("A", "float32", {"n"})
                                         .tensor("B", "float32", {"n"})
                                         .tensor("C", "float32", {"n"})
                                         .scalar("n", "int32")
                                         .launch(tilejit::Launch("empty_kernel"))
                                         .build();
    kernel = tilejit::compile(program);
    // The very function the kernel calls, loaded a second time for the direct baseline.
    library = tilejit::detail::SharedLibrary::from_bytes(kernel.artifact().binary, "direct");
    direct = reinterpret_cast<EmptyFn>(library.symbol("empty_kernel"));
  }

  static constexpr int64_t kN = 1024;
  std::vector<float> a = std::vector<float>(kN), b = std::vector<float>(kN),
                     c = std::vector<float>(kN);
  tilejit::Kernel kernel;
  tilejit::detail::SharedLibrary library;
  EmptyFn direct = nullptr;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_TilejitCall(benchmark::State& state) {
  Fixture& f = fixture();
  tilejit::TensorView A(f.a.data(), "float32", {Fixture::kN});
  tilejit::TensorView B(f.b.data(), "float32", {Fixture::kN});
  tilejit::TensorView C(f.c.data(), "float32", {Fixture::kN});
  const int n = static_cast<int>(Fixture::kN);
  for (auto _ : state) {
    auto outputs = f.kernel({A, B, C, n});
    benchmark::DoNotOptimize(outputs);
  }
}
BENCHMARK(BM_TilejitCall);

void BM_DirectCall(benchmark::State& state) {
  Fixture& f = fixture();
  float* a = f.a.data();
  float* b = f.b.data();
  float* c = f.c.data();
  int n = static_cast<int>(Fixture::kN);
  for (auto _ : state) {
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(n);
    f.direct(a, b, c, n);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_DirectCall);

// Prints as usual and remembers each benchmark's CPU time per call for the ratio (CPU time,
// so that other processes on a shared machine do not distort it): the median over
// repetitions when --benchmark_repetitions is given, else the single run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      // GetAdjustedCPUTime() is per iteration, in the run's time unit (ns by default).
      if (median || single) nanoseconds[run.run_name.function_name] = run.GetAdjustedCPUTime();
    }
  }
  std::map<std::string, double> nanoseconds;
};

}  // namespace

int main(int argc, char** argv) {
  // Compile into a private cache so the benchmark leaves nothing behind.
  tilejit::detail::TempDir cache("tilejit-bench-cache");
  ::setenv("TILELANG_CACHE_DIR", cache.path().c_str(), 1);
  benchmark::Initialize(&argc, argv);
  fixture();  // compile before timing anything
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto ours = reporter.nanoseconds.find("BM_TilejitCall");
  const auto direct = reporter.nanoseconds.find("BM_DirectCall");
  if (ours != reporter.nanoseconds.end() && direct != reporter.nanoseconds.end()) {
    std::printf(
        "\nCPU time per call: tilejit %.1f ns, direct %.1f ns: overhead %.1f ns, ratio %.1fx\n",
        ours->second, direct->second, ours->second - direct->second, ours->second / direct->second);
  }
  benchmark::Shutdown();
  return 0;
}

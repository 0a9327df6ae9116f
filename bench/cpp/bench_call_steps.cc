// The CUDA call path's host steps up to the driver, one by one, on any machine (no GPU, no
// driver): what bench_launch's "call" rows pay on top of the raw cuLaunchKernelEx floor besides
// the driver's own context check (cuCtxGetCurrent) and launch. Each step runs the code the
// nvrtc executor runs, on tensors that claim to live on cuda:0 (nothing dereferences them):
//
//   Bind    Binder::bind: every argument check, symbol binding (the call's first step)
//   Shapes  grid, block and dynamic shared memory of each launch (CompiledExpr::eval)
//   Pack    pack_args: the kernel parameter buffer and pointer array of each launch
//
// for bench_launch's case (a) (3 tensors + 1 float, grid ceildiv(n, 256)) and the 19-argument
// case of bench/python/bench_launch.py (5 tensors + 14 ints). CPU time per call, so that other
// processes on a shared machine do not distort it; see docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "call/binder.h"
#include "cuda/launch.h"
#include "tilejit/tilejit.h"

namespace {

using namespace tilejit;

constexpr int64_t kN = 4096;

const char* kSource = R"(
extern "C" __global__ void axpy(const float* __restrict__ x, const float* __restrict__ y,
                                float* __restrict__ out, float alpha, int n) {}
extern "C" __global__ void add19(const float* a, const float* b, const float* c, const float* d,
                                 float* e, int i0, int i1, int i2, int i3, int i4, int i5, int i6,
                                 int i7, int i8, int i9, int i10, int i11, int i12, int i13) {}
)";

Program axpy_program() {
  return ProgramBuilder("axpy")
      .source(kSource)
      .tensor("x", "float32", {"n"})
      .tensor("y", "float32", {"n"})
      .tensor("out", "float32", {"n"})
      .scalar("alpha", "float32")
      .launch(Launch("axpy").with_grid({"ceildiv(n, 256)"}).with_block({256}))
      .build();
}

Program add19_program() {
  ProgramBuilder builder("add19");
  builder.source(kSource);
  for (const char* name : {"a", "b", "c", "d", "e"}) builder.tensor(name, "float32", {kN});
  for (int k = 0; k < 14; ++k) builder.scalar("i" + std::to_string(k), "int32");
  builder.launch(Launch("add19").with_grid({kN / 256}).with_block({256}));
  return builder.build();
}

// One Program's binder, plan and arguments; tensors "on cuda:0" at made-up addresses.
struct Case {
  explicit Case(const Program& p, int tensors, std::vector<Arg> scalars)
      : program(p),
        binder(program, {}, dlpack::kDLCUDA),
        plan(cuda::build_program_plan(program, binder)) {
    views.reserve(static_cast<size_t>(tensors));
    for (int t = 0; t < tensors; ++t) {
      views.emplace_back(reinterpret_cast<void*>(uintptr_t{0x7f0000000000} + t * 0x100000),
                         "float32", std::initializer_list<int64_t>{kN}, Device::cuda(0));
    }
    for (const TensorView& v : views) args.emplace_back(v);
    for (const Arg& a : scalars) args.push_back(a);
  }
  Program program;
  detail::Binder binder;
  cuda::ProgramPlan plan;
  std::vector<TensorView> views;
  std::vector<Arg> args;
};

Case& axpy_case() {
  static Case c(axpy_program(), 3, {Arg(2.0f)});
  return c;
}

Case& add19_case() {
  static Case c = [] {
    std::vector<Arg> ints = {Arg(static_cast<int>(kN))};
    for (int k = 1; k < 14; ++k) ints.emplace_back(k);
    return Case(add19_program(), 5, ints);
  }();
  return c;
}

struct NoOutputs final : OutputAllocator {
  Tensor allocate(DataType, std::span<const int64_t>, Device) const override { return {}; }
};

void bind(benchmark::State& state, Case& c) {
  const NoOutputs none;
  detail::BoundCall bound;
  std::vector<Tensor> outputs;
  for (auto _ : state) {
    c.binder.bind(c.args, bound, none, outputs);
    benchmark::DoNotOptimize(bound);
  }
}

// What NvrtcExecutor::launch evaluates before it packs: 3 grid, 3 block, 1 shared-memory size.
void shapes(benchmark::State& state, Case& c) {
  const NoOutputs none;
  detail::BoundCall bound;
  std::vector<Tensor> outputs;
  c.binder.bind(c.args, bound, none, outputs);
  for (auto _ : state) {
    for (const cuda::LaunchPlan& launch : c.plan.launches) {
      int64_t sizes[7];
      for (int d = 0; d < 3; ++d) {
        sizes[d] = launch.grid[d].eval(bound.symbols.data());
        sizes[3 + d] = launch.block[d].eval(bound.symbols.data());
      }
      sizes[6] = launch.dynamic_smem.eval(bound.symbols.data());
      benchmark::DoNotOptimize(sizes);
    }
  }
}

void pack(benchmark::State& state, Case& c) {
  const NoOutputs none;
  detail::BoundCall bound;
  std::vector<Tensor> outputs;
  c.binder.bind(c.args, bound, none, outputs);
  alignas(16) std::byte buffer[cuda::kMaxArgBytes];
  void* pointers[cuda::kMaxKernelArgs];
  for (auto _ : state) {
    for (const cuda::LaunchPlan& launch : c.plan.launches) {
      cuda::pack_args(launch.layout, bound, nullptr, buffer, pointers);
      benchmark::DoNotOptimize(pointers);
      benchmark::ClobberMemory();
    }
  }
}

void BM_Bind_Axpy(benchmark::State& s) {
  bind(s, axpy_case());
}
void BM_Shapes_Axpy(benchmark::State& s) {
  shapes(s, axpy_case());
}
void BM_Pack_Axpy(benchmark::State& s) {
  pack(s, axpy_case());
}
void BM_Bind_19Args(benchmark::State& s) {
  bind(s, add19_case());
}
void BM_Shapes_19Args(benchmark::State& s) {
  shapes(s, add19_case());
}
void BM_Pack_19Args(benchmark::State& s) {
  pack(s, add19_case());
}
BENCHMARK(BM_Bind_Axpy);
BENCHMARK(BM_Shapes_Axpy);
BENCHMARK(BM_Pack_Axpy);
BENCHMARK(BM_Bind_19Args);
BENCHMARK(BM_Shapes_19Args);
BENCHMARK(BM_Pack_19Args);

}  // namespace

BENCHMARK_MAIN();

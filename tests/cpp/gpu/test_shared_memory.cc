// Static and dynamic shared memory together: a block gets 48 KB of both without opting in, so a
// kernel whose dynamic part alone fits (40 KB) still needs the dynamic limit raised when it has
// 16 KB of static __shared__ beside it. TileLang's warp-specialized Hopper GEMM is this case:
// 49,152 bytes of dynamic tiles plus static mbarriers, refused with CUDA_ERROR_INVALID_VALUE
// until both backends accounted for the static part.
#include "gpu/gpu_support.h"

namespace tilejit {
namespace {

using namespace gpu_test;

constexpr int64_t kStaticBytes = 4096 * 4;  // the kernel's __shared__ table
constexpr int64_t kCount = 10240;           // 40 KB of dynamic shared memory

Program static_and_dynamic_program(Expr dynamic_smem) {
  return ProgramBuilder("static_and_dynamic_smem")
      .source(kernel_source("static_and_dynamic_smem.cu"))
      .tensor("in", "float32", {"blocks", "count"})
      .tensor("bias", "float32", {4096})
      .tensor("out", "float32", {"blocks", "count"})
      .launch(Launch("static_and_dynamic_smem")
                  .with_grid({"blocks"})
                  .with_block({256})
                  .with_dynamic_smem(std::move(dynamic_smem)))
      .out_idx({2})
      .build();
}

void run_and_check(const Kernel& kernel, int64_t blocks, int64_t count) {
  const DataType f32 = DataType::parse("float32");
  std::vector<float> in = random_floats(static_cast<size_t>(blocks * count));
  std::vector<float> bias = random_floats(4096);
  Tensor In = to_device(in, {blocks, count}, f32);
  Tensor Bias = to_device(bias, {4096}, f32);
  std::vector<Tensor> outs = kernel({In, Bias});
  std::vector<float> out = to_host<float>(outs[0]);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t i = 0; i < count; ++i) {
      const float expected = in[b * count + count - 1 - i] + bias[(b + i) % 4096];
      ASSERT_EQ(out[b * count + i], expected) << "count=" << count << " b=" << b << " i=" << i;
    }
  }
}

// A constant 40 KB, as TileLang's lowering gives it: the nvcc wrapper's init() and the nvrtc
// executor must both opt in although 40 KB alone is under 48 KB.
TEST(GpuSharedMemory, StaticPlusConstantDynamicOver48KB) {
  TILEJIT_REQUIRE_GPU();
  Kernel kernel = compile_for_device(static_and_dynamic_program(kCount * 4));
  for (int64_t count : {kCount, int64_t{9999}, kCount}) {
    run_and_check(kernel, 7, count);
  }
}

// A symbolic size: the limit is raised when a call needs it (static + dynamic > 48 KB), never
// lowered, and a call whose sum exceeds the device's opt-in limit is refused before launching.
TEST(GpuSharedMemory, StaticPlusSymbolicDynamicOver48KB) {
  TILEJIT_REQUIRE_GPU();
  Kernel kernel = compile_for_device(static_and_dynamic_program("count * 4"));
  for (int64_t count : {int64_t{100}, kCount, int64_t{3001}, kCount}) {
    run_and_check(kernel, 5, count);
  }
  const int optin = device().max_shared_per_block_optin;
  // Fits alone as dynamic shared memory, not beside the static table.
  const int64_t too_many = (optin - kStaticBytes) / 4 + 1;
  ASSERT_LE(too_many * 4, optin);
  const DataType f32 = DataType::parse("float32");
  Tensor In = Tensor::empty(f32, std::vector<int64_t>{1, too_many}, Device::cuda(0));
  Tensor Bias = Tensor::empty(f32, std::vector<int64_t>{4096}, Device::cuda(0));
  if (!testing_nvrtc()) {
    EXPECT_THROW(kernel({In, Bias}), Error);
    return;
  }
  try {
    kernel({In, Bias});
    FAIL() << "launched with more shared memory than the device allows a block";
  } catch (const ArgumentError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("static_and_dynamic_smem"), std::string::npos) << what;
    // The driver's count of the static part: at least the table (the compiler may add more).
    EXPECT_NE(what.find("bytes of static shared memory"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(optin)), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace tilejit

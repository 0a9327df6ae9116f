// The Programs the wrapper generators are tested on (golden files in tests/data/golden/, and
// compile checks). Each CUDA/HIP source is real device code that nvcc/hipcc accept; each C
// source computes something the tests check against a plain reference.
#pragma once

#include <string>
#include <vector>

#include "tilejit/program.h"

namespace tilejit::testing {

struct GoldenCase {
  std::string name;  // the golden file stem: <language>_<name>
  Program program;
};

inline const char* kCudaVectorAdd = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void __launch_bounds__(256)
vector_add(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
)";

inline const char* kCudaScale2d = R"(#include <tilejit/cuda_device.h>

// Y = alpha * X over an M x N matrix, 16 x 16 threads per block.
extern "C" __global__ void scale2d(const float* X, float* Y, long long M, long long N, float alpha) {
  const long long col = blockIdx.x * 16LL + threadIdx.x;
  const long long row = blockIdx.y * 16LL + threadIdx.y;
  if (row < M && col < N) Y[row * N + col] = alpha * X[row * N + col];
}
)";

inline const char* kCudaThreeKernels = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void fill(float* X, int n, float value) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] = value;
}

extern "C" __global__ void add_one(float* X, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] += 1.0f;
}

extern "C" __global__ void copy_out(const float* X, float* Y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) Y[i] = X[i];
}
)";

inline const char* kCudaTma = R"(#include <tilejit/cuda_device.h>

// Both kernels only prove that the descriptors arrive; the golden test is about the host code.
extern "C" __global__ void tma_first(const __grid_constant__ CUtensorMap A_tile,
                                     const __grid_constant__ CUtensorMap X_im2col, float* out,
                                     int M) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < M) out[i] = (&A_tile != &X_im2col) ? 1.0f : 0.0f;
}

extern "C" __global__ void tma_second(const __grid_constant__ CUtensorMap X_im2col,
                                      const __grid_constant__ CUtensorMap A_tile, float* out,
                                      int M) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < M) out[i] += (&A_tile != &X_im2col) ? 1.0f : 0.0f;
}
)";

inline const char* kCudaL2 = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void reuse_sum(const float* A, float* B, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) B[i] = A[i] + A[(i + 1) % n];
}
)";

inline const char* kCudaCluster = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void cluster_pairs(float* X, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] *= 2.0f;
}

extern "C" __global__ void cluster_wide(float* X, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] += 1.0f;
}
)";

inline const char* kCudaCooperative = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void grid_wide(const int* in, int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * 3;
}
)";

inline const char* kCudaPdl = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void producer(float* X, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] = i;
}

// Launched with PDL: it may start before producer ends, so it waits for producer's writes.
extern "C" __global__ void consumer(const float* X, float* Y, int n) {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) Y[i] = X[i] * 0.5f;
}
)";

inline const char* kCudaSmem = R"(#include <tilejit/cuda_device.h>

extern "C" __global__ void stage_fixed(const float* A, float* B, int n) {
  extern __shared__ float staged[];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  staged[threadIdx.x] = i < n ? A[i] : 0.0f;
  __syncthreads();
  if (i < n) B[i] = staged[threadIdx.x];
}

extern "C" __global__ void stage_sized(const float* A, float* B, int n) {
  extern __shared__ float staged[];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  staged[threadIdx.x] = i < n ? A[i] : 0.0f;
  __syncthreads();
  if (i < n) B[i] += staged[threadIdx.x];
}
)";

// The same kernels for HIP (hipcc, or the syntax check with the test's HIP stand-in header).
inline const char* kHipVectorAdd = R"(#include <hip/hip_runtime.h>

extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
)";

inline const char* kHipScale2d = R"(#include <hip/hip_runtime.h>

extern "C" __global__ void scale2d(const float* X, float* Y, long long M, long long N, float alpha) {
  const long long col = blockIdx.x * 16LL + threadIdx.x;
  const long long row = blockIdx.y * 16LL + threadIdx.y;
  if (row < M && col < N) Y[row * N + col] = alpha * X[row * N + col];
}
)";

inline const char* kHipTwoKernels = R"(#include <hip/hip_runtime.h>

extern "C" __global__ void fill(float* X, int n, float value) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) X[i] = value;
}

extern "C" __global__ void stage_sized(const float* A, float* B, int n) {
  extern __shared__ float staged[];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  staged[threadIdx.x] = i < n ? A[i] : 0.0f;
  __syncthreads();
  if (i < n) B[i] += staged[threadIdx.x];
}
)";

inline const char* kCVectorAdd = R"(#include <stdint.h>

void vector_add(const float* restrict A, const float* restrict B, float* restrict C, int n) {
  for (int i = 0; i < n; ++i) C[i] = A[i] + B[i];
}
)";

inline const char* kCSaxpyThenScale = R"(#include <stdint.h>

// Y = alpha * X + Y, then Y *= factor, over n = rows * cols elements.
void saxpy(int64_t rows, int64_t cols, float alpha, const float* X, float* Y) {
  for (int64_t i = 0; i < rows * cols; ++i) Y[i] = alpha * X[i] + Y[i];
}

void scale(float* Y, int64_t rows, int64_t cols, double factor) {
  for (int64_t i = 0; i < rows * cols; ++i) Y[i] = (float)(Y[i] * factor);
}
)";

inline const char* kCRowSums = R"(#include <stdint.h>

// S[r] = sum of row r of an M x N int32 matrix; T = S + offset.
void row_sums(const int32_t* A, int64_t* S, int M, int N) {
  for (int r = 0; r < M; ++r) {
    int64_t sum = 0;
    for (int c = 0; c < N; ++c) sum += A[r * N + c];
    S[r] = sum;
  }
}

void add_offset(const int64_t* S, int64_t* T, int M, int offset) {
  for (int r = 0; r < M; ++r) T[r] = S[r] + offset;
}
)";

inline std::vector<GoldenCase> cuda_golden_cases() {
  std::vector<GoldenCase> cases;
  cases.push_back(
      {"single_launch",
       ProgramBuilder("vector_add")
           .source(kCudaVectorAdd)
           .tensor("A", "float32", {"n"})
           .tensor("B", "float32", {"n"})
           .tensor("C", "float32", {"n"})
           .launch(Launch("vector_add").with_grid({"ceildiv(n, 256)"}).with_block({256}))
           .out_idx({-1})
           .build()});
  cases.push_back({"symbolic_grid", ProgramBuilder("scale2d")
                                        .source(kCudaScale2d)
                                        .tensor("X", "float32", {"M", "N"})
                                        .tensor("Y", "float32", {"M", "N"})
                                        .scalar("alpha", "float32")
                                        .launch(Launch("scale2d")
                                                    .with_grid({"ceildiv(N, 16)", "ceildiv(M, 16)"})
                                                    .with_block({16, 16}))
                                        .build()});
  cases.push_back({"multi_launch",
                   ProgramBuilder("three_steps")
                       .source(kCudaThreeKernels)
                       .tensor("X", "float32", {"n"})
                       .tensor("Y", "float32", {"n"})
                       .scalar("value", "float32")
                       .launch(Launch("fill").with_grid({"ceildiv(n, 128)"}).with_block({128}))
                       .launch(Launch("add_one")
                                   .with_grid({"ceildiv(n, 128)"})
                                   .with_block({128})
                                   .with_args({"X", "n"}))
                       .launch(Launch("copy_out").with_grid({"(n + 255) / 256"}).with_block({256}))
                       .build()});
  {
    TmaDescriptor tile;
    tile.name = "A_tile";
    tile.buffer = "A";
    tile.rank = 2;
    tile.box_dims = {64, 64};
    tile.swizzle = "128b";
    tile.l2_promotion = "128b";
    TmaDescriptor im2col;
    im2col.name = "X_im2col";
    im2col.buffer = "X";
    im2col.kind = TmaDescriptor::Kind::kIm2col;
    im2col.rank = 4;
    im2col.lower_corner = {-1, -1};
    im2col.upper_corner = {-1, -1};
    im2col.channels_per_pixel = 64;
    im2col.pixels_per_column = 128;
    im2col.oob_fill = "nan_request_zero_fma";
    cases.push_back(
        {"tma_shared",
         ProgramBuilder("tma_shared")
             .source(kCudaTma)
             .tensor("A", "float16", {"M", "K"})
             .tensor("X", "float16", {"N", "H", "W", 64})
             .tensor("out", "float32", {"M"})
             .tma(tile)
             .tma(im2col)
             .launch(Launch("tma_first").with_grid({"ceildiv(M, 128)"}).with_block({128}))
             .launch(Launch("tma_second").with_grid({"ceildiv(M, 128)"}).with_block({128}))
             .build()});
  }
  {
    L2Window window;
    window.param = "A";
    window.num_bytes = Expr("n * 4");
    window.hit_ratio = 0.6;
    cases.push_back({"l2_window", ProgramBuilder("l2_window")
                                      .source(kCudaL2)
                                      .tensor("A", "float32", {"n"})
                                      .tensor("B", "float32", {"n"})
                                      .launch(Launch("reuse_sum")
                                                  .with_grid({"ceildiv(n, 256)"})
                                                  .with_block({256})
                                                  .with_l2_window(window))
                                      .build()});
  }
  cases.push_back(
      {"cluster",
       ProgramBuilder("cluster")
           .source(kCudaCluster)
           .tensor("X", "float32", {"n"})
           .launch(Launch("cluster_pairs")
                       .with_grid({"ceildiv(n, 256) * 2"})
                       .with_block({128})
                       .with_cluster({2, 1, 1}))
           .launch(
               Launch("cluster_wide").with_grid({64}).with_block({128}).with_cluster({16, 1, 1}))
           .build()});
  cases.push_back({"cooperative", ProgramBuilder("cooperative")
                                      .source(kCudaCooperative)
                                      .tensor("in", "int32", {"n"})
                                      .tensor("out", "int32", {"n"})
                                      .launch(Launch("grid_wide")
                                                  .with_grid({"min(ceildiv(n, 256), 132)"})
                                                  .with_block({256})
                                                  .with_cooperative())
                                      .out_idx({1})
                                      .build()});
  cases.push_back(
      {"pdl",
       ProgramBuilder("pdl")
           .source(kCudaPdl)
           .tensor("X", "float32", {"n"})
           .tensor("Y", "float32", {"n"})
           .launch(Launch("producer").with_grid({"ceildiv(n, 256)"}).with_block({256}))
           .launch(Launch("consumer").with_grid({"ceildiv(n, 256)"}).with_block({256}).with_pdl())
           .build()});
  cases.push_back({"dynamic_smem", ProgramBuilder("dynamic_smem")
                                       .source(kCudaSmem)
                                       .tensor("A", "float32", {"n"})
                                       .tensor("B", "float32", {"n"})
                                       .launch(Launch("stage_fixed")
                                                   .with_grid({"ceildiv(n, 1024)"})
                                                   .with_block({1024})
                                                   .with_dynamic_smem(98304))
                                       .launch(Launch("stage_sized")
                                                   .with_grid({"ceildiv(n, 1024)"})
                                                   .with_block({1024})
                                                   .with_dynamic_smem("max(n * 4, 4096)"))
                                       .build()});
  return cases;
}

inline std::vector<GoldenCase> hip_golden_cases() {
  std::vector<GoldenCase> cases;
  cases.push_back(
      {"single_launch",
       ProgramBuilder("vector_add")
           .source(kHipVectorAdd, Language::kHip)
           .tensor("A", "float32", {"n"})
           .tensor("B", "float32", {"n"})
           .tensor("C", "float32", {"n"})
           .launch(Launch("vector_add").with_grid({"ceildiv(n, 256)"}).with_block({256}))
           .build()});
  cases.push_back({"symbolic_grid", ProgramBuilder("scale2d")
                                        .source(kHipScale2d, Language::kHip)
                                        .tensor("X", "float32", {"M", "N"})
                                        .tensor("Y", "float32", {"M", "N"})
                                        .scalar("alpha", "float32")
                                        .launch(Launch("scale2d")
                                                    .with_grid({"ceildiv(N, 16)", "ceildiv(M, 16)"})
                                                    .with_block({16, 16}))
                                        .build()});
  cases.push_back({"multi_launch_smem", ProgramBuilder("fill_then_stage")
                                            .source(kHipTwoKernels, Language::kHip)
                                            .tensor("A", "float32", {"n"})
                                            .tensor("B", "float32", {"n"})
                                            .scalar("value", "float32")
                                            .launch(Launch("fill")
                                                        .with_grid({"ceildiv(n, 256)"})
                                                        .with_block({256})
                                                        .with_args({"A", "n", "value"}))
                                            .launch(Launch("stage_sized")
                                                        .with_grid({"ceildiv(n, 256)"})
                                                        .with_block({256})
                                                        .with_dynamic_smem("n * 4")
                                                        .with_cooperative())
                                            .build()});
  return cases;
}

inline std::vector<GoldenCase> cpu_golden_cases() {
  std::vector<GoldenCase> cases;
  cases.push_back({"single_launch", ProgramBuilder("vector_add")
                                        .source(kCVectorAdd, Language::kC)
                                        .tensor("A", "float32", {"n"})
                                        .tensor("B", "float32", {"n"})
                                        .tensor("C", "float32", {"n"})
                                        .launch(Launch("vector_add"))
                                        .out_idx({-1})
                                        .build()});
  cases.push_back({"multi_launch", ProgramBuilder("saxpy_then_scale")
                                       .source(kCSaxpyThenScale, Language::kC)
                                       .tensor("X", "float32", {"rows", "cols"})
                                       .tensor("Y", "float32", {"rows", "cols"})
                                       .scalar("alpha", "float32")
                                       .scalar("factor", "float64")
                                       .launch(Launch("saxpy"))
                                       .launch(Launch("scale"))
                                       .build()});
  cases.push_back({"symbols_and_scalars", ProgramBuilder("row_sums")
                                              .source(kCRowSums, Language::kC)
                                              .tensor("A", "int32", {"M", "N"})
                                              .tensor("S", "int64", {"M"})
                                              .tensor("T", "int64", {"M"})
                                              .scalar("offset", "int32")
                                              .launch(Launch("row_sums"))
                                              .launch(Launch("add_offset"))
                                              .out_idx({1, 2})
                                              .build()});
  return cases;
}

inline std::vector<GoldenCase> metal_golden_cases() {
  std::vector<GoldenCase> cases;
  cases.push_back({"passthrough", ProgramBuilder("metal_add")
                                      .source(R"(#include <metal_stdlib>
using namespace metal;

kernel void metal_add(device const float* A [[buffer(0)]], device const float* B [[buffer(1)]],
                      device float* C [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  C[i] = A[i] + B[i];
}
)",
                                              Language::kMetal)
                                      .tensor("A", "float32", {"n"})
                                      .tensor("B", "float32", {"n"})
                                      .tensor("C", "float32", {"n"})
                                      .build()});
  return cases;
}

}  // namespace tilejit::testing

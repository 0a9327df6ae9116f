// A 2-D tile copy through the Tensor Memory Accelerator: each block loads one TILE_R x TILE_C
// tile of `in` with cp.async.bulk.tensor (out-of-bounds elements arrive as zeros), computes
// 2 * x + 1 in shared memory, and stores the tile to `out` with a TMA store (which clips
// out-of-bounds elements). Needs sm_90.
#include <tilejit/cuda_device.h>

#define TILE_R 32
#define TILE_C 32

__device__ __forceinline__ unsigned smem_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

extern "C" __global__ void __launch_bounds__(128)
tma_tile_copy(const __grid_constant__ CUtensorMap in_desc, const __grid_constant__ CUtensorMap out_desc) {
  __shared__ alignas(128) float tile[TILE_R * TILE_C];
  __shared__ alignas(8) unsigned long long barrier;
  const int col = blockIdx.x * TILE_C;
  const int row = blockIdx.y * TILE_R;
  const unsigned bar = smem_address(&barrier);
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar));
    asm volatile("fence.proxy.async.shared::cta;");
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar),
                 "r"(static_cast<unsigned>(sizeof(tile))));
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
        ::"r"(smem_address(tile)), "l"(&in_desc), "r"(col), "r"(row), "r"(bar)
        : "memory");
  }
  unsigned done = 0;
  while (!done) {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done) : "r"(bar) : "memory");
  }
  for (int i = threadIdx.x; i < TILE_R * TILE_C; i += blockDim.x) tile[i] = 2.0f * tile[i] + 1.0f;
  // Ordinary stores that the copy engine reads next need a proxy fence before the barrier.
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];"
                 ::"l"(&out_desc), "r"(col), "r"(row), "r"(smem_address(tile)) : "memory");
    asm volatile("cp.async.bulk.commit_group;");
    asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
  }
}

// Every block adds its slice of `in` into partial[block], waits at a grid-wide barrier (valid
// only when all blocks are co-resident: a cooperative launch), then writes the total of all
// partials to out[block]. `arrived` must be zero before the launch.
#define BLOCK 256

extern "C" __global__ void __launch_bounds__(BLOCK)
grid_sum(const float* __restrict__ in, float* __restrict__ partial, float* __restrict__ out,
         unsigned* __restrict__ arrived, int n) {
  __shared__ float sums[BLOCK];
  float s = 0.0f;
  for (int i = blockIdx.x * BLOCK + threadIdx.x; i < n; i += gridDim.x * BLOCK) s += in[i];
  sums[threadIdx.x] = s;
  __syncthreads();
  for (int k = BLOCK / 2; k > 0; k /= 2) {
    if (threadIdx.x < k) sums[threadIdx.x] += sums[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = sums[0];
    __threadfence();
    atomicAdd(arrived, 1u);
    while (atomicAdd(arrived, 0u) < gridDim.x) {
    }
    __threadfence();
    float total = 0.0f;
    for (unsigned b = 0; b < gridDim.x; ++b) total += ((volatile float*)partial)[b];
    out[blockIdx.x] = total;
  }
}

// 16 KB of static shared memory beside `count` floats of dynamic shared memory (40 KB for
// count = 10240): together over the 48 KB a block gets without opting in, although the dynamic
// part alone is not (TileLang's warp-specialized GEMMs: 48 KB of dynamic tiles plus static
// mbarriers). Each block stages its chunk and the bias table, then writes
// out[b * count + i] = in[b * count + count - 1 - i] + bias[(b + i) % 4096].
constexpr int kTable = 4096;

extern "C" __global__ void static_and_dynamic_smem(const float* __restrict__ in,
                                                   const float* __restrict__ bias,
                                                   float* __restrict__ out, int count) {
  __shared__ float table[kTable];
  extern __shared__ float stage[];
  const float* src = in + (long long)blockIdx.x * count;
  float* dst = out + (long long)blockIdx.x * count;
  for (int i = threadIdx.x; i < kTable; i += blockDim.x) table[i] = bias[i];
  for (int i = threadIdx.x; i < count; i += blockDim.x) stage[i] = src[i];
  __syncthreads();
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    dst[i] = stage[count - 1 - i] + table[(blockIdx.x + i) % kTable];
  }
}

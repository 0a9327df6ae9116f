// Each block stages `count` floats of its chunk in dynamic shared memory and writes them back
// reversed: out[b * count + i] = in[b * count + count - 1 - i]. count * 4 bytes of dynamic
// shared memory per block (160 KB for count = 40960).
extern "C" __global__ void shared_reverse(const float* __restrict__ in, float* __restrict__ out,
                                          int count) {
  extern __shared__ float stage[];
  const float* src = in + (long long)blockIdx.x * count;
  float* dst = out + (long long)blockIdx.x * count;
  for (int i = threadIdx.x; i < count; i += blockDim.x) stage[i] = src[i];
  __syncthreads();
  for (int i = threadIdx.x; i < count; i += blockDim.x) dst[i] = stage[count - 1 - i];
}

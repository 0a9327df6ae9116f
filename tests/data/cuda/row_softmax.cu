// Two-pass row softmax of scale * X over an M x N matrix.
// Pass 1 (one block per row): stats[row] = {max, sum of exp(scale * x - max)}.
// Pass 2 (a 2-D grid): Y = exp(scale * X - max) / sum.
#define BLOCK 256

extern "C" __global__ void __launch_bounds__(BLOCK)
row_stats(const float* __restrict__ X, float* __restrict__ stats, float scale, int M, int N) {
  __shared__ float partial[BLOCK];
  int row = blockIdx.x;
  const float* x = X + (long long)row * N;
  float m = -3.402823466e38f;
  for (int j = threadIdx.x; j < N; j += BLOCK) m = fmaxf(m, scale * x[j]);
  partial[threadIdx.x] = m;
  __syncthreads();
  for (int s = BLOCK / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
    __syncthreads();
  }
  m = partial[0];
  __syncthreads();
  float sum = 0.0f;
  for (int j = threadIdx.x; j < N; j += BLOCK) sum += __expf(scale * x[j] - m);
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = BLOCK / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    stats[2 * row] = m;
    stats[2 * row + 1] = partial[0];
  }
}

extern "C" __global__ void row_normalize(const float* __restrict__ X, const float* __restrict__ stats,
                                         float* __restrict__ Y, float scale, int M, int N) {
  int row = blockIdx.y;
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (row < M && j < N) {
    long long at = (long long)row * N + j;
    Y[at] = __expf(scale * X[at] - stats[2 * row]) / stats[2 * row + 1];
  }
}

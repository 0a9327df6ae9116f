// C = A + B over n elements; the grid is ceildiv(n, 256).
extern "C" __global__ void vector_add_kernel(const float* __restrict__ A, const float* __restrict__ B,
                                             float* __restrict__ C, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    C[i] = A[i] + B[i];
  }
}

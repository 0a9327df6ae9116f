// y = a * x over n elements; launched under an L2 persistence window on x.
extern "C" __global__ void scale(const float* __restrict__ x, float* __restrict__ y, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i];
}

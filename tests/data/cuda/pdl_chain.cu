// Two dependent launches for programmatic dependent launch: `produce` writes mid = x + 1 and
// lets the next launch start early; `consume` waits for `produce`'s memory before reading it.
extern "C" __global__ void produce(const float* __restrict__ x, float* __restrict__ mid, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) mid[i] = x[i] + 1.0f;
  asm volatile("griddepcontrol.launch_dependents;");
}

extern "C" __global__ void consume(const float* __restrict__ mid, float* __restrict__ y, int n) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 3.0f * mid[i];
}

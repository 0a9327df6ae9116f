// A small convolution through a TMA im2col descriptor: input NHWC (C = 8 channels, float32),
// 3x3 filter, padding 1, stride 1, K = 4 output channels. Each block takes PIXELS consecutive
// output pixels (in N, H, W order); for each of the 9 filter taps one im2col load brings
// PIXELS x 8 input values (zeros outside the image) into shared memory.
// out[p][k] = sum over taps and channels of in(p shifted by the tap)[c] * weight[tap][c][k].
#include <tilejit/cuda_device.h>

#define PIXELS 32
#define CHANNELS 8
#define KOUT 4

__device__ __forceinline__ unsigned smem_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

extern "C" __global__ void __launch_bounds__(128)
im2col_conv(const __grid_constant__ CUtensorMap in_desc, const float* __restrict__ weight,
            float* __restrict__ out, int N, int H, int W) {
  __shared__ alignas(128) float patch[PIXELS * CHANNELS];
  __shared__ alignas(8) unsigned long long barrier;
  const unsigned bar = smem_address(&barrier);
  const int first = blockIdx.x * PIXELS;
  // The window's top-left corner of the first output pixel: (w - 1, h - 1) for padding 1.
  const int w0 = first % W - 1;
  const int h0 = (first / W) % H - 1;
  const int n0 = first / (W * H);
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar));
    asm volatile("fence.proxy.async.shared::cta;");
  }
  __syncthreads();
  float acc[KOUT] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int p = threadIdx.x / KOUT;  // 32 pixels x 4 output channels = 128 threads
  const int k = threadIdx.x % KOUT;
  for (int tap = 0; tap < 9; ++tap) {
    const unsigned short dw = static_cast<unsigned short>(tap % 3);
    const unsigned short dh = static_cast<unsigned short>(tap / 3);
    if (threadIdx.x == 0) {
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar),
                   "r"(static_cast<unsigned>(sizeof(patch))));
      asm volatile(
          "cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes "
          "[%0], [%1, {%2, %3, %4, %5}], [%6], {%7, %8};"
          ::"r"(smem_address(patch)), "l"(&in_desc), "r"(0), "r"(w0), "r"(h0), "r"(n0), "r"(bar),
            "h"(dw), "h"(dh)
          : "memory");
    }
    unsigned done = 0;
    const unsigned parity = tap & 1;
    while (!done) {
      asm volatile(
          "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
          : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    }
    for (int c = 0; c < CHANNELS; ++c) acc[k] += patch[p * CHANNELS + c] * weight[(tap * CHANNELS + c) * KOUT + k];
    __syncthreads();  // everyone has read the patch before the next load overwrites it
  }
  const int pixel = first + p;
  if (pixel < N * H * W) out[pixel * KOUT + k] = acc[k];
}

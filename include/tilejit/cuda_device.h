// tilejit/cuda_device.h — what CUDA device code compiled by tilejit needs from the host
// headers, for NVRTC, which cannot include <cuda.h> or the C library headers.
//
//   #include <tilejit/cuda_device.h>
//   extern "C" __global__ void copy(const __grid_constant__ CUtensorMap src, float* out, int n);
//
// Under NVRTC tilejit supplies this header from memory (no include path needed). Under nvcc it
// takes the real declarations from <cuda.h> and <stdint.h>, so one source builds with both.
#ifndef TILEJIT_CUDA_DEVICE_H_
#define TILEJIT_CUDA_DEVICE_H_

#if defined(__CUDACC_RTC__)
// Fixed-width integers with glibc's LP64 spelling, so that a later <cuda/std/cstdint> or a
// user typedef of the same type does not clash.
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef unsigned long uintptr_t;
typedef long intptr_t;
typedef unsigned long size_t;

// The TMA descriptor: 128 opaque bytes, passed by value as a __grid_constant__ parameter.
// The alignment is cuda.h's (CUDA 13: 128; CUDA 12: 64, which 128 also satisfies).
typedef struct alignas(128) CUtensorMap_st {
  unsigned long long opaque[16];
} CUtensorMap;
#else
#include <cuda.h>
#include <stdint.h>
#endif

#endif  // TILEJIT_CUDA_DEVICE_H_

// A stand-in for ROCm's <hip/hip_runtime.h>: the runtime API plus just enough of the device
// language for kernels to parse as host C++ (see hip_runtime_api.h).
#ifndef TILEJIT_TEST_HIP_RUNTIME_H_
#define TILEJIT_TEST_HIP_RUNTIME_H_

#include "hip/hip_runtime_api.h"

#define __global__
#define __shared__
#define __device__

struct tilejit_test_hip_index {
  unsigned x, y, z;
};
extern const tilejit_test_hip_index threadIdx, blockIdx, blockDim, gridDim;
inline void __syncthreads() {}

#endif  // TILEJIT_TEST_HIP_RUNTIME_H_

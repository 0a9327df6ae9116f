// A stand-in for ROCm's <hip/hip_runtime_api.h>, for the syntax check of generated HIP host
// code on machines without ROCm (tests/cpp/test_codegen.cc). It declares only what the
// generated code uses, with ROCm's signatures; nothing here is ever linked or run.
#ifndef TILEJIT_TEST_HIP_RUNTIME_API_H_
#define TILEJIT_TEST_HIP_RUNTIME_API_H_

#include <stddef.h>

typedef enum hipError_t { hipSuccess = 0, hipErrorInvalidValue = 1 } hipError_t;
typedef struct ihipStream_t* hipStream_t;

typedef enum hipFuncAttribute {
  hipFuncAttributeMaxDynamicSharedMemorySize = 8,
} hipFuncAttribute;

typedef enum hipDeviceAttribute_t {
  hipDeviceAttributeMaxSharedMemoryPerBlock = 74,
} hipDeviceAttribute_t;

typedef struct hipFuncAttributes {
  size_t sharedSizeBytes;
  int maxThreadsPerBlock;
} hipFuncAttributes;

#ifdef __cplusplus
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

hipError_t hipGetLastError();
const char* hipGetErrorName(hipError_t error);
const char* hipGetErrorString(hipError_t error);
hipError_t hipGetDevice(int* device);
hipError_t hipDeviceGetAttribute(int* value, hipDeviceAttribute_t attribute, int device);
hipError_t hipFuncGetAttributes(hipFuncAttributes* attributes, const void* function);
hipError_t hipFuncSetAttribute(const void* function, hipFuncAttribute attribute, int value);
hipError_t hipLaunchKernel(const void* function, dim3 grid, dim3 block, void** args,
                           size_t shared_bytes, hipStream_t stream);
hipError_t hipLaunchCooperativeKernel(const void* function, dim3 grid, dim3 block, void** args,
                                      unsigned int shared_bytes, hipStream_t stream);
#endif

#endif  // TILEJIT_TEST_HIP_RUNTIME_API_H_

// tilejit's own declarations of the driver ABI (src/cuda/driver_api.h) against the real
// cuda.h, wherever a toolkit's headers are on the include path. Everything is checked at
// compile time; the test body only reports which header was compared.
//
// driver_api.h comes first: cuda.h defines macros (cuMemAlloc -> cuMemAlloc_v2,
// CU_TENSOR_MAP_NUM_QWORDS -> 16) that would rewrite tilejit's declarations.
#include "cuda/driver_api.h"

#include <gtest/gtest.h>

#include <cstddef>

#if __has_include(<cuda.h>)
#include <cuda.h>
#include <nvrtc.h>
#define TILEJIT_HAVE_CUDA_H 1
#endif

namespace {

#if defined(TILEJIT_HAVE_CUDA_H)
namespace tj = tilejit::cuda;

#define SAME_VALUE(name) \
  static_assert(static_cast<long long>(tj::name) == static_cast<long long>(::name), #name)

#define SAME_LAYOUT(ours, theirs)                                     \
  static_assert(sizeof(tj::ours) == sizeof(::theirs), #ours " size"); \
  static_assert(alignof(tj::ours) >= alignof(::theirs), #ours " alignment")

#define SAME_OFFSET(ours, theirs, member) \
  static_assert(offsetof(tj::ours, member) == offsetof(::theirs, member), #ours "::" #member)

// Scalar types and handles.
static_assert(sizeof(tj::CUresult) == sizeof(::CUresult));
static_assert(sizeof(tj::CUdevice) == sizeof(::CUdevice));
static_assert(sizeof(tj::CUdeviceptr) == sizeof(::CUdeviceptr));
static_assert(sizeof(tj::CUcontext) == sizeof(::CUcontext));
static_assert(sizeof(tj::CUstream) == sizeof(::CUstream));
static_assert(sizeof(tj::CUlibrary) == sizeof(::CUlibrary));
static_assert(sizeof(tj::CUkernel) == sizeof(::CUkernel));
static_assert(sizeof(tj::CUfunction) == sizeof(::CUfunction));
static_assert(sizeof(tj::CUdevice_attribute) == sizeof(::CUdevice_attribute));
static_assert(sizeof(tj::CUlaunchAttributeID) == sizeof(::CUlaunchAttributeID));
static_assert(sizeof(tj::CUaccessProperty) == sizeof(::CUaccessProperty));
static_assert(sizeof(tj::CUtensorMapDataType) == sizeof(::CUtensorMapDataType));

// Results.
SAME_VALUE(CUDA_SUCCESS);
SAME_VALUE(NVRTC_SUCCESS);
SAME_VALUE(NVRTC_ERROR_INVALID_OPTION);
SAME_VALUE(NVRTC_ERROR_COMPILATION);
SAME_VALUE(NVRTC_ERROR_NO_PCH_CREATE_ATTEMPTED);
SAME_VALUE(NVRTC_ERROR_PCH_CREATE_HEAP_EXHAUSTED);
SAME_VALUE(CUDA_ERROR_INVALID_VALUE);
SAME_VALUE(CUDA_ERROR_NOT_INITIALIZED);
SAME_VALUE(CUDA_ERROR_NO_DEVICE);
SAME_VALUE(CUDA_ERROR_INVALID_DEVICE);
SAME_VALUE(CUDA_ERROR_INVALID_CONTEXT);
SAME_VALUE(CUDA_ERROR_NOT_FOUND);
SAME_VALUE(CUDA_ERROR_ILLEGAL_ADDRESS);
SAME_VALUE(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);

// Attributes, limits, properties.
SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE);
SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE);
SAME_VALUE(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
SAME_VALUE(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
SAME_VALUE(CU_FUNC_ATTRIBUTE_NUM_REGS);
SAME_VALUE(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
SAME_VALUE(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED);
SAME_VALUE(CU_LIMIT_PERSISTING_L2_CACHE_SIZE);
SAME_VALUE(CU_ACCESS_PROPERTY_NORMAL);
SAME_VALUE(CU_ACCESS_PROPERTY_STREAMING);
SAME_VALUE(CU_ACCESS_PROPERTY_PERSISTING);
SAME_VALUE(CU_LAUNCH_ATTRIBUTE_IGNORE);
SAME_VALUE(CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW);
SAME_VALUE(CU_LAUNCH_ATTRIBUTE_COOPERATIVE);
SAME_VALUE(CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
SAME_VALUE(CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
SAME_VALUE(CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW);
SAME_VALUE(CU_GET_PROC_ADDRESS_LEGACY_STREAM);
SAME_VALUE(CU_GET_PROC_ADDRESS_SUCCESS);
SAME_VALUE(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
SAME_VALUE(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

// Tensor map enums.
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_UINT8);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_UINT16);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_UINT32);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_INT32);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_UINT64);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_INT64);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT32);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT64);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_TFLOAT32);
SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ);
SAME_VALUE(CU_TENSOR_MAP_INTERLEAVE_NONE);
SAME_VALUE(CU_TENSOR_MAP_INTERLEAVE_16B);
SAME_VALUE(CU_TENSOR_MAP_INTERLEAVE_32B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_NONE);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_32B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_64B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_128B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B_FLIP_8B);
SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B);
SAME_VALUE(CU_TENSOR_MAP_L2_PROMOTION_NONE);
SAME_VALUE(CU_TENSOR_MAP_L2_PROMOTION_L2_64B);
SAME_VALUE(CU_TENSOR_MAP_L2_PROMOTION_L2_128B);
SAME_VALUE(CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
SAME_VALUE(CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
SAME_VALUE(CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA);

// Struct layouts.
SAME_LAYOUT(CUtensorMap, CUtensorMap);
static_assert(sizeof(tj::CUtensorMap) == 128);
SAME_LAYOUT(CUaccessPolicyWindow, CUaccessPolicyWindow);
SAME_OFFSET(CUaccessPolicyWindow, CUaccessPolicyWindow, base_ptr);
SAME_OFFSET(CUaccessPolicyWindow, CUaccessPolicyWindow, num_bytes);
SAME_OFFSET(CUaccessPolicyWindow, CUaccessPolicyWindow, hitRatio);
SAME_OFFSET(CUaccessPolicyWindow, CUaccessPolicyWindow, hitProp);
SAME_OFFSET(CUaccessPolicyWindow, CUaccessPolicyWindow, missProp);
SAME_LAYOUT(CUlaunchAttributeValue, CUlaunchAttributeValue);
SAME_OFFSET(CUlaunchAttributeValue, CUlaunchAttributeValue, accessPolicyWindow);
SAME_OFFSET(CUlaunchAttributeValue, CUlaunchAttributeValue, cooperative);
SAME_OFFSET(CUlaunchAttributeValue, CUlaunchAttributeValue, clusterDim);
SAME_OFFSET(CUlaunchAttributeValue, CUlaunchAttributeValue, programmaticStreamSerializationAllowed);
static_assert(sizeof(tj::CUlaunchAttributeValue::clusterDim) ==
              sizeof(::CUlaunchAttributeValue::clusterDim));
SAME_LAYOUT(CUstreamAttrValue, CUstreamAttrValue);
SAME_LAYOUT(CUlaunchAttribute, CUlaunchAttribute);
SAME_OFFSET(CUlaunchAttribute, CUlaunchAttribute, id);
SAME_OFFSET(CUlaunchAttribute, CUlaunchAttribute, value);
SAME_LAYOUT(CUlaunchConfig, CUlaunchConfig);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, gridDimX);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, gridDimY);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, gridDimZ);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, blockDimX);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, blockDimY);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, blockDimZ);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, sharedMemBytes);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, hStream);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, attrs);
SAME_OFFSET(CUlaunchConfig, CUlaunchConfig, numAttrs);
#endif

TEST(CudaAbi, MatchesCudaH) {
#if defined(TILEJIT_HAVE_CUDA_H)
  RecordProperty("cuda_version", CUDA_VERSION);
  SUCCEED() << "layouts and values checked at compile time against cuda.h " << CUDA_VERSION;
#else
  GTEST_SKIP() << "cuda.h is not on this build's include path; the static checks did not run";
#endif
}

}  // namespace

// The subset of the CUDA driver and NVRTC ABI that tilejit calls, declared here so that
// tilejit builds with no CUDA toolkit (DESIGN.md §2): both libraries are dlopen'd at run time.
//
// Every layout and value below is a fact of the public ABI (cuda.h / nvrtc.h of CUDA 12 and
// 13); tests/cpp/test_cuda_abi.cc static_asserts them against the real headers wherever those
// are installed. Names keep the driver's spelling so that the code reads like the driver docs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tilejit::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using cuuint32_t = uint32_t;
using cuuint64_t = uint64_t;

struct CUctx_st;
struct CUstream_st;
struct CUlib_st;
struct CUkern_st;
struct CUfunc_st;
using CUcontext = CUctx_st*;
using CUstream = CUstream_st*;
using CUlibrary = CUlib_st*;
using CUkernel = CUkern_st*;
using CUfunction = CUfunc_st*;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
inline constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
inline constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
inline constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
inline constexpr CUresult CUDA_ERROR_INVALID_CONTEXT = 201;
inline constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
inline constexpr CUresult CUDA_ERROR_ILLEGAL_ADDRESS = 700;
inline constexpr CUresult CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE = 720;

// CUdevice_attribute values.
enum CUdevice_attribute : int {
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH = 95,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
  CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE = 108,
  CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE = 109,
};

// CUfunction_attribute values (also taken by cuKernelSetAttribute).
enum CUfunction_attribute : int {
  CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
  CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
  CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
  CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14,
};

enum CUlimit : int {
  CU_LIMIT_PERSISTING_L2_CACHE_SIZE = 0x06,
};

enum CUaccessProperty : int {
  CU_ACCESS_PROPERTY_NORMAL = 0,
  CU_ACCESS_PROPERTY_STREAMING = 1,
  CU_ACCESS_PROPERTY_PERSISTING = 2,
};

struct CUaccessPolicyWindow {
  void* base_ptr;
  size_t num_bytes;
  float hitRatio;
  CUaccessProperty hitProp;
  CUaccessProperty missProp;
};

// CUlaunchAttributeID; the stream attribute CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW is the
// same value as the launch attribute.
enum CUlaunchAttributeID : int {
  CU_LAUNCH_ATTRIBUTE_IGNORE = 0,
  CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW = 1,
  CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2,
  CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
  CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
};
inline constexpr CUlaunchAttributeID CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW =
    CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW;

// CUlaunchAttributeValue: a 64-byte union. Only the members tilejit writes are named; `pad`
// keeps the size and the pointer members keep the 8-byte alignment.
union CUlaunchAttributeValue {
  char pad[64];
  CUaccessPolicyWindow accessPolicyWindow;
  int cooperative;
  struct {
    unsigned int x;
    unsigned int y;
    unsigned int z;
  } clusterDim;
  int programmaticStreamSerializationAllowed;
};
using CUstreamAttrValue = CUlaunchAttributeValue;

struct CUlaunchAttribute {
  CUlaunchAttributeID id;
  char pad[8 - sizeof(CUlaunchAttributeID)];
  CUlaunchAttributeValue value;
};

struct CUlaunchConfig {
  unsigned int gridDimX;
  unsigned int gridDimY;
  unsigned int gridDimZ;
  unsigned int blockDimX;
  unsigned int blockDimY;
  unsigned int blockDimZ;
  unsigned int sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute* attrs;
  unsigned int numAttrs;
};

// cuGetProcAddress flags and results.
inline constexpr cuuint64_t CU_GET_PROC_ADDRESS_LEGACY_STREAM = 1ULL << 0;
enum CUdriverProcAddressQueryResult : int {
  CU_GET_PROC_ADDRESS_SUCCESS = 0,
  CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
  CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2,
};

// The tensor map (TMA descriptor): 128 opaque bytes. cuda.h of CUDA 13 aligns it to 128 (CUDA
// 12: 64); encoding needs 64, and 128 satisfies both.
inline constexpr int CU_TENSOR_MAP_NUM_QWORDS = 16;
struct alignas(128) CUtensorMap {
  cuuint64_t opaque[CU_TENSOR_MAP_NUM_QWORDS];
};

enum CUtensorMapDataType : int {
  CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0,
  CU_TENSOR_MAP_DATA_TYPE_UINT16 = 1,
  CU_TENSOR_MAP_DATA_TYPE_UINT32 = 2,
  CU_TENSOR_MAP_DATA_TYPE_INT32 = 3,
  CU_TENSOR_MAP_DATA_TYPE_UINT64 = 4,
  CU_TENSOR_MAP_DATA_TYPE_INT64 = 5,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT64 = 8,
  CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9,
  CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ = 10,
  CU_TENSOR_MAP_DATA_TYPE_TFLOAT32 = 11,
  CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ = 12,
};

enum CUtensorMapInterleave : int {
  CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
  CU_TENSOR_MAP_INTERLEAVE_16B = 1,
  CU_TENSOR_MAP_INTERLEAVE_32B = 2,
};

enum CUtensorMapSwizzle : int {
  CU_TENSOR_MAP_SWIZZLE_NONE = 0,
  CU_TENSOR_MAP_SWIZZLE_32B = 1,
  CU_TENSOR_MAP_SWIZZLE_64B = 2,
  CU_TENSOR_MAP_SWIZZLE_128B = 3,
  CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B = 4,
  CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B_FLIP_8B = 5,
  CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B = 6,
};

enum CUtensorMapL2promotion : int {
  CU_TENSOR_MAP_L2_PROMOTION_NONE = 0,
  CU_TENSOR_MAP_L2_PROMOTION_L2_64B = 1,
  CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2,
  CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3,
};

enum CUtensorMapFloatOOBfill : int {
  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0,
  CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA = 1,
};

// NVRTC.
using nvrtcResult = int;
inline constexpr nvrtcResult NVRTC_SUCCESS = 0;
inline constexpr nvrtcResult NVRTC_ERROR_INVALID_OPTION = 5;
inline constexpr nvrtcResult NVRTC_ERROR_COMPILATION = 6;
inline constexpr nvrtcResult NVRTC_ERROR_NO_PCH_CREATE_ATTEMPTED = 13;
inline constexpr nvrtcResult NVRTC_ERROR_PCH_CREATE_HEAP_EXHAUSTED = 14;
struct _nvrtcProgram;
using nvrtcProgram = _nvrtcProgram*;

// Function pointer types of every entry point tilejit resolves. The driver's are fetched with
// cuGetProcAddress by their base name and ABI version, which returns the versioned entry
// (cuMemAlloc -> cuMemAlloc_v2, cuCtxPushCurrent -> _v2, ...), never the legacy one that a
// plain dlsym of the base name would give.
using PFN_cuGetProcAddress = CUresult (*)(const char* symbol, void** pfn, int cudaVersion,
                                          cuuint64_t flags,
                                          CUdriverProcAddressQueryResult* symbolStatus);
using PFN_cuInit = CUresult (*)(unsigned int flags);
using PFN_cuDriverGetVersion = CUresult (*)(int* version);
using PFN_cuGetErrorString = CUresult (*)(CUresult error, const char** str);
using PFN_cuGetErrorName = CUresult (*)(CUresult error, const char** str);
using PFN_cuDeviceGet = CUresult (*)(CUdevice* device, int ordinal);
using PFN_cuDeviceGetCount = CUresult (*)(int* count);
using PFN_cuDeviceGetName = CUresult (*)(char* name, int len, CUdevice dev);
using PFN_cuDeviceTotalMem = CUresult (*)(size_t* bytes, CUdevice dev);
using PFN_cuDeviceGetAttribute = CUresult (*)(int* value, CUdevice_attribute attrib, CUdevice dev);
using PFN_cuDevicePrimaryCtxRetain = CUresult (*)(CUcontext* ctx, CUdevice dev);
using PFN_cuCtxGetCurrent = CUresult (*)(CUcontext* ctx);
using PFN_cuCtxSetCurrent = CUresult (*)(CUcontext ctx);
using PFN_cuCtxGetDevice = CUresult (*)(CUdevice* device);
using PFN_cuCtxGetLimit = CUresult (*)(size_t* value, CUlimit limit);
using PFN_cuCtxSetLimit = CUresult (*)(CUlimit limit, size_t value);
using PFN_cuCtxResetPersistingL2Cache = CUresult (*)();
using PFN_cuLibraryLoadData = CUresult (*)(CUlibrary* library, const void* code, int* jitOptions,
                                           void** jitOptionValues, unsigned int numJitOptions,
                                           int* libraryOptions, void** libraryOptionValues,
                                           unsigned int numLibraryOptions);
using PFN_cuLibraryUnload = CUresult (*)(CUlibrary library);
using PFN_cuLibraryGetKernel = CUresult (*)(CUkernel* kernel, CUlibrary library, const char* name);
using PFN_cuLibraryGetGlobal = CUresult (*)(CUdeviceptr* ptr, size_t* bytes, CUlibrary library,
                                            const char* name);
using PFN_cuKernelGetFunction = CUresult (*)(CUfunction* function, CUkernel kernel);
using PFN_cuKernelGetAttribute = CUresult (*)(int* value, CUfunction_attribute attrib,
                                              CUkernel kernel, CUdevice dev);
using PFN_cuKernelSetAttribute = CUresult (*)(CUfunction_attribute attrib, int value,
                                              CUkernel kernel, CUdevice dev);
using PFN_cuLaunchKernelEx = CUresult (*)(const CUlaunchConfig* config, CUfunction f,
                                          void** kernelParams, void** extra);
using PFN_cuStreamCreate = CUresult (*)(CUstream* stream, unsigned int flags);
using PFN_cuStreamDestroy = CUresult (*)(CUstream stream);
using PFN_cuStreamSynchronize = CUresult (*)(CUstream stream);
using PFN_cuStreamGetAttribute = CUresult (*)(CUstream stream, CUlaunchAttributeID attr,
                                              CUstreamAttrValue* value);
using PFN_cuStreamSetAttribute = CUresult (*)(CUstream stream, CUlaunchAttributeID attr,
                                              const CUstreamAttrValue* value);
using PFN_cuMemAlloc = CUresult (*)(CUdeviceptr* ptr, size_t bytes);
using PFN_cuMemFree = CUresult (*)(CUdeviceptr ptr);
using PFN_cuMemcpyHtoD = CUresult (*)(CUdeviceptr dst, const void* src, size_t bytes);
using PFN_cuMemcpyDtoH = CUresult (*)(void* dst, CUdeviceptr src, size_t bytes);
using PFN_cuMemsetD8 = CUresult (*)(CUdeviceptr dst, unsigned char value, size_t count);
using PFN_cuTensorMapEncodeTiled = CUresult (*)(
    CUtensorMap* tensorMap, CUtensorMapDataType dataType, cuuint32_t rank, void* globalAddress,
    const cuuint64_t* globalDim, const cuuint64_t* globalStrides, const cuuint32_t* boxDim,
    const cuuint32_t* elementStrides, CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
    CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill);
using PFN_cuTensorMapEncodeIm2col = CUresult (*)(
    CUtensorMap* tensorMap, CUtensorMapDataType dataType, cuuint32_t rank, void* globalAddress,
    const cuuint64_t* globalDim, const cuuint64_t* globalStrides, const int* pixelBoxLowerCorner,
    const int* pixelBoxUpperCorner, cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
    const cuuint32_t* elementStrides, CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
    CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill);

using PFN_nvrtcVersion = nvrtcResult (*)(int* major, int* minor);
using PFN_nvrtcGetNumSupportedArchs = nvrtcResult (*)(int* count);
using PFN_nvrtcGetSupportedArchs = nvrtcResult (*)(int* archs);
using PFN_nvrtcGetErrorString = const char* (*)(nvrtcResult result);
using PFN_nvrtcCreateProgram = nvrtcResult (*)(nvrtcProgram* prog, const char* src,
                                               const char* name, int numHeaders,
                                               const char* const* headers,
                                               const char* const* includeNames);
using PFN_nvrtcDestroyProgram = nvrtcResult (*)(nvrtcProgram* prog);
using PFN_nvrtcCompileProgram = nvrtcResult (*)(nvrtcProgram prog, int numOptions,
                                                const char* const* options);
using PFN_nvrtcGetSize = nvrtcResult (*)(nvrtcProgram prog, size_t* size);
using PFN_nvrtcGetBytes = nvrtcResult (*)(nvrtcProgram prog, char* out);
using PFN_nvrtcAddNameExpression = nvrtcResult (*)(nvrtcProgram prog, const char* name_expression);
using PFN_nvrtcGetLoweredName = nvrtcResult (*)(nvrtcProgram prog, const char* name_expression,
                                                const char** lowered_name);
using PFN_nvrtcGetPCHCreateStatus = nvrtcResult (*)(nvrtcProgram prog);
using PFN_nvrtcSetPCHHeapSize = nvrtcResult (*)(size_t size);

}  // namespace tilejit::cuda

// A kernel that faults is reported, not hidden: the synchronization names the error, and the
// next launch in the (now unusable) context fails with a CudaError naming the call and kernel.
// Its own executable, since a fault poisons the process's context.
#include "gpu/gpu_support.h"

namespace tilejit {
namespace {

using namespace gpu_test;

TEST(GpuFault, IllegalAddressIsReported) {
  TILEJIT_REQUIRE_GPU();
  Program program = ProgramBuilder("fault")
                        .source(kernel_source("fault.cu"))
                        .tensor("target", "int32", {1})
                        .scalar("value", "int32")
                        .launch(Launch("write_through").with_block({32}))
                        .build();
  Kernel kernel = compile_for_device(program);
  // A device tensor whose address no allocation owns.
  TensorView wild(reinterpret_cast<void*>(uintptr_t{0x10000}), "int32", {1}, Device::cuda(0));
  kernel({wild, 7});
  try {
    cuda::synchronize(0, nullptr, "write_through");
    FAIL() << "a fault went unreported";
  } catch (const CudaError& e) {
    EXPECT_EQ(e.code(), cuda::CUDA_ERROR_ILLEGAL_ADDRESS) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA_ERROR_ILLEGAL_ADDRESS"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("cuStreamSynchronize"), std::string::npos) << e.what();
  }
  try {
    kernel({wild, 8});
    FAIL() << "a launch in a faulted context succeeded";
  } catch (const Error& e) {  // nvrtc: CudaError; a generated host library reports its own way
    EXPECT_NE(std::string(e.what()).find("write_through"), std::string::npos) << e.what();
    if (testing_nvrtc()) {
      EXPECT_NE(dynamic_cast<const CudaError*>(&e), nullptr) << e.what();
    }
    // Both backends launch with cuLaunchKernelEx, which returns the context's fault.
    EXPECT_NE(std::string(e.what()).find("cuLaunchKernelEx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA_ERROR_ILLEGAL_ADDRESS"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tilejit

// Relocatable device code (dynamic parallelism) is refused at compile time: see backend.h.
#include <fmt/format.h>

#include "backend/backend.h"
#include "tilejit/errors.h"

namespace tilejit::detail {

void refuse_relocatable_device_code(const Program& program, const std::vector<std::string>& flags) {
  for (const std::string& flag : flags) {
    const bool relocatable = flag == "-rdc" || flag == "-rdc=true" || flag == "--rdc=true" ||
                             flag == "--relocatable-device-code" ||
                             flag == "--relocatable-device-code=true" || flag == "-dc" ||
                             flag == "--device-c" || flag == "-dlink" || flag == "--device-link" ||
                             flag == "-lcudadevrt";
    if (relocatable) {
      throw ArgumentError(fmt::format(
          "program '{}': compile flag '{}' asks for relocatable device code, which tilejit does "
          "not build: dynamic parallelism (a kernel launching kernels) needs the device runtime "
          "(cudadevrt) linked into the module, and tilejit loads one whole-program cubin "
          "(nvrtc) or one shared library (nvcc). Launch the child kernels from the host as "
          "further launches of the Program instead",
          program.name, flag));
    }
  }
}

}  // namespace tilejit::detail

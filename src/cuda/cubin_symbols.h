// The kernels a cubin defines, by the symbol names the CUDA runtime looks them up with
// (cudaLibraryGetKernel), and the C++ names those symbols spell (nvcc mangles kernels without
// C linkage with the Itanium C++ ABI).
//
//   for (const CubinFunction& f : cubin_functions(image))
//     if (same_kernel_name(f.demangled, "my_sqrt<float>")) ... f.symbol
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tilejit::cuda {

struct CubinFunction {
  std::string symbol;     // `_Z7my_sqrtIfEvPT_i`, or `scale` for a C-linkage kernel
  std::string demangled;  // `void my_sqrt<float>(float*, int)`; the symbol when not mangled
};

// The kernels (global or weak function symbols marked as entry points) of a 64-bit ELF cubin's
// symbol table, in table order.
// Throws ArgumentError when `image` is not one.
std::vector<CubinFunction> cubin_functions(std::string_view image);

// Whether a demangled function name and a launch's kernel name (`my_sqrt<float>`,
// `ns::k<float, 128>`) name the same function: both without a leading `void `, their top-level
// parameter list and whitespace are compared. Template arguments must be spelled as the
// demangler spells them (`__half`, not `half`).
bool same_kernel_name(std::string_view demangled, std::string_view kernel_name);

}  // namespace tilejit::cuda

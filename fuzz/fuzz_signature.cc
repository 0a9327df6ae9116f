// libFuzzer target: the kernel-declaration parser on arbitrary source text. The first byte
// picks `require_global` (CUDA/HIP) or not (C). Every declaration found must be found again
// by name; nothing may crash or hang.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ir/signature.h"
#include "tilejit/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool require_global = (data[0] & 1) != 0;
  const std::string_view source(reinterpret_cast<const char*>(data + 1), size - 1);
  using tilejit::detail::KernelDeclaration;
  std::vector<KernelDeclaration> found;
  try {
    found = tilejit::detail::parse_kernel_declarations(source, require_global);
  } catch (const tilejit::ProgramError&) {
    return 0;
  }
  for (const KernelDeclaration& decl : found) {
    if (decl.name.empty()) std::abort();
    try {
      const KernelDeclaration again =
          tilejit::detail::parse_kernel_declaration(source, decl.name, require_global);
      if (again.name != decl.name) std::abort();
    } catch (const tilejit::ProgramError&) {
      // A template, which parse_kernel_declaration refuses with the fix, is the only reason
      // a declaration that was found cannot be picked; it may be another declaration of the
      // same name (the definition is preferred).
      const bool some_template =
          std::any_of(found.begin(), found.end(), [&](const KernelDeclaration& other) {
            return other.name == decl.name && other.is_template;
          });
      if (!some_template) std::abort();
    }
  }
  return 0;
}

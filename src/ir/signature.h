// Kernel signatures: what each launch passes to its kernel, read from the kernel's declaration
// in Program::source (DESIGN.md §1, CONVENTIONS.md §1-2).
//
//   for (const KernelArg& arg : resolve_kernel_args(program, program.launches[0])) ...
//   DataType t = symbol_dtype(program, "M");   // int32 when the kernels take `int M`
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tilejit/program.h"

namespace tilejit::detail {

// One parameter of a kernel's declaration, as written.
struct DeclaredParam {
  std::string name;    // empty when the declaration leaves it unnamed
  std::string c_type;  // normalized: `__restrict__`, `__grid_constant__` dropped, "float*"
};

struct KernelDeclaration {
  std::string name;
  std::vector<DeclaredParam> params;
  bool is_template = false;
  std::vector<std::string> template_params;  // names, in order: `template <class T, int N>`
  bool is_definition = false;                // has a body
  bool c_linkage = false;                    // `extern "C"`, or inside an `extern "C" {` block
};

// A launch's kernel name as C++ spells it: `scale`, `ns::scale`, `my_sqrt<float>`,
// `tile<float, 128>` (NVRTC's name expressions). `base` is the unqualified name the
// declaration has; `template_args` the top-level arguments between `<` and `>`, trimmed.
struct KernelName {
  std::string base;
  std::vector<std::string> qualifiers;  // `a::b::k` -> {a, b}
  std::vector<std::string> template_args;
  bool is_template_id = false;  // written with `<...>`, even `<>`
};

// Parses a kernel name expression; nullopt when `text` is not one. Template arguments may not
// hold quotes, backslashes, `%`, `;`, braces or line breaks: the name is pasted into generated
// code and its string literals as it is.
std::optional<KernelName> parse_kernel_name(std::string_view text);

// Every function declaration in `source` at file, namespace or `extern "C"` scope: with
// `require_global`, only CUDA/HIP `__global__` functions. Comments, string and character
// literals, preprocessor lines and `#if 0` blocks are skipped; a kernel declared twice appears
// twice. Macros are not expanded: a kernel declared through a macro is not seen.
std::vector<KernelDeclaration> parse_kernel_declarations(std::string_view source,
                                                         bool require_global);

// The declaration of `kernel_name` (its definition when the source has one). `kernel_name` may be
// a name expression (parse_kernel_name): a template kernel must be named with its arguments,
// `my_sqrt<float>`, and they are substituted into its parameter types (`T*` -> `float*`).
// Throws ProgramError naming the kernel and listing the kernels found when it is absent, and
// naming the fix when a template is named without arguments (or a non-template with them).
KernelDeclaration parse_kernel_declaration(std::string_view source, std::string_view kernel_name,
                                           bool require_global = true);

// The declaration a launch's arguments are read from: the launch's explicit `signature` when it
// has one, else the kernel's declaration in the Program's source.
KernelDeclaration launch_declaration(const Program& program, const Launch& launch);

// Whether the nvrtc backend must look `launch`'s kernel up by its lowered (mangled) name: a
// template instantiation, or a kernel without C linkage (or one only an explicit signature
// describes, whose linkage the source does not show).
bool needs_lowered_name(const Program& program, const Launch& launch);

// One argument a launch passes to its kernel.
struct KernelArg {
  enum class Source : uint8_t { kParam, kSymbol, kTmaDescriptor };
  enum class Kind : uint8_t { kPointer, kInt, kUInt, kFloat, kBool, kTmaDescriptor, kStruct };

  Source source = Source::kParam;
  int index = -1;      // the param or TMA descriptor index; -1 for a symbol
  std::string name;    // the name the argument is matched by
  std::string c_type;  // the kernel parameter's type, normalized as in DeclaredParam
  Kind kind = Kind::kPointer;
  uint32_t bytes = 8;  // size in the kernel parameter buffer (8 pointer, 64 CUtensorMap, a
                       // struct's layout size...)
};

// The arguments of `launch`, in the kernel's parameter order. Names come from Launch::args
// when given, else from the declaration in program.source (language cuda/hip: a `__global__`
// function; c: a plain function). Each is matched to a param, a TMA descriptor or a symbol (a
// shape/stride variable); a name that matches nothing, or a type that does not fit what it
// matched, is a ProgramError naming the kernel, the parameter and what was available. A struct
// param needs a by-value struct type; where its size is known (a CUDA vector type such as
// float2 or cuComplex, or a `struct NAME {...}` / `typedef struct {...} NAME` the source
// defines with plain fields) it is checked against the param's fields, field by field.
std::vector<KernelArg> resolve_kernel_args(const Program& program, const Launch& launch);

// Why the kernels may write each param's memory, indexed like program.params: "" when they
// cannot. A tensor param is written when some launch passes it to a kernel parameter whose
// pointee is not const (`float*`; `const float*` and `float const*` only read), or when a TMA
// descriptor is built over it (a descriptor can store). The declaration is trusted: a kernel
// that casts const away is not seen. Scalars are never written. In a Program without
// launches (metal: the kernels live in a library tilejit does not read) every tensor may be.
std::vector<std::string> param_write_reasons(const Program& program);

// The type of a dynamic symbol: that of the kernel parameters receiving it (int -> int32,
// long long / int64_t -> int64...); int64 when no kernel receives it; a scalar param's own
// dtype for a scalar. Kernels that disagree are a ProgramError naming both.
DataType symbol_dtype(const Program& program, std::string_view symbol);

}  // namespace tilejit::detail

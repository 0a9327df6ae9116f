// What the CPU, CUDA and HIP wrapper generators share: call()'s parameter list, expressions
// over its parameters, the kernel argument lists and the entry points' boilerplate.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "codegen/emit.h"
#include "codegen/wrapper.h"
#include "ir/signature.h"
#include "tilejit/program.h"

namespace tilejit::detail {

class WrapperContext {
 public:
  explicit WrapperContext(const Program& program);

  const Program& program() const { return program_; }
  const std::vector<CallParam>& params() const { return params_; }

  // call()'s parameters without the stream: {"float* A", "float* B", "int32_t n"}.
  std::vector<std::string> parameter_declarations() const;
  // What call_packed passes to call(): {"*(float**)args[0]", "*(int32_t*)args[1]"}.
  std::vector<std::string> packed_arguments() const;
  // `expr` as int64_t C arithmetic over call()'s parameters.
  std::string expr(const Expr& expr) const;
  // The kernel's arguments, resolved against its declaration (CONVENTIONS §1).
  const std::vector<KernelArg>& kernel_args(size_t launch_index) const {
    return kernel_args_[launch_index];
  }
  // The value call() holds for one kernel argument: a parameter or symbol name, or a TMA
  // descriptor variable.
  std::string argument_value(const KernelArg& arg) const;
  const CallParam* find(std::string_view name) const;

 private:
  const Program& program_;
  std::vector<CallParam> params_;
  std::vector<std::vector<KernelArg>> kernel_args_;
};

// For the CUDA and HIP wrappers, which pass kernel arguments as an array of addresses (the
// kernel reads each parameter with exactly its declared size): the address of the value for
// `arg`. A value narrower than the kernel's parameter (an int32 scalar for a `long long`) is
// first widened into a local that this writes to `out`; a value that cannot be converted
// without loss is a ProgramError naming the kernel and the parameter.
std::string kernel_argument_address(const WrapperContext& context, const Launch& launch,
                                    const KernelArg& arg, CodeWriter& out);

// The C type generated code gives a struct scalar: `tj_struct_<name>`, a typedef of its fields
// that write_struct_types emits, laid out as the kernel's own struct type is.
std::string struct_type_name(const KernelParam& param);
void write_struct_types(CodeWriter& out, const Program& program);

// The comment that opens every generated file.
void write_banner(CodeWriter& out, const Program& program, std::string_view what);

}  // namespace tilejit::detail

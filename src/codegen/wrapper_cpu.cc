// The CPU host wrapper: C11, compiled by the host compiler next to the Program's C source.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "codegen/wrapper_common.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// The pointer type call() holds for a tensor differs from the function's declared type when
// the source uses its own spelling (e.g. `_Float16*` where call() has `uint16_t*`); C wants an
// explicit cast between distinct pointer types. Adding `const` needs none.
std::string cpu_argument(const WrapperContext& context, const KernelArg& arg) {
  std::string value = context.argument_value(arg);
  if (arg.kind != KernelArg::Kind::kPointer) return value;
  const CallParam* param = context.find(value);
  if (param != nullptr && (param->c_type == arg.c_type || "const " + param->c_type == arg.c_type)) {
    return value;
  }
  return fmt::format("({}){}", arg.c_type, value);
}

}  // namespace

std::string generate_cpu_wrapper(const Program& program) {
  if (program.language != Language::kC) {
    throw ProgramError(
        fmt::format("program '{}' has language '{}': the CPU wrapper needs language 'c'",
                    program.name, to_string(program.language)));
  }
  if (!program.tma_descriptors.empty()) {
    throw ProgramError(fmt::format(
        "program '{}' declares TMA descriptors: the CPU backend has none", program.name));
  }
  WrapperContext context(program);

  CodeWriter out;
  write_banner(out, program, "CPU host wrapper");
  out.line("#include <stdbool.h>");
  out.line("#include <stdint.h>");
  // The kernels may spell complex tensors' elements `float complex`.
  if (std::any_of(program.params.begin(), program.params.end(),
                  [](const KernelParam& p) { return p.dtype.is_complex(); })) {
    out.line("#include <complex.h>");
  }
  out.line();

  write_struct_types(out, program);
  // A struct parameter is declared with the struct typedef above: it has the layout of the
  // source's own struct (resolve_kernel_args checks the fields where the source defines it), so
  // the value passes by the same calling convention.
  out.line("// The Program's functions, as its source declares them.");
  std::set<std::string> declared;
  for (size_t i = 0; i < program.launches.size(); ++i) {
    const std::string& name = program.launches[i].kernel;
    if (!declared.insert(name).second) continue;
    std::vector<std::string> params;
    for (const KernelArg& arg : context.kernel_args(i)) {
      const std::string type = arg.kind == KernelArg::Kind::kStruct
                                   ? struct_type_name(program.params[arg.index])
                                   : arg.c_type;
      params.push_back(type + " " + arg.name);
    }
    if (params.empty()) params.push_back("void");
    out.wrapped(fmt::format("void {}(", name), params, ");");
  }
  out.line();

  out.line(
      "// Per-thread error text. No CPU call fails today; the entry points are those of every");
  out.line("// tilejit host library, so that C callers use them all alike.");
  out.line("static _Thread_local char tj_error[1024];");
  out.line();
  out.open("int init(void) {");
  out.line("tj_error[0] = '\\0';");
  out.line("return 0;");
  out.close("}");
  out.line();
  out.line("const char* get_last_error(void) { return tj_error; }");
  out.line();

  std::vector<std::string> params = context.parameter_declarations();
  if (params.empty()) params.push_back("void");
  out.wrapped("int call(", params, ") {");
  out.indent();
  for (size_t i = 0; i < program.launches.size(); ++i) {
    std::vector<std::string> args;
    for (const KernelArg& arg : context.kernel_args(i)) args.push_back(cpu_argument(context, arg));
    out.wrapped(program.launches[i].kernel + "(", args, ");");
  }
  out.line("return 0;");
  out.close("}");
  out.line();

  out.open("int call_packed(void* const* args, void* stream) {");
  if (context.params().empty()) out.line("(void)args;");
  out.line("(void)stream;  // CPU functions run to completion on the calling thread");
  out.wrapped("return call(", context.packed_arguments(), ");");
  out.close("}");
  return out.str();
}

}  // namespace tilejit::detail

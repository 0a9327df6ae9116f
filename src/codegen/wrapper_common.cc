#include "codegen/wrapper_common.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::detail {

std::string struct_type_name(const KernelParam& param) {
  return "tj_struct_" + param.name;
}

void write_struct_types(CodeWriter& out, const Program& program) {
  for (const KernelParam& p : program.params) {
    if (!p.is_scalar() || !p.is_struct()) continue;
    out.line(fmt::format(
        "// Struct parameter '{}', passed by value: its fields in order, laid out by the C ABI "
        "({} bytes).",
        p.name, p.struct_layout().size));
    out.open("typedef struct {");
    for (const StructField& field : p.fields) {
      check_c_identifier(field.name, fmt::format("field of struct parameter '{}'", p.name));
      out.line(fmt::format("{} {}{};", field.dtype.c_type(), field.name,
                           field.count == 1 ? "" : fmt::format("[{}]", field.count)));
    }
    out.close(fmt::format("}} {};", struct_type_name(p)));
    out.line();
  }
}

std::vector<CallParam> wrapper_call_params(const Program& program) {
  std::set<std::string_view> kernels;
  for (const Launch& launch : program.launches) kernels.insert(launch.kernel);

  std::vector<CallParam> params;
  auto add = [&](CallParam param) {
    check_c_identifier(param.name, param.kind == CallParam::Kind::kSymbol ? "symbol" : "parameter");
    if (param.name == "stream") {
      throw ProgramError(
          "parameter name 'stream' cannot be used in generated host code: call() takes the "
          "stream under that name; expected another name");
    }
    if (kernels.count(param.name) != 0) {
      throw ProgramError(fmt::format(
          "parameter '{}' has the name of a kernel: expected distinct names, because the "
          "generated call() would hide the kernel behind the parameter",
          param.name));
    }
    params.push_back(std::move(param));
  };

  std::set<std::string_view> scalar_names;
  for (size_t i = 0; i < program.params.size(); ++i) {
    const KernelParam& p = program.params[i];
    CallParam param;
    param.name = p.name;
    param.param_index = static_cast<int>(i);
    param.dtype = p.dtype;
    if (p.is_scalar()) {
      param.kind = CallParam::Kind::kScalar;
      param.c_type = p.is_struct() ? struct_type_name(p) : std::string(p.dtype.c_type());
      scalar_names.insert(p.name);
    } else {
      param.kind = CallParam::Kind::kTensor;
      param.c_type = std::string(p.dtype.c_type()) + "*";
    }
    add(std::move(param));
  }
  for (const std::string& symbol : program.shape_variables()) {
    if (scalar_names.count(symbol) != 0) continue;
    CallParam param;
    param.kind = CallParam::Kind::kSymbol;
    param.name = symbol;
    param.dtype = symbol_dtype(program, symbol);
    param.c_type = std::string(param.dtype.c_type());
    add(std::move(param));
  }
  return params;
}

WrapperContext::WrapperContext(const Program& program)
    : program_(program), params_(wrapper_call_params(program)) {
  for (const TmaDescriptor& descriptor : program.tma_descriptors) {
    check_c_identifier(descriptor.name, "TMA descriptor");
    for (const Launch& launch : program.launches) {
      if (launch.kernel == descriptor.name) {
        throw ProgramError(fmt::format(
            "TMA descriptor '{}' has the name of a kernel: expected distinct names, because the "
            "generated call() would hide the kernel behind the descriptor",
            descriptor.name));
      }
    }
  }
  kernel_args_.reserve(program.launches.size());
  for (const Launch& launch : program.launches) {
    for (std::string_view entry : {"init", "get_last_error", "call", "call_packed"}) {
      if (launch.kernel == entry) {
        throw ProgramError(fmt::format(
            "kernel '{}' has the name of an entry point of the generated host library (init, "
            "get_last_error, call, call_packed): expected another name",
            launch.kernel));
      }
    }
    kernel_args_.push_back(resolve_kernel_args(program, launch));
  }
}

const CallParam* WrapperContext::find(std::string_view name) const {
  for (const CallParam& param : params_) {
    if (param.name == name) return &param;
  }
  return nullptr;
}

std::vector<std::string> WrapperContext::parameter_declarations() const {
  std::vector<std::string> parts;
  for (const CallParam& param : params_) parts.push_back(param.c_type + " " + param.name);
  return parts;
}

std::vector<std::string> WrapperContext::packed_arguments() const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < params_.size(); ++i) {
    parts.push_back(fmt::format("*({}*)args[{}]", params_[i].c_type, i));
  }
  return parts;
}

std::string WrapperContext::expr(const Expr& e) const {
  // A lone variable needs no widening: there is no arithmetic to overflow.
  const bool lone = e.is_var();
  return emit_c_expr(e, [this, lone](std::string_view name) {
    const CallParam* param = find(name);
    if (param == nullptr) {
      throw ProgramError(fmt::format(
          "the expression uses '{}', which is neither a parameter nor a shape/stride variable",
          name));
    }
    // Symbols narrower than 64 bits are widened so that products cannot overflow.
    if (lone || param->dtype == DataType{TypeCode::kInt, 64, 1}) return param->name;
    return "(int64_t)" + param->name;
  });
}

std::string WrapperContext::argument_value(const KernelArg& arg) const {
  switch (arg.source) {
    case KernelArg::Source::kParam:
      return program_.params[static_cast<size_t>(arg.index)].name;
    case KernelArg::Source::kSymbol:
      return arg.name;
    case KernelArg::Source::kTmaDescriptor:
      return program_.tma_descriptors[static_cast<size_t>(arg.index)].name;
  }
  return arg.name;
}

std::string kernel_argument_address(const WrapperContext& context, const Launch& launch,
                                    const KernelArg& arg, CodeWriter& out) {
  const std::string value = context.argument_value(arg);
  if (arg.source == KernelArg::Source::kTmaDescriptor) return "&" + value;
  const CallParam* param = context.find(value);
  if (param == nullptr) {
    throw ProgramError(fmt::format("kernel '{}' takes '{}', which call() does not receive",
                                   launch.kernel, arg.name));
  }
  if (param->dtype.is_struct()) return "&" + value;  // resolve_kernel_args checked the type
  const bool is_pointer = param->kind == CallParam::Kind::kTensor || param->dtype.is_handle();
  if (is_pointer || arg.kind == KernelArg::Kind::kPointer) {
    if (is_pointer && arg.kind == KernelArg::Kind::kPointer) return "&" + value;
    throw ProgramError(fmt::format(
        "kernel '{}' declares '{}' as {}, but the Program passes {} '{}': expected a pointer "
        "parameter for a tensor or handle and a value parameter for a scalar",
        launch.kernel, arg.name, arg.c_type, is_pointer ? "the pointer" : "the scalar", value));
  }

  const DataType& dtype = param->dtype;
  const uint32_t value_bytes = dtype.is_boolean() ? 1 : dtype.bits / 8U * dtype.lanes;
  const bool same_class =
      (arg.kind == KernelArg::Kind::kBool && dtype.is_boolean()) ||
      (arg.kind == KernelArg::Kind::kFloat && dtype.is_float()) ||
      ((arg.kind == KernelArg::Kind::kInt || arg.kind == KernelArg::Kind::kUInt) &&
       dtype.is_integer());
  if (same_class && value_bytes == arg.bytes) return "&" + value;
  // Widening keeps the value: integers to wider integers, float32 to double.
  const bool widens = same_class && value_bytes < arg.bytes &&
                      (dtype.is_integer() || (dtype.code == TypeCode::kFloat && dtype.bits == 32));
  if (!widens) {
    throw ProgramError(fmt::format(
        "kernel '{}' declares '{}' as {} ({} bytes), which does not hold the {} value '{}' "
        "without loss: expected a parameter of the same type or a wider one",
        launch.kernel, arg.name, arg.c_type, arg.bytes, dtype.str(), value));
  }
  std::string type;
  if (arg.kind == KernelArg::Kind::kFloat) {
    type = "double";
  } else {
    type = fmt::format("{}int{}_t", arg.kind == KernelArg::Kind::kUInt ? "u" : "", arg.bytes * 8);
  }
  // A template kernel's name (`k<float, 4>`) is no identifier: its other characters become '_'.
  std::string kernel = launch.kernel;
  std::replace_if(
      kernel.begin(), kernel.end(),
      [](char c) { return std::isalnum(static_cast<unsigned char>(c)) == 0; }, '_');
  const std::string local = fmt::format("tj_{}_{}", kernel, arg.name);
  out.line(fmt::format("{} {} = ({}){};  // widened to the kernel's {}", type, local, type, value,
                       arg.c_type));
  return "&" + local;
}

void write_banner(CodeWriter& out, const Program& program, std::string_view what) {
  out.line(fmt::format("// {} for the tilejit Program '{}'.", what, program.name));
  out.line("// Generated by tilejit: regenerate rather than edit.");
}

namespace {

std::string include_guard(const Program& program) {
  std::string guard = "TILEJIT_";
  for (char c : program.name) {
    guard += std::isalnum(static_cast<unsigned char>(c)) != 0
                 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                 : '_';
  }
  return guard + "_H_";
}

}  // namespace

std::string generate_wrapper_header(const Program& program, HostApi api) {
  WrapperContext context(program);
  std::vector<std::string> params = context.parameter_declarations();
  if (api == HostApi::kCuda) params.push_back("cudaStream_t stream");
  if (api == HostApi::kHip) params.push_back("hipStream_t stream");
  if (params.empty()) params.push_back("void");

  CodeWriter out;
  write_banner(out, program, "C interface of the host library");
  out.line("//");
  out.line("// Call init() once per device (with that device current) before the first call().");
  out.line("// Every function returns 0 on success and -1 on failure; get_last_error() then");
  out.line("// describes the failure. Errors are per thread: get_last_error() returns the");
  out.line("// message of the calling thread's last failed call.");
  out.line("// Tensors are passed as pointers to their first element, laid out as the Program");
  out.line("// declares them; shape variables that no scalar parameter carries follow the");
  out.line("// parameters.");
  if (api != HostApi::kCpu) {
    out.line("// call() only enqueues work on `stream`; synchronize before reading results.");
  }
  const std::string guard = include_guard(program);
  out.line("#ifndef " + guard);
  out.line("#define " + guard);
  out.line();
  out.line("#include <stdbool.h>");
  out.line("#include <stdint.h>");
  if (api == HostApi::kCuda) out.line("#include <cuda_runtime_api.h>");
  if (api == HostApi::kHip) out.line("#include <hip/hip_runtime_api.h>");
  out.line();
  out.line("#ifdef __cplusplus");
  out.line("extern \"C\" {");
  out.line("#endif");
  out.line();
  write_struct_types(out, program);
  out.line("int init(void);");
  out.line("const char* get_last_error(void);");
  out.wrapped("int call(", params, ");");
  out.line("// args[i] points to the value of call()'s i-th argument; `stream` is its stream.");
  out.line("int call_packed(void* const* args, void* stream);");
  if (api == HostApi::kCuda) {
    out.line(
        "// The device address and size of a __device__ / __constant__ variable on the current");
    out.line("// device: 0, 1 when the device code has no variable `name`, -1 on failure.");
    out.line("int get_global(const char* name, void** address, size_t* bytes);");
  }
  out.line();
  out.line("#ifdef __cplusplus");
  out.line("}  // extern \"C\"");
  out.line("#endif");
  out.line();
  out.line("#endif  // " + guard);
  return out.str();
}

std::string generate_metal_wrapper(const Program& program) {
  return program.source;
}

}  // namespace tilejit::detail

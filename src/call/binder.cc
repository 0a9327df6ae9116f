// The Binder: the Program's parameters compiled into a flat list of checks at construction,
// run over each call's arguments with no heap allocation and no locks.
#include "call/binder.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "ir/signature.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

using dlpack::DLTensor;

std::string device_name(int32_t type) {
  switch (type) {
    case dlpack::kDLCPU:
      return "cpu";
    case dlpack::kDLCUDA:
      return "cuda";
    case dlpack::kDLCUDAHost:
      return "cuda_host";
    case dlpack::kDLCUDAManaged:
      return "cuda_managed";
    case dlpack::kDLROCM:
      return "rocm";
    case dlpack::kDLROCMHost:
      return "rocm_host";
    case dlpack::kDLMetal:
      return "metal";
    case dlpack::kDLOpenCL:
      return "opencl";
    case dlpack::kDLVulkan:
      return "vulkan";
    default:
      return fmt::format("device_type {}", type);
  }
}

bool device_type_accepted(int32_t expected, int32_t actual) {
  if (expected == dlpack::kDLCUDA) {
    return actual == dlpack::kDLCUDA || actual == dlpack::kDLCUDAManaged;
  }
  return actual == expected;
}

uint32_t pack(dlpack::DLDataType t) {
  return uint32_t{t.code} | (uint32_t{t.bits} << 8) | (uint32_t{t.lanes} << 16);
}

std::string dlpack_dtype_name(dlpack::DLDataType t) {
  try {
    return DataType::from_dlpack(t).str();
  } catch (const Error&) {
    return fmt::format("dlpack(code={}, bits={}, lanes={})", t.code, t.bits, t.lanes);
  }
}

std::string list_text(const int64_t* values, int32_t n) {
  std::string text = "[";
  for (int32_t d = 0; d < n; ++d) text += fmt::format("{}{}", d == 0 ? "" : ", ", values[d]);
  return text + "]";
}

// The stride `dim` has in a compact row-major tensor of t's shape (whose element count the
// kTensor check has found to fit in int64).
int64_t compact_stride(const DLTensor& t, int dim) {
  int64_t stride = 1;
  for (int d = t.ndim - 1; d > dim; --d) stride *= t.shape[d];
  return stride;
}

// A DLTensor's stride of `dim` in elements; a null strides array means compact row-major.
int64_t stride_of(const DLTensor& t, int dim) {
  return t.strides != nullptr ? t.strides[dim] : compact_stride(t, dim);
}

std::string strides_text(const DLTensor& t) {
  if (t.strides == nullptr) return "compact";
  return list_text(t.strides, t.ndim);
}

// Whether the tensor has no elements. Not a product of the dims: before the shape checks
// the dims are anything the caller sent, and their product can overflow.
bool is_empty(const DLTensor& t) {
  for (int d = 0; d < t.ndim; ++d) {
    if (t.shape[d] == 0) return true;
  }
  return false;
}

// The dimension at which a strided tensor stops being compact row-major, or -1. Size-1 dims
// may carry any stride (they are never stepped over), and an empty tensor is compact.
int first_non_compact_dim(const DLTensor& t) {
  if (t.strides == nullptr || is_empty(t)) return -1;
  int64_t expected = 1;
  bool overflowed = false;  // the compact stride no longer fits in int64: no stride equals it
  for (int d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] != 1 && (overflowed || t.strides[d] != expected)) return d;
    overflowed = overflowed || __builtin_mul_overflow(expected, t.shape[d], &expected);
  }
  return -1;
}

// The largest finite value of a floating dtype, for scalar range checks.
double max_finite(const DataType& dtype) {
  switch (dtype.code) {
    case TypeCode::kFloat:
      if (dtype.bits == 16) return 65504.0;
      if (dtype.bits == 32) return std::numeric_limits<float>::max();
      return std::numeric_limits<double>::max();
    case TypeCode::kBFloat:
      return 3.3895313892515355e38;
    case TypeCode::kFloat8E4M3:
      return 448.0;
    case TypeCode::kFloat8E5M2:
      return 57344.0;
    case TypeCode::kFloat4E2M1:
      return 6.0;
    default:
      return std::numeric_limits<double>::max();
  }
}

void integer_range(const DataType& dtype, int64_t& lo, int64_t& hi) {
  if (dtype.is_boolean()) {
    lo = 0;
    hi = 1;
  } else if (dtype.is_unsigned()) {
    lo = 0;
    // An Arg carries an int64, so uint64 values above INT64_MAX cannot be passed at all.
    hi = dtype.bits >= 64 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << dtype.bits) - 1;
  } else {
    lo = dtype.bits >= 64 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (dtype.bits - 1));
    hi = dtype.bits >= 64 ? std::numeric_limits<int64_t>::max()
                          : (int64_t{1} << (dtype.bits - 1)) - 1;
  }
}

const char* kind_name(Arg::Kind kind) {
  switch (kind) {
    case Arg::Kind::kTensor:
      return "a tensor";
    case Arg::Kind::kInt:
      return "an integer";
    case Arg::Kind::kFloat:
      return "a float";
    case Arg::Kind::kPointer:
      return "a pointer";
    case Arg::Kind::kBytes:
      return "struct bytes";
  }
  return "an unknown argument";
}

}  // namespace

struct Binder::Plan {
  enum class Op : uint8_t {
    kTensorKind,     // the argument is a non-null tensor
    kIntKind,        // an integer (int/uint/bool params)
    kFloatKind,      // an integer or a float (float params)
    kPointerKind,    // a pointer (handle params)
    kStruct,         // bytes of size value (struct params), copied to struct_bytes + slot
    kWritable,       // the tensor is not read-only (params the kernels may write)
    kTensor,         // one pass over the DLTensor, in this order: data != nullptr unless the
                     // tensor is empty; an accepted device type, the first tensor's device;
                     // dtype (value = packed DLDataType); ndim (dim), every size >= 0
    kConstDim,       // shape[dim] == value
    kBindDim,        // symbols[slot] = shape[dim]
    kCheckDim,       // shape[dim] == symbols[slot]
    kCompact,        // compact row-major (size-1 dims: any stride)
    kConstStride,    // stride[dim] == value (size-1 dims: any stride)
    kBindStride,     // symbols[slot] = stride[dim]
    kCheckStride,    // stride[dim] == symbols[slot] (size-1 dims: any stride)
    kIntRange,       // lo <= value <= hi, stored in int_values (and symbols[slot] if slot >= 0)
    kFloatRange,     // |value| <= max_finite unless not finite, stored in float_values
    kPointerValue,   // stored in data
    kCheckScalar,    // int_values[param] == symbols[slot]
    kDerivedDim,     // shape[dim] == exprs[slot].eval(symbols)
    kDerivedStride,  // stride[dim] == exprs[slot].eval(symbols) (size-1 dims: any stride)
  };

  struct Check {
    Op op;
    int8_t dim = 0;
    int16_t param = 0;
    int16_t arg = 0;
    int32_t slot = 0;  // symbol slot, or index into exprs for derived checks
    int64_t value = 0;
    int64_t lo = 0;
    int64_t hi = 0;
    double max_abs = 0;
  };

  struct Output {
    int param = 0;
    DataType dtype;
    std::vector<CompiledExpr> shape;
  };

  std::string program_name;
  std::vector<int> input_params;  // param index of each argument
  std::string input_names;        // "A, B, n" for the argument-count message
  int first_tensor_arg = -1;
  std::vector<Check> checks;
  std::vector<CompiledExpr> exprs;
  std::vector<std::string> symbol_origin;  // where each slot is bound, for messages
  std::vector<std::string> write_reasons;  // per param: why the kernels may write it
  std::vector<Output> outputs;
  // Maximal stretches of `checks` with one op, in order: [begin, end).
  struct Run {
    Op op;
    uint32_t begin = 0;
    uint32_t end = 0;
  };
  std::vector<Run> runs;
};

Binder::Binder(const Program& program, std::vector<int> out_idx, int32_t expected_device_type)
    : program_(program), out_idx_(std::move(out_idx)), expected_device_type_(expected_device_type) {
  using Op = Plan::Op;
  const auto& params = program_.params;
  if (params.size() > static_cast<size_t>(kMaxParams)) {
    throw ProgramError(fmt::format("program '{}' has {} params; tilejit supports at most {}",
                                   program_.name, params.size(), kMaxParams));
  }
  std::vector<bool> is_output(params.size(), false);
  for (size_t k = 0; k < out_idx_.size(); ++k) {
    const int index = out_idx_[k];
    if (index < 0 || index >= static_cast<int>(params.size()) ||
        (k > 0 && index <= out_idx_[k - 1])) {
      throw ArgumentError(fmt::format(
          "program '{}': out_idx must be resolved, ascending indices into its {} params",
          program_.name, params.size()));
    }
    if (params[index].is_scalar()) {
      throw ArgumentError(
          fmt::format("program '{}': out_idx names the scalar param '{}'; only "
                      "tensors can be outputs",
                      program_.name, params[index].name));
    }
    if (params[index].strides) {
      throw ArgumentError(fmt::format(
          "program '{}': out_idx output '{}' declares strides; outputs are allocated compact "
          "row-major, so drop its strides or pass it as an input",
          program_.name, params[index].name));
    }
    is_output[index] = true;
  }

  // Symbols: shape/stride variables (also those that occur only inside expressions), then
  // the names of integer scalar params.
  auto add_symbol = [&](const std::string& name) {
    for (const std::string& s : symbols_) {
      if (s == name) return;
    }
    symbols_.push_back(name);
  };
  for (const std::string& name : program_.shape_variables()) add_symbol(name);
  for (const KernelParam& p : params) {
    for (const Expr& e : p.shape) {
      for (const std::string& v : e.variables()) add_symbol(v);
    }
    if (p.strides) {
      for (const Expr& e : *p.strides) {
        for (const std::string& v : e.variables()) add_symbol(v);
      }
    }
  }
  for (const KernelParam& p : params) {
    if (p.is_scalar() && p.dtype.is_integer()) add_symbol(p.name);
  }
  if (symbols_.size() > static_cast<size_t>(kMaxSymbols)) {
    throw ProgramError(fmt::format("program '{}' has {} symbols; tilejit supports at most {}",
                                   program_.name, symbols_.size(), kMaxSymbols));
  }

  auto plan = std::make_shared<Plan>();
  plan->program_name = program_.name;
  plan->symbol_origin.assign(symbols_.size(), std::string());
  std::vector<bool> bound(symbols_.size(), false);

  // Inputs, in order.
  struct Input {
    int param;
    int arg;
  };
  std::vector<Input> tensors;
  std::vector<Input> scalars;
  for (size_t i = 0; i < params.size(); ++i) {
    if (is_output[i]) continue;
    const int arg = static_cast<int>(plan->input_params.size());
    plan->input_params.push_back(static_cast<int>(i));
    plan->input_names += fmt::format("{}{}", arg == 0 ? "" : ", ", params[i].name);
    (params[i].is_scalar() ? scalars : tensors).push_back({static_cast<int>(i), arg});
    if (params[i].shape.size() > static_cast<size_t>(kMaxTensorDims)) {
      throw ProgramError(fmt::format("param '{}' has {} dimensions; tilejit supports at most {}",
                                     params[i].name, params[i].shape.size(), kMaxTensorDims));
    }
  }
  if (!tensors.empty()) plan->first_tensor_arg = tensors.front().arg;

  auto emit = [&](Op op, const Input& in, int dim = 0) -> Plan::Check& {
    Plan::Check check;
    check.op = op;
    check.param = static_cast<int16_t>(in.param);
    check.arg = static_cast<int16_t>(in.arg);
    check.dim = static_cast<int8_t>(dim);
    plan->checks.push_back(check);
    return plan->checks.back();
  };
  auto add_expr = [&](const Expr& e, std::string_view context) {
    plan->exprs.push_back(compile(e, context));
    return static_cast<int32_t>(plan->exprs.size() - 1);
  };

  // 1. Kinds, for every argument first: a scalar where a tensor belongs is reported as such,
  //    not as a confusing dtype or shape error.
  for (const Input& in : tensors) emit(Op::kTensorKind, in);
  uint32_t struct_end = 0;  // where the next struct's bytes go in BoundCall::struct_bytes
  for (const Input& in : scalars) {
    const DataType& dtype = params[in.param].dtype;
    if (dtype.is_struct()) {
      const StructLayout layout = params[in.param].struct_layout();
      const uint32_t offset =
          (struct_end + layout.alignment - 1) / layout.alignment * layout.alignment;
      struct_end = offset + layout.size;
      if (struct_end > kMaxStructBytes) {
        throw ProgramError(
            fmt::format("program '{}': its struct params take more than {} bytes together",
                        program_.name, kMaxStructBytes));
      }
      Plan::Check& check = emit(Op::kStruct, in);
      check.value = layout.size;
      check.slot = static_cast<int32_t>(offset);
    } else if (dtype.is_handle()) {
      emit(Op::kPointerKind, in);
    } else if (dtype.is_float()) {
      emit(Op::kFloatKind, in);
    } else {
      emit(Op::kIntKind, in);
    }
  }
  // 2. Read-only tensors where the kernels may write, null data, device, dtype, ndim.
  plan->write_reasons = param_write_reasons(program_);
  for (const Input& in : tensors) {
    if (!plan->write_reasons[in.param].empty()) emit(Op::kWritable, in);
  }
  // Null data, device, dtype and ndim are one check per tensor: four runs of one check kind
  // each cost a third of bind() for three tensors.
  for (const Input& in : tensors) {
    Plan::Check& check = emit(Op::kTensor, in);
    check.value = pack(params[in.param].dtype.to_dlpack());
    check.dim = static_cast<int8_t>(params[in.param].shape.size());  // <= kMaxTensorDims
  }
  // 3. Constant dims, then every dim that is a bare variable: the first occurrence binds it.
  for (const Input& in : tensors) {
    const auto& shape = params[in.param].shape;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d].is_const())
        emit(Op::kConstDim, in, static_cast<int>(d)).value = shape[d].const_value();
    }
  }
  for (const Input& in : tensors) {
    const auto& shape = params[in.param].shape;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (!shape[d].is_var()) continue;
      const int slot = symbol_slot(shape[d].var_name());
      if (!bound[slot]) {
        bound[slot] = true;
        plan->symbol_origin[slot] = fmt::format("'{}' dim {}", params[in.param].name, d);
        emit(Op::kBindDim, in, static_cast<int>(d)).slot = slot;
      } else {
        emit(Op::kCheckDim, in, static_cast<int>(d)).slot = slot;
      }
    }
  }
  // 4. Strides: compact unless declared; declared constants checked, declared variables bound.
  std::vector<std::pair<Input, int>> derived_strides;
  for (const Input& in : tensors) {
    const KernelParam& p = params[in.param];
    if (!p.strides) {
      emit(Op::kCompact, in);
      continue;
    }
    if (p.strides->size() != p.shape.size()) {
      throw ProgramError(fmt::format("param '{}' declares {} strides for {} dimensions", p.name,
                                     p.strides->size(), p.shape.size()));
    }
    for (size_t d = 0; d < p.strides->size(); ++d) {
      const Expr& s = (*p.strides)[d];
      if (s.is_const()) {
        emit(Op::kConstStride, in, static_cast<int>(d)).value = s.const_value();
      } else if (s.is_var()) {
        const int slot = symbol_slot(s.var_name());
        if (!bound[slot]) {
          bound[slot] = true;
          plan->symbol_origin[slot] = fmt::format("'{}' stride {}", p.name, d);
          emit(Op::kBindStride, in, static_cast<int>(d)).slot = slot;
        } else {
          emit(Op::kCheckStride, in, static_cast<int>(d)).slot = slot;
        }
      } else {
        derived_strides.emplace_back(in, static_cast<int>(d));
      }
    }
  }
  // 5. Scalars: range for the dtype, then integer scalars bind (or must agree with) their
  //    symbol. A scalar that binds its symbol does so in its range check (a bind cannot fail,
  //    and nothing before the agreement checks reads the slot): one check less per call.
  std::vector<Input> agreeing;  // integer scalars whose symbol was bound before
  for (const Input& in : scalars) {
    const KernelParam& p = params[in.param];
    if (p.is_struct()) continue;  // checked and copied in step 1
    if (p.dtype.is_handle()) {
      emit(Op::kPointerValue, in);
    } else if (p.dtype.is_float()) {
      emit(Op::kFloatRange, in).max_abs = max_finite(p.dtype);
    } else {
      Plan::Check& check = emit(Op::kIntRange, in);
      integer_range(p.dtype, check.lo, check.hi);
      check.slot = -1;
      if (!p.dtype.is_integer()) continue;
      const int slot = symbol_slot(p.name);
      if (!bound[slot]) {
        bound[slot] = true;
        plan->symbol_origin[slot] = fmt::format("scalar '{}'", p.name);
        check.slot = slot;
      } else {
        agreeing.push_back(in);
      }
    }
  }
  for (const Input& in : agreeing) {
    emit(Op::kCheckScalar, in).slot = symbol_slot(params[in.param].name);
  }
  // Every symbol must be bound by now: derived shapes, outputs and the kernels read them.
  for (size_t s = 0; s < symbols_.size(); ++s) {
    if (!bound[s]) {
      throw ProgramError(fmt::format(
          "program '{}': symbol '{}' cannot be bound from the inputs; use it as a dimension or "
          "stride of an input tensor, or add an integer scalar param named '{}'",
          program_.name, symbols_[s], symbols_[s]));
    }
  }
  // 6. Derived shapes and strides (expressions), evaluated over the bound symbols.
  for (const Input& in : tensors) {
    const KernelParam& p = params[in.param];
    for (size_t d = 0; d < p.shape.size(); ++d) {
      if (p.shape[d].is_const() || p.shape[d].is_var()) continue;
      const int32_t e = add_expr(p.shape[d], fmt::format("dim {} of param '{}'", d, p.name));
      emit(Op::kDerivedDim, in, static_cast<int>(d)).slot = e;
    }
  }
  for (const auto& [in, d] : derived_strides) {
    const KernelParam& p = params[in.param];
    const int32_t e = add_expr((*p.strides)[d], fmt::format("stride {} of param '{}'", d, p.name));
    emit(Op::kDerivedStride, in, d).slot = e;
  }
  // 7. Outputs: shapes from the symbols.
  for (int index : out_idx_) {
    const KernelParam& p = params[index];
    if (p.shape.size() > static_cast<size_t>(kMaxTensorDims)) {
      throw ProgramError(fmt::format("param '{}' has {} dimensions; tilejit supports at most {}",
                                     p.name, p.shape.size(), kMaxTensorDims));
    }
    Plan::Output output;
    output.param = index;
    output.dtype = p.dtype;
    for (size_t d = 0; d < p.shape.size(); ++d) {
      output.shape.push_back(compile(p.shape[d], fmt::format("dim {} of output '{}'", d, p.name)));
    }
    plan->outputs.push_back(std::move(output));
  }
  for (size_t i = 0; i < plan->checks.size(); ++i) {
    const Op op = plan->checks[i].op;
    if (plan->runs.empty() || plan->runs.back().op != op) {
      plan->runs.push_back({op, static_cast<uint32_t>(i), static_cast<uint32_t>(i)});
    }
    plan->runs.back().end = static_cast<uint32_t>(i + 1);
  }
  plan_ = std::move(plan);
}

int Binder::symbol_slot(std::string_view name) const {
  for (size_t s = 0; s < symbols_.size(); ++s) {
    if (symbols_[s] == name) return static_cast<int>(s);
  }
  return -1;
}

CompiledExpr Binder::compile(const Expr& expr, std::string_view context) const {
  return CompiledExpr::compile(
      expr, [this](std::string_view name) { return symbol_slot(name); }, context);
}

void Binder::bind(std::span<const Arg> args, BoundCall& bound, const OutputAllocator& allocator,
                  std::vector<Tensor>& outputs) const {
  using Op = Plan::Op;
  const Plan& plan = *plan_;
  const auto& params = program_.params;
  if (args.size() != plan.input_params.size()) {
    throw ArgumentError(fmt::format(
        "{}: expected {} argument{} ({}), got {}", plan.program_name, plan.input_params.size(),
        plan.input_params.size() == 1 ? "" : "s", plan.input_names, args.size()));
  }
  // Messages are built only on failure; the success path formats nothing.
  auto fail = [&](const Plan::Check& c, std::string_view what) {
    throw ArgumentError(fmt::format("{}: argument '{}' (#{}): {}", plan.program_name,
                                    params[c.param].name, c.arg, what));
  };
  if (plan.first_tensor_arg >= 0 && args[plan.first_tensor_arg].kind() == Arg::Kind::kTensor &&
      args[plan.first_tensor_arg].tensor() != nullptr) {
    // The backend's device type, not the tensor's: a kDLCUDAManaged tensor still means the
    // kernel runs, and outputs are allocated, on a plain CUDA device.
    bound.device = {expected_device_type_, args[plan.first_tensor_arg].tensor()->device.device_id};
  } else {
    bound.device = {expected_device_type_, allocator.default_device_id()};
  }

  int64_t* symbols = bound.symbols.data();
  // One check, with its op passed apart from it: the loops below pass a constant, so that each
  // inlined copy of this switch folds to the one case it runs.
  auto run_check = [&](Op op, const Plan::Check& c) __attribute__((always_inline)) {
    const Arg& arg = args[c.arg];
    // Only dereferenced by tensor checks, which run after kTensorKind has passed.
    const DLTensor* t = arg.kind() == Arg::Kind::kTensor ? arg.tensor() : nullptr;
    switch (op) {
      case Op::kTensorKind:
        if (arg.kind() != Arg::Kind::kTensor) {
          fail(c, fmt::format("expected a {} tensor, got {}", params[c.param].dtype.str(),
                              kind_name(arg.kind())));
        }
        if (t == nullptr) fail(c, "expected a tensor, got a null DLTensor pointer");
        bound.tensors[c.param] = t;
        break;
      case Op::kIntKind:
        if (arg.kind() != Arg::Kind::kInt) {
          fail(c, fmt::format("expected an integer ({}) scalar, got {}",
                              params[c.param].dtype.str(), kind_name(arg.kind())));
        }
        break;
      case Op::kFloatKind:
        if (arg.kind() != Arg::Kind::kFloat && arg.kind() != Arg::Kind::kInt) {
          fail(c, fmt::format("expected a number ({}) scalar, got {}", params[c.param].dtype.str(),
                              kind_name(arg.kind())));
        }
        break;
      case Op::kPointerKind:
        if (arg.kind() != Arg::Kind::kPointer) {
          fail(c, fmt::format("expected a pointer (handle), got {}", kind_name(arg.kind())));
        }
        break;
      case Op::kStruct:
        if (arg.kind() != Arg::Kind::kBytes) {
          fail(c, fmt::format("expected the {} bytes of a struct (Arg::bytes), got {}", c.value,
                              kind_name(arg.kind())));
        }
        if (arg.bytes_size() != static_cast<uint64_t>(c.value)) {
          fail(c, fmt::format("expected the {} bytes of the struct its fields lay out, got {} "
                              "bytes",
                              c.value, arg.bytes_size()));
        }
        if (arg.bytes_data() == nullptr) fail(c, "expected the struct's bytes, got a null pointer");
        // Copied, so that the value is aligned for the generated call()'s struct type and
        // outlives whatever the caller packed it in until the launch has read it.
        std::memcpy(bound.struct_bytes.data() + c.slot, arg.bytes_data(),
                    static_cast<size_t>(c.value));
        bound.data[c.param] = bound.struct_bytes.data() + c.slot;
        break;
      case Op::kWritable:
        if (arg.read_only()) {
          fail(c, fmt::format("the tensor is read-only, but the kernels may write it ({})",
                              plan.write_reasons[c.param]));
        }
        break;
      case Op::kTensor: {
        if (t->data == nullptr && !is_empty(*t)) {
          fail(c, fmt::format("data pointer is null for a tensor of shape {}",
                              list_text(t->shape, t->ndim)));
        }
        // In integers: a byte_offset that runs past the end of the address space is refused,
        // not turned into an overflowed pointer.
        if (t->byte_offset > UINTPTR_MAX - reinterpret_cast<uintptr_t>(t->data)) {
          fail(c, fmt::format("byte_offset {} runs past the end of the address space",
                              t->byte_offset));
        }
        bound.data[c.param] =
            reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(t->data) + t->byte_offset);
        const int32_t type = t->device.device_type;
        if (!device_type_accepted(expected_device_type_, type)) {
          fail(c, fmt::format("expected a {} tensor, got one on {}:{}",
                              device_name(expected_device_type_), device_name(type),
                              t->device.device_id));
        }
        if (t->device.device_id != bound.device.id) {
          fail(c, fmt::format("expected device {}:{} (where '{}' is), got {}:{}",
                              device_name(bound.device.type), bound.device.id,
                              params[plan.input_params[plan.first_tensor_arg]].name,
                              device_name(type), t->device.device_id));
        }
        if (pack(t->dtype) != static_cast<uint32_t>(c.value)) {
          fail(c, fmt::format("expected dtype {}, got {}", params[c.param].dtype.str(),
                              dlpack_dtype_name(t->dtype)));
        }
        if (t->ndim != c.dim) {
          fail(c, fmt::format("expected {} dimensions, got {} (shape {})", int{c.dim}, t->ndim,
                              list_text(t->shape, t->ndim)));
        }
        // Sizes every later check (and compact_stride) may multiply without overflow.
        for (int64_t d = 0, count = 1; d < t->ndim; ++d) {
          if (t->shape[d] < 0) {
            fail(c, fmt::format("dim {} is {}: expected a size >= 0 (shape {})", d, t->shape[d],
                                list_text(t->shape, t->ndim)));
          }
          if (__builtin_mul_overflow(count, t->shape[d], &count)) {
            fail(c, fmt::format("shape {} has more elements than int64 counts",
                                list_text(t->shape, t->ndim)));
          }
        }
        break;
      }
      case Op::kConstDim:
        if (t->shape[c.dim] != c.value) {
          fail(c, fmt::format("dim {}: expected {}, got {} (shape {})", c.dim, c.value,
                              t->shape[c.dim], list_text(t->shape, t->ndim)));
        }
        break;
      case Op::kBindDim:
        symbols[c.slot] = t->shape[c.dim];
        break;
      case Op::kCheckDim:
        if (t->shape[c.dim] != symbols[c.slot]) {
          fail(c, fmt::format("dim {}: expected {} = {} (bound from {}), got {}", c.dim,
                              symbols_[c.slot], symbols[c.slot], plan.symbol_origin[c.slot],
                              t->shape[c.dim]));
        }
        break;
      case Op::kCompact: {
        const int d = first_non_compact_dim(*t);
        if (d >= 0) {
          fail(c, fmt::format("expected a compact row-major tensor (declare strides to accept "
                              "views): dim {} has stride {}, expected {} (shape {}, strides {})",
                              d, t->strides[d], compact_stride(*t, d), list_text(t->shape, t->ndim),
                              strides_text(*t)));
        }
        break;
      }
      case Op::kConstStride:
        if (t->shape[c.dim] != 1 && stride_of(*t, c.dim) != c.value) {
          fail(c, fmt::format("stride {}: expected {}, got {} (strides {})", c.dim, c.value,
                              stride_of(*t, c.dim), strides_text(*t)));
        }
        break;
      case Op::kBindStride:
        symbols[c.slot] = stride_of(*t, c.dim);
        break;
      case Op::kCheckStride:
        if (t->shape[c.dim] != 1 && stride_of(*t, c.dim) != symbols[c.slot]) {
          fail(c, fmt::format("stride {}: expected {} = {} (bound from {}), got {}", c.dim,
                              symbols_[c.slot], symbols[c.slot], plan.symbol_origin[c.slot],
                              stride_of(*t, c.dim)));
        }
        break;
      case Op::kIntRange: {
        const int64_t v = arg.int_value();
        if (v < c.lo || v > c.hi) {
          fail(c, fmt::format("value {} is out of range for {} [{}, {}]", v,
                              params[c.param].dtype.str(), c.lo, c.hi));
        }
        bound.int_values[c.param] = v;
        if (c.slot >= 0) symbols[c.slot] = v;
        break;
      }
      case Op::kFloatRange: {
        const double v = arg.kind() == Arg::Kind::kInt ? static_cast<double>(arg.int_value())
                                                       : arg.float_value();
        if (std::isfinite(v) && std::fabs(v) > c.max_abs) {
          fail(c, fmt::format("value {} is out of range for {} (largest finite magnitude {})", v,
                              params[c.param].dtype.str(), c.max_abs));
        }
        bound.float_values[c.param] = v;
        break;
      }
      case Op::kPointerValue:
        bound.data[c.param] = arg.pointer_value();
        break;
      case Op::kCheckScalar:
        if (bound.int_values[c.param] != symbols[c.slot]) {
          fail(c, fmt::format("value {} conflicts with {} = {} bound from {}",
                              bound.int_values[c.param], symbols_[c.slot], symbols[c.slot],
                              plan.symbol_origin[c.slot]));
        }
        break;
      case Op::kDerivedDim: {
        const int64_t expected = plan.exprs[c.slot].eval(symbols);
        if (t->shape[c.dim] != expected) {
          fail(c, fmt::format("dim {}: expected {} = {}, got {}", c.dim, plan.exprs[c.slot].text(),
                              expected, t->shape[c.dim]));
        }
        break;
      }
      case Op::kDerivedStride: {
        const int64_t expected = plan.exprs[c.slot].eval(symbols);
        if (t->shape[c.dim] != 1 && stride_of(*t, c.dim) != expected) {
          fail(c, fmt::format("stride {}: expected {} = {}, got {}", c.dim,
                              plan.exprs[c.slot].text(), expected, stride_of(*t, c.dim)));
        }
        break;
      }
    }
  };
  // The checks run in their planned order, a run of same-op checks at a time: one dispatch per
  // run instead of one indirect jump per check (half of bind()'s time with 19 arguments).
  for (const Plan::Run& run : plan.runs) {
    const Plan::Check* const first = plan.checks.data() + run.begin;
    const Plan::Check* const last = plan.checks.data() + run.end;
    switch (run.op) {
#define TILEJIT_BINDER_RUN(name)                                                \
  case Op::name:                                                                \
    for (const Plan::Check* c = first; c != last; ++c) run_check(Op::name, *c); \
    break;
      TILEJIT_BINDER_RUN(kTensorKind)
      TILEJIT_BINDER_RUN(kIntKind)
      TILEJIT_BINDER_RUN(kTensor)
      TILEJIT_BINDER_RUN(kConstDim)
      TILEJIT_BINDER_RUN(kBindDim)
      TILEJIT_BINDER_RUN(kCheckDim)
      TILEJIT_BINDER_RUN(kCompact)
      TILEJIT_BINDER_RUN(kIntRange)
#undef TILEJIT_BINDER_RUN
      default:  // the rarer ops: the same checks through the general switch
        for (const Plan::Check* c = first; c != last; ++c) run_check(run.op, *c);
        break;
    }
  }

  outputs.clear();
  if (plan.outputs.empty()) return;
  outputs.reserve(plan.outputs.size());
  for (const Plan::Output& out : plan.outputs) {
    const KernelParam& p = params[out.param];
    int64_t shape[kMaxTensorDims];
    const int ndim = static_cast<int>(out.shape.size());
    for (int d = 0; d < ndim; ++d) {
      shape[d] = out.shape[d].eval(symbols);
      if (shape[d] < 0) {
        throw ArgumentError(
            fmt::format("{}: output '{}' dim {}: {} evaluates to {}, which is negative",
                        plan.program_name, p.name, d, out.shape[d].text(), shape[d]));
      }
    }
    Tensor tensor =
        allocator.allocate(out.dtype, std::span<const int64_t>(shape, ndim), bound.device);
    // A framework allocator that returns the wrong thing would make the kernel write out of
    // bounds; check what came back as strictly as an input.
    const DLTensor* t = tensor ? &tensor.as_dlpack() : nullptr;
    bool fits = t != nullptr && t->ndim == ndim && first_non_compact_dim(*t) < 0 &&
                pack(t->dtype) == pack(out.dtype.to_dlpack()) &&
                (t->data != nullptr || is_empty(*t));
    for (int d = 0; fits && d < ndim; ++d) fits = t->shape[d] == shape[d];
    if (!fits) {
      throw Error(
          fmt::format("{}: the output allocator returned a tensor that does not match "
                      "output '{}' ({}, shape {}, compact)",
                      plan.program_name, p.name, out.dtype.str(), list_text(shape, ndim)));
    }
    bound.tensors[out.param] = t;
    bound.data[out.param] = static_cast<char*>(t->data) + t->byte_offset;
    outputs.push_back(std::move(tensor));
  }
}

}  // namespace tilejit::detail

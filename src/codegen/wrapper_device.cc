// The CUDA and HIP host wrappers: C++ for nvcc or hipcc. The HIP wrapper includes the device
// source and is compiled in one translation unit with it; the CUDA wrapper holds no device
// code: it loads the cubin that nvcc built from the device source alone, embedded at its end
// (embed_cuda_device_image), and launches by kernel handle through the driver's
// cuLaunchKernelEx. HIP's runtime API mirrors CUDA's, so one generator writes both; the HIP
// text is the CUDA text with runtime names mapped (to_hip below), and its launches go through
// hipLaunchKernel.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "codegen/wrapper_common.h"
#include "codegen/wrapper_device_helpers.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// Clusters larger than this need cudaFuncAttributeNonPortableClusterSizeAllowed.
constexpr uint32_t kPortableClusterSize = 8;

std::string_view tma_data_type(const DataType& dtype, const TmaDescriptor& descriptor) {
  if (dtype.lanes == 1) {
    switch (dtype.code) {
      case TypeCode::kInt:
      case TypeCode::kUInt:
        // TMA moves bits: signed 8/16-bit and unsigned types share the unsigned encodings.
        switch (dtype.bits) {
          case 8:
            return "CU_TENSOR_MAP_DATA_TYPE_UINT8";
          case 16:
            return "CU_TENSOR_MAP_DATA_TYPE_UINT16";
          case 32:
            return dtype.is_int() ? "CU_TENSOR_MAP_DATA_TYPE_INT32"
                                  : "CU_TENSOR_MAP_DATA_TYPE_UINT32";
          case 64:
            return dtype.is_int() ? "CU_TENSOR_MAP_DATA_TYPE_INT64"
                                  : "CU_TENSOR_MAP_DATA_TYPE_UINT64";
          default:
            break;
        }
        break;
      case TypeCode::kFloat:
        if (dtype.bits == 16) return "CU_TENSOR_MAP_DATA_TYPE_FLOAT16";
        if (dtype.bits == 32) return "CU_TENSOR_MAP_DATA_TYPE_FLOAT32";
        if (dtype.bits == 64) return "CU_TENSOR_MAP_DATA_TYPE_FLOAT64";
        break;
      case TypeCode::kBFloat:
        if (dtype.bits == 16) return "CU_TENSOR_MAP_DATA_TYPE_BFLOAT16";
        break;
      case TypeCode::kFloat8E4M3:
      case TypeCode::kFloat8E5M2:
      case TypeCode::kBool:
        return "CU_TENSOR_MAP_DATA_TYPE_UINT8";
      case TypeCode::kFloat4E2M1:
      case TypeCode::kHandle:
      case TypeCode::kComplex:
      case TypeCode::kStruct:
        break;
    }
  }
  throw ProgramError(fmt::format(
      "TMA descriptor '{}' describes '{}' of dtype {}: expected integers, float16, bfloat16, "
      "float32, float64, float8 or bool",
      descriptor.name, descriptor.buffer, dtype.str()));
}

std::string_view interleave_name(std::string_view text) {
  if (text == "16b") return "CU_TENSOR_MAP_INTERLEAVE_16B";
  if (text == "32b") return "CU_TENSOR_MAP_INTERLEAVE_32B";
  return "CU_TENSOR_MAP_INTERLEAVE_NONE";
}

std::string_view swizzle_name(std::string_view text) {
  if (text == "32b") return "CU_TENSOR_MAP_SWIZZLE_32B";
  if (text == "64b") return "CU_TENSOR_MAP_SWIZZLE_64B";
  if (text == "128b") return "CU_TENSOR_MAP_SWIZZLE_128B";
  if (text == "128b_atom_32b") return "CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B";
  if (text == "128b_atom_32b_flip_8b") return "CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B_FLIP_8B";
  if (text == "128b_atom_64b") return "CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B";
  return "CU_TENSOR_MAP_SWIZZLE_NONE";
}

std::string_view l2_promotion_name(std::string_view text) {
  if (text == "64b") return "CU_TENSOR_MAP_L2_PROMOTION_L2_64B";
  if (text == "128b") return "CU_TENSOR_MAP_L2_PROMOTION_L2_128B";
  if (text == "256b") return "CU_TENSOR_MAP_L2_PROMOTION_L2_256B";
  return "CU_TENSOR_MAP_L2_PROMOTION_NONE";
}

std::string_view oob_fill_name(std::string_view text) {
  if (text == "nan_request_zero_fma") return "CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA";
  return "CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE";
}

std::string_view access_property_name(std::string_view text) {
  if (text == "persisting") return "cudaAccessPropertyPersisting";
  if (text == "streaming") return "cudaAccessPropertyStreaming";
  return "cudaAccessPropertyNormal";
}

bool is_plain_operand(std::string_view text) {
  return is_c_identifier(text) || text.find_first_not_of("0123456789") == std::string_view::npos;
}

// `value` converted for an array of the driver's unsigned types.
std::string as_unsigned(std::string_view type, const std::string& value) {
  if (value.find_first_not_of("0123456789") == std::string::npos) return value;
  return is_plain_operand(value) ? fmt::format("({}){}", type, value)
                                 : fmt::format("({})({})", type, value);
}

// A C float literal that always has a decimal point or exponent ("1.0f", "0.6f").
std::string float_literal(double value) {
  std::string text = fmt::format("{}", value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text + "f";
}

std::string uint_list(const std::vector<uint32_t>& values) {
  std::vector<std::string> parts;
  for (uint32_t v : values) parts.push_back(std::to_string(v));
  return join(parts, ", ");
}

std::string int_list(const std::vector<int32_t>& values) {
  std::vector<std::string> parts;
  for (int32_t v : values) parts.push_back(std::to_string(v));
  return join(parts, ", ");
}

// What the generated file needs beyond the basics; helpers are emitted only when used, so
// that a simple Program gets a short wrapper.
struct Needs {
  bool encode_tiled = false;
  bool encode_im2col = false;
  bool checked_dims = false;  // a grid or block that is not a constant
  bool checked_smem = false;  // a dynamic shared memory size that is not a constant
  bool l2_window = false;
  bool optin_smem = false;  // a kernel whose symbolic size may exceed 48 KB
};

// The CUDA runtime names the generated code uses that HIP spells differently; whole
// identifiers only, so no user name is touched (a kernel cannot be named like a runtime
// function anyway).
constexpr std::pair<std::string_view, std::string_view> kHipNames[] = {
    {"cudaError_t", "hipError_t"},
    {"cudaSuccess", "hipSuccess"},
    {"cudaGetLastError", "hipGetLastError"},
    {"cudaGetErrorName", "hipGetErrorName"},
    {"cudaGetErrorString", "hipGetErrorString"},
    {"cudaFuncSetAttribute", "hipFuncSetAttribute"},
    {"cudaFuncAttributeMaxDynamicSharedMemorySize", "hipFuncAttributeMaxDynamicSharedMemorySize"},
    {"cudaGetDevice", "hipGetDevice"},
    {"cudaDeviceGetAttribute", "hipDeviceGetAttribute"},
    // HIP documents its opt-in attribute as CUDA-only; on AMD the per-block maximum is the limit.
    {"cudaDevAttrMaxSharedMemoryPerBlockOptin", "hipDeviceAttributeMaxSharedMemoryPerBlock"},
    {"cudaFuncAttributes", "hipFuncAttributes"},
    {"cudaFuncGetAttributes", "hipFuncGetAttributes"},
    {"cudaStream_t", "hipStream_t"},
};

std::string to_hip(std::string_view text) {
  auto is_word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_word(text[i])) {
      out += text[i++];
      continue;
    }
    size_t end = i;
    while (end < text.size() && is_word(text[end])) ++end;
    std::string_view word = text.substr(i, end - i);
    for (const auto& [cuda, hip] : kHipNames) {
      if (word == cuda) {
        word = hip;
        break;
      }
    }
    out += word;
    i = end;
  }
  return out;
}

// Section `name` of wrapper_device_helpers.cu: the lines after its `//@ NAME` line, up to the
// next section.
std::string_view helper(std::string_view name) {
  const std::string_view text = wrapper_device_helpers_source();
  const std::string marker = fmt::format("\n//@ {}\n", name);
  const size_t start = text.find(marker);
  if (start == std::string_view::npos) {
    throw Error(fmt::format("wrapper_device_helpers.cu has no section '{}'", name));
  }
  std::string_view body = text.substr(start + marker.size());
  body = body.substr(0, body.find("\n//@ "));
  while (body.ends_with('\n')) body.remove_suffix(1);
  return body;
}

class DeviceWrapperGenerator {
 public:
  DeviceWrapperGenerator(const Program& program, std::string_view device_source_file, HostApi api,
                         std::map<std::string, std::string> kernel_symbols = {})
      : context_(program),
        program_(program),
        device_source_file_(device_source_file),
        hip_(api == HostApi::kHip),
        kernel_symbols_(std::move(kernel_symbols)) {
    const Language expected = hip_ ? Language::kHip : Language::kCuda;
    if (program.language != expected) {
      throw ProgramError(fmt::format("program '{}' has language '{}': the {} wrapper needs '{}'",
                                     program.name, to_string(program.language),
                                     hip_ ? "HIP" : "CUDA", to_string(expected)));
    }
    find_needs();
    if (hip_) reject_cuda_only_features();
    for (const Launch& launch : program_.launches) {
      if (std::find(kernels_.begin(), kernels_.end(), launch.kernel) == kernels_.end()) {
        kernels_.push_back(launch.kernel);
      }
    }
  }

  std::string generate() {
    write_banner(out_, program_, hip_ ? "HIP host wrapper" : "CUDA host wrapper");
    if (hip_) {
      out_.line("#include <hip/hip_runtime.h>");
    } else {
      out_.line("#include <cuda.h>");
      out_.line("#include <cudaTypedefs.h>");
      out_.line("#include <cuda_runtime.h>");
    }
    out_.line("#include <stdarg.h>");
    out_.line("#include <stdint.h>");
    out_.line("#include <stdio.h>");
    out_.line();
    if (hip_) {
      out_.line("// The device code; this file is compiled as one translation unit with it.");
      out_.line(fmt::format("#include \"{}\"", device_source_file_));
      out_.line();
    }
    write_struct_types(out_, program_);
    write_helpers();
    write_get_last_error();
    write_init();
    if (!hip_) write_get_global();
    write_call();
    write_call_packed();
    return hip_ ? to_hip(out_.str()) : out_.str();
  }

 private:
  // How the generated code names `kernel` where the runtime takes a function: HIP has the
  // kernel in its translation unit; CUDA has the handle init() looked up in the device code.
  std::string kernel_ref(const std::string& kernel) const {
    if (hip_) return fmt::format("(const void*){}", kernel);
    return fmt::format("(const void*){}", kernel_handle(kernel));
  }

  // The CUDA kernel handle of `kernel`, as the runtime takes it.
  std::string kernel_handle(const std::string& kernel) const {
    return fmt::format("tj_kernels[{}]", kernel_index(kernel));
  }

  // Where `kernel` is in tj_kernels, as tj_launch takes it.
  std::string kernel_index(const std::string& kernel) const {
    const auto found = std::find(kernels_.begin(), kernels_.end(), kernel);
    return std::to_string(found - kernels_.begin());
  }

  void reject_cuda_only_features() const {
    auto reject = [&](const Launch& launch, std::string_view feature) {
      throw ProgramError(fmt::format(
          "kernel '{}' of program '{}' uses {}, which HIP does not provide: expected a launch "
          "without it",
          launch.kernel, program_.name, feature));
    };
    for (const Launch& launch : program_.launches) {
      if (launch.uses_cluster()) reject(launch, "thread block clusters");
      if (launch.pdl) reject(launch, "programmatic dependent launch");
      if (!launch.l2_windows.empty()) reject(launch, "L2 access-policy windows");
    }
    if (needs_.encode_tiled || needs_.encode_im2col) {
      throw ProgramError(fmt::format(
          "program '{}' uses TMA descriptors, which HIP does not provide", program_.name));
    }
  }

  void find_needs() {
    for (size_t i = 0; i < program_.launches.size(); ++i) {
      const Launch& launch = program_.launches[i];
      for (const Expr& e : launch.grid) needs_.checked_dims |= !e.is_const();
      for (const Expr& e : launch.block) needs_.checked_dims |= !e.is_const();
      if (!launch.dynamic_smem.is_const()) {
        needs_.checked_smem = true;
        needs_.optin_smem = true;
      }
      if (launch.l2_windows.size() > 1) {
        throw ProgramError(fmt::format(
            "launch {} (kernel '{}') declares {} L2 windows: CUDA applies one access-policy "
            "window per launch",
            i, launch.kernel, launch.l2_windows.size()));
      }
      needs_.l2_window |= !launch.l2_windows.empty();
      for (const KernelArg& arg : context_.kernel_args(i)) {
        if (arg.source != KernelArg::Source::kTmaDescriptor) continue;
        const TmaDescriptor& d = program_.tma_descriptors[static_cast<size_t>(arg.index)];
        if (d.kind == TmaDescriptor::Kind::kTiled) needs_.encode_tiled = true;
        if (d.kind == TmaDescriptor::Kind::kIm2col) needs_.encode_im2col = true;
      }
    }
  }

  void write_helpers() {
    out_.line("namespace {");
    out_.line();
    out_.lines(helper("fail"));
    out_.line();
    if (hip_) {
      out_.lines(helper("check_launch"));
    } else {
      out_.lines(helper("driver_function"));
      out_.line();
      write_device_code_loader();
      out_.line();
      out_.lines(helper("launch"));
    }
    const std::pair<bool, std::string_view> optional_helpers[] = {
        {needs_.checked_dims, "dims"},
        {needs_.checked_smem, "smem_bytes"},
        {needs_.optin_smem, "allow_max_dynamic_smem"},
        {needs_.encode_tiled, "encode_tiled"},
        {needs_.encode_im2col, "encode_im2col"},
        {needs_.l2_window, "l2_window"},
    };
    for (const auto& [needed, name] : optional_helpers) {
      if (!needed) continue;
      out_.line();
      out_.lines(helper(name));
    }
    out_.line();
    out_.line("}  // namespace");
    out_.line();
  }

  // The CUDA wrapper's kernels come from the embedded cubin, loaded as a CUDA library once
  // per process (a thread-safe static): a library and its kernel handles are not tied to a
  // device or context, so every device's init() shares them. The runtime accepts a
  // cudaKernel_t wherever it takes a kernel function (init()'s attributes), the driver where
  // it takes a CUkernel (tj_launch, which launches its function in the current context where it
  // can). The library stays loaded until the process ends.
  void write_device_code_loader() {
    std::vector<std::string> names;
    for (const std::string& kernel : kernels_) {
      const auto symbol = kernel_symbols_.find(kernel);
      names.push_back(
          fmt::format("\"{}\"", symbol == kernel_symbols_.end() ? kernel : symbol->second));
    }
    out_.line(fmt::format("// The cubin nvcc built from {} alone, defined at the end of this file.",
                          device_source_file_));
    out_.line("extern const unsigned char tj_device_image[];");
    out_.line();
    out_.line("// The kernels the launches use, by the names the cubin gives them.");
    out_.wrapped(fmt::format("const char* const tj_kernel_names[{}] = {{", kernels_.size()), names,
                 "};");
    out_.line(fmt::format("cudaKernel_t tj_kernels[{}];", kernels_.size()));
    out_.line("// The loaded device code, whose module globals get_global() looks up.");
    out_.line("cudaLibrary_t tj_library = nullptr;");
    out_.line();
    out_.lines(helper("load_device_code"));
  }

  void write_get_last_error() {
    out_.line("extern \"C\" const char* get_last_error(void) { return tj_error; }");
    out_.line();
  }

  // One cudaFuncSetAttribute in init(), failing with `what` ("allow ...") in the message.
  void write_set_attribute(const std::string& kernel, std::string_view attribute,
                           const std::string& value, const std::string& what) {
    out_.wrapped("if (cudaFuncSetAttribute(", {kernel_ref(kernel), std::string(attribute), value},
                 ") != cudaSuccess) {");
    out_.indent();
    out_.wrapped("return tj_fail(",
                 {fmt::format("\"init: cannot {} for kernel '{}': %s\"", what, kernel),
                  "cudaGetErrorString(cudaGetLastError())"},
                 ");");
    out_.close("}");
  }

  // Opts `kernel` in to the dynamic shared memory its launches ask for. The default limit is
  // 48 KB minus the kernel's static shared memory, which only the compiled kernel knows, so
  // any constant size above 0 sets the attribute (as TileLang's wrapper does): that is valid
  // exactly when static + dynamic fit the device's opt-in limit, which is when the launch
  // can run. A kernel launched with several constant sizes gets the largest; one with a
  // symbolic size gets all the device allows.
  void write_allow_dynamic_smem(const std::string& kernel) {
    int64_t largest = 0;
    for (const Launch& launch : program_.launches) {
      if (launch.kernel != kernel) continue;
      if (!launch.dynamic_smem.is_const()) {
        out_.line(fmt::format("if (tj_allow_max_dynamic_smem({}, \"{}\") != 0) return -1;",
                              kernel_ref(kernel), kernel));
        return;
      }
      largest = std::max(largest, launch.dynamic_smem.const_value());
    }
    if (largest == 0) return;
    if (largest > std::numeric_limits<int32_t>::max()) {
      throw ProgramError(fmt::format(
          "dynamic_smem of kernel '{}' is {} bytes: expected at most 2^31 - 1", kernel, largest));
    }
    write_set_attribute(kernel, "cudaFuncAttributeMaxDynamicSharedMemorySize",
                        std::to_string(largest),
                        fmt::format("allow {} bytes of dynamic shared memory", largest));
  }

  // CuPy's RawModule.get_global for the nvcc backend: only this library's runtime knows the
  // loaded device code, so the lookup is an entry point of its own. A failed lookup leaves its
  // error as the runtime's last error, which the next launch's check would report: cleared.
  void write_get_global() {
    out_.lines(helper("get_global"));
    out_.line();
  }

  void write_init() {
    out_.line(
        "// Once per device, with that device current: opts kernels in to the dynamic shared");
    out_.line("// memory and cluster sizes they launch with, and resolves driver entry points.");
    if (!hip_) out_.line("// The first call also loads the device code, for every device.");
    out_.open("extern \"C\" int init(void) {");
    out_.line("tj_error[0] = '\\0';");
    if (!hip_) {
      out_.line("if (tj_load_device_code() != 0) return -1;");
      out_.open("if (tj_driver().launch == nullptr) {");
      out_.line(
          "return tj_fail(\"init: the CUDA driver does not provide cuLaunchKernelEx (CUDA 12.0 "
          "or newer)\");");
      out_.close("}");
    }
    std::set<std::string> done;
    for (const Launch& launch : program_.launches) {
      const std::string& kernel = launch.kernel;
      if (done.insert("smem:" + kernel).second) {
        write_allow_dynamic_smem(kernel);
      }
      const uint32_t cluster_size = launch.cluster[0] * launch.cluster[1] * launch.cluster[2];
      if (cluster_size > kPortableClusterSize && done.insert("cluster:" + kernel).second) {
        write_set_attribute(kernel, "cudaFuncAttributeNonPortableClusterSizeAllowed", "1",
                            fmt::format("allow clusters of {} blocks", cluster_size));
      }
    }
    if (needs_.encode_tiled) {
      out_.open("if (tj_encode_tiled() == nullptr) {");
      out_.line(
          "return tj_fail(\"init: the CUDA driver does not provide cuTensorMapEncodeTiled (CUDA "
          "12.0 or newer)\");");
      out_.close("}");
    }
    if (needs_.encode_im2col) {
      out_.open("if (tj_encode_im2col() == nullptr) {");
      out_.line(
          "return tj_fail(\"init: the CUDA driver does not provide cuTensorMapEncodeIm2col (CUDA "
          "12.0 or newer)\");");
      out_.close("}");
    }
    out_.line("return 0;");
    out_.close("}");
    out_.line();
  }

  // Which launches take each descriptor, so that each is encoded once per call.
  std::vector<std::vector<size_t>> descriptor_users() const {
    std::vector<std::vector<size_t>> users(program_.tma_descriptors.size());
    for (size_t i = 0; i < program_.launches.size(); ++i) {
      for (const KernelArg& arg : context_.kernel_args(i)) {
        if (arg.source != KernelArg::Source::kTmaDescriptor) continue;
        auto& list = users[static_cast<size_t>(arg.index)];
        if (list.empty() || list.back() != i) list.push_back(i);
      }
    }
    return users;
  }

  // The global dims and byte strides of a descriptor, in the driver's order (innermost
  // first), from the descriptor or else from its buffer's shape and strides.
  std::pair<std::vector<std::string>, std::vector<std::string>> tma_extent(
      const TmaDescriptor& d) const {
    const KernelParam& buffer = *program_.find_param(d.buffer);
    const size_t rank = d.rank;
    std::vector<std::string> dims;
    std::vector<std::string> strides;
    if (!d.global_dims.empty()) {
      for (const Expr& e : d.global_dims) dims.push_back(context_.expr(e));
    } else {
      for (size_t j = 0; j < rank; ++j) dims.push_back(context_.expr(buffer.shape[rank - 1 - j]));
    }
    if (!d.global_strides.empty()) {
      for (const Expr& e : d.global_strides) strides.push_back(context_.expr(e));
    } else if (buffer.shape.size() != rank) {
      throw ProgramError(fmt::format(
          "TMA descriptor '{}' has rank {} but its buffer '{}' has {} dimensions: expected "
          "explicit global_strides",
          d.name, rank, d.buffer, buffer.shape.size()));
    } else {
      const int64_t element_bytes = buffer.dtype.storage_bytes(1);
      // Driver dimension j is buffer dimension rank - 1 - j; a compact buffer's stride there
      // is the product of the sizes inside it.
      Expr compact(1);
      for (size_t j = 1; j < rank; ++j) {
        const size_t dim = rank - 1 - j;
        Expr elements;
        if (buffer.strides) {
          elements = (*buffer.strides)[dim];
        } else {
          compact = j == 1 ? buffer.shape[rank - 1] : compact * buffer.shape[rank - j];
          elements = compact;
        }
        strides.push_back(context_.expr(elements * Expr(element_bytes)));
      }
    }
    for (std::string& s : dims) s = as_unsigned("cuuint64_t", s);
    for (std::string& s : strides) s = as_unsigned("cuuint64_t", s);
    return {dims, strides};
  }

  void write_descriptor(const TmaDescriptor& d, const std::vector<size_t>& users) {
    const KernelParam& buffer = *program_.find_param(d.buffer);
    const bool tiled = d.kind == TmaDescriptor::Kind::kTiled;
    std::vector<std::string> user_names;
    for (size_t i : users) {
      user_names.push_back(fmt::format("{} ({})", i, program_.launches[i].kernel));
    }
    out_.line(fmt::format("// TMA descriptor '{}' ({}, over '{}'), for launch{} {}.", d.name,
                          tiled ? "tiled" : "im2col", d.buffer, users.size() > 1 ? "es" : "",
                          join(user_names, " and ")));
    out_.line(fmt::format("CUtensorMap {};", d.name));
    out_.open("{");
    const auto [dims, strides] = tma_extent(d);
    const size_t rank = d.rank;
    std::vector<uint32_t> element_strides = d.element_strides;
    if (element_strides.empty()) element_strides.assign(rank, 1);
    out_.wrapped(fmt::format("const cuuint64_t tj_global_dims[{}] = {{", rank), dims, "};");
    if (rank > 1) {
      out_.line("// Byte strides of dimensions 1 and up (dimension 0 is contiguous).");
      out_.wrapped(fmt::format("const cuuint64_t tj_global_strides[{}] = {{", rank - 1), strides,
                   "};");
    }
    if (tiled) {
      out_.line(
          fmt::format("const cuuint32_t tj_box_dims[{}] = {{{}}};", rank, uint_list(d.box_dims)));
    } else {
      out_.line(fmt::format("const int tj_lower_corner[{}] = {{{}}};", rank - 2,
                            int_list(d.lower_corner)));
      out_.line(fmt::format("const int tj_upper_corner[{}] = {{{}}};", rank - 2,
                            int_list(d.upper_corner)));
    }
    out_.line(fmt::format("const cuuint32_t tj_element_strides[{}] = {{{}}};", rank,
                          uint_list(element_strides)));
    const std::string strides_arg = rank > 1 ? "tj_global_strides" : "nullptr";
    if (tiled) {
      out_.line("const PFN_cuTensorMapEncodeTiled_v12000 tj_encode = tj_encode_tiled();");
      out_.open("if (tj_encode == nullptr) {");
      out_.line(
          "return tj_fail(\"call: the CUDA driver does not provide cuTensorMapEncodeTiled\");");
      out_.close("}");
      out_.wrapped(
          "const CUresult tj_result = tj_encode(",
          {"&" + d.name, std::string(tma_data_type(buffer.dtype, d)), std::to_string(rank),
           d.buffer, "tj_global_dims", strides_arg, "tj_box_dims", "tj_element_strides",
           std::string(interleave_name(d.interleave)), std::string(swizzle_name(d.swizzle)),
           std::string(l2_promotion_name(d.l2_promotion)), std::string(oob_fill_name(d.oob_fill))},
          ");");
    } else {
      out_.line("const PFN_cuTensorMapEncodeIm2col_v12000 tj_encode = tj_encode_im2col();");
      out_.open("if (tj_encode == nullptr) {");
      out_.line(
          "return tj_fail(\"call: the CUDA driver does not provide cuTensorMapEncodeIm2col\");");
      out_.close("}");
      out_.wrapped(
          "const CUresult tj_result = tj_encode(",
          {"&" + d.name, std::string(tma_data_type(buffer.dtype, d)), std::to_string(rank),
           d.buffer, "tj_global_dims", strides_arg, "tj_lower_corner", "tj_upper_corner",
           std::to_string(d.channels_per_pixel), std::to_string(d.pixels_per_column),
           "tj_element_strides", std::string(interleave_name(d.interleave)),
           std::string(swizzle_name(d.swizzle)), std::string(l2_promotion_name(d.l2_promotion)),
           std::string(oob_fill_name(d.oob_fill))},
          ");");
    }
    out_.open("if (tj_result != CUDA_SUCCESS) {");
    out_.line(fmt::format(
        "return tj_fail(\"call: cannot encode the TMA descriptor '{}' over '{}': CUresult %d\",",
        d.name, d.buffer));
    out_.line("               (int)tj_result);");
    out_.close("}");
    out_.close("}");
  }

  // A grid or block size as the launch takes it: a dim3 (HIP), or its three axes (CUDA's
  // CUlaunchConfig).
  struct Dims {
    std::string dim3;
    std::array<std::string, 3> axes;
  };

  // The constants themselves; otherwise a checked dim3 local named `variable`.
  Dims dims(const Launch& launch, const std::array<Expr, 3>& sizes, std::string_view what,
            std::string_view variable) {
    bool constant = true;
    for (const Expr& e : sizes) constant &= e.is_const();
    Dims result;
    if (constant) {
      for (size_t a = 0; a < 3; ++a) {
        const int64_t v = sizes[a].const_value();
        if (v < 1 || v > std::numeric_limits<uint32_t>::max()) {
          throw ProgramError(fmt::format("{}.{} of kernel '{}' is {}: expected 1..4294967295", what,
                                         "xyz"[a], launch.kernel, v));
        }
        result.axes[a] = std::to_string(v);
      }
      result.dim3 = fmt::format("dim3({}, {}, {})", result.axes[0], result.axes[1], result.axes[2]);
      return result;
    }
    out_.line(fmt::format("dim3 {};", variable));
    out_.wrapped(
        "if (tj_dims(",
        {fmt::format("\"{}\"", launch.kernel), fmt::format("\"{}\"", what), context_.expr(sizes[0]),
         context_.expr(sizes[1]), context_.expr(sizes[2]), fmt::format("&{}", variable)},
        ") != 0) return -1;");
    result.dim3 = std::string(variable);
    for (size_t a = 0; a < 3; ++a) result.axes[a] = fmt::format("{}.{}", variable, "xyz"[a]);
    return result;
  }

  void write_launch(size_t index) {
    const Launch& launch = program_.launches[index];
    out_.line(fmt::format("// Launch {}: {}", index, launch.kernel));
    bool symbolic_grid = false;
    for (const Expr& e : launch.grid) symbolic_grid |= !e.is_const();
    // A grid that may be empty (n == 0) skips its launch with `break`, as the nvrtc backend
    // does: there is nothing to compute, and CUDA would reject the empty configuration.
    out_.open(symbolic_grid ? "do {" : "{");
    const Dims grid = dims(launch, launch.grid, "grid", "tj_grid");
    if (symbolic_grid) {
      out_.line("if (tj_grid.x == 0 || tj_grid.y == 0 || tj_grid.z == 0) break;  // nothing to do");
    }
    const Dims block = dims(launch, launch.block, "block", "tj_block");
    if (hip_) {
      write_hip_launch(index, grid, block);
    } else {
      write_cuda_launch(index, grid, block);
    }
    out_.close(symbolic_grid ? "} while (false);" : "}");
  }

  void write_cuda_launch(size_t index, const Dims& grid, const Dims& block) {
    const Launch& launch = program_.launches[index];
    out_.line("CUlaunchConfig tj_config = {};");
    for (size_t a = 0; a < 3; ++a) {
      out_.line(fmt::format("tj_config.gridDim{} = {};", "XYZ"[a], grid.axes[a]));
    }
    for (size_t a = 0; a < 3; ++a) {
      out_.line(fmt::format("tj_config.blockDim{} = {};", "XYZ"[a], block.axes[a]));
    }
    if (launch.dynamic_smem.is_const()) {
      // Validation and init() (at most 2^31 - 1 bytes) have bounded the constant already.
      out_.line(fmt::format("tj_config.sharedMemBytes = {};", launch.dynamic_smem.const_value()));
    } else {
      out_.wrapped("if (tj_smem_bytes(",
                   {fmt::format("\"{}\"", launch.kernel), context_.expr(launch.dynamic_smem),
                    "&tj_config.sharedMemBytes"},
                   ") != 0) return -1;");
    }
    out_.line("tj_config.hStream = stream;");

    int attribute_count = 0;
    if (launch.uses_cluster()) ++attribute_count;
    if (launch.cooperative) ++attribute_count;
    if (launch.pdl) ++attribute_count;
    int next = 0;
    if (attribute_count > 0) {
      out_.line(fmt::format("CUlaunchAttribute tj_attributes[{}];", attribute_count));
    }
    if (launch.uses_cluster()) {
      out_.line(fmt::format("tj_attributes[{}].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;", next));
      for (size_t a = 0; a < 3; ++a) {
        out_.line(fmt::format("tj_attributes[{}].value.clusterDim.{} = {};", next, "xyz"[a],
                              launch.cluster[a]));
      }
      ++next;
    }
    if (launch.cooperative) {
      out_.line(fmt::format("tj_attributes[{}].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;", next));
      out_.line(fmt::format("tj_attributes[{}].value.cooperative = 1;", next));
      ++next;
    }
    if (launch.pdl) {
      out_.line("// Programmatic dependent launch: may start before the previous kernel ends.");
      out_.line(fmt::format(
          "tj_attributes[{}].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;", next));
      out_.line(
          fmt::format("tj_attributes[{}].value.programmaticStreamSerializationAllowed = 1;", next));
      ++next;
    }
    if (attribute_count > 0) {
      out_.line("tj_config.attrs = tj_attributes;");
      out_.line(fmt::format("tj_config.numAttrs = {};", attribute_count));
    }

    // The argument array, as the driver reads it: every argument travels with exactly the
    // size the kernel declares.
    std::vector<std::string> addresses;
    for (const KernelArg& arg : context_.kernel_args(index)) {
      addresses.push_back(kernel_argument_address(context_, launch, arg, out_));
    }
    std::string args_name = "tj_args";
    if (addresses.empty()) {
      args_name = "nullptr";
    } else {
      out_.wrapped("void* tj_args[] = {", addresses, "};");
    }
    const std::vector<std::string> launch_args = {
        fmt::format("\"{}\"", launch.kernel), "&tj_config", kernel_index(launch.kernel), args_name};
    if (launch.l2_windows.empty()) {
      out_.wrapped("if (tj_launch(", launch_args, ") != 0) return -1;");
      return;
    }
    const L2Window& window = launch.l2_windows.front();
    out_.line(fmt::format("// L2 persistence window over '{}' for this launch.", window.param));
    out_.line("tj_l2_saved tj_l2;");
    out_.wrapped("if (tj_l2_begin(",
                 {fmt::format("\"{}\"", launch.kernel), "stream", window.param,
                  context_.expr(window.num_bytes), float_literal(window.hit_ratio),
                  std::string(access_property_name(window.hit_property)),
                  std::string(access_property_name(window.miss_property)), "&tj_l2"},
                 ") != 0) {");
    out_.line("  return -1;");
    out_.line("}");
    out_.wrapped("const int tj_launched = tj_launch(", launch_args, ");");
    out_.line(fmt::format("if (tj_l2_end(\"{}\", stream, &tj_l2, tj_launched) != 0) return -1;",
                          launch.kernel));
  }

  // hipLaunchKernel takes the same argument array as cuLaunchKernelEx: each value with
  // exactly the size the kernel declares. Cooperative launches have their own entry point.
  void write_hip_launch(size_t index, const Dims& grid, const Dims& block) {
    const Launch& launch = program_.launches[index];
    std::string smem = "0";
    if (launch.dynamic_smem.is_const()) {
      smem = std::to_string(launch.dynamic_smem.const_value());
    } else {
      out_.line("unsigned int tj_smem = 0;");
      out_.line(fmt::format("if (tj_smem_bytes(\"{}\", {}, &tj_smem) != 0) return -1;",
                            launch.kernel, context_.expr(launch.dynamic_smem)));
      smem = "tj_smem";
    }
    std::vector<std::string> addresses;
    for (const KernelArg& arg : context_.kernel_args(index)) {
      addresses.push_back(kernel_argument_address(context_, launch, arg, out_));
    }
    std::string args_name = "nullptr";
    if (!addresses.empty()) {
      out_.wrapped("void* tj_args[] = {", addresses, "};");
      args_name = "tj_args";
    }
    const std::string_view entry =
        launch.cooperative ? "hipLaunchCooperativeKernel" : "hipLaunchKernel";
    out_.wrapped(fmt::format("const hipError_t tj_launched = {}(", entry),
                 {kernel_ref(launch.kernel), grid.dim3, block.dim3, args_name, smem, "stream"},
                 ");");
    out_.line(
        fmt::format("if (tj_check_launch(\"{}\", tj_launched) != 0) return -1;", launch.kernel));
  }

  void write_call() {
    std::vector<std::string> params = context_.parameter_declarations();
    params.push_back("cudaStream_t stream");  // hipStream_t for HIP, see to_hip
    out_.line("// Enqueues the Program's launches on `stream`, in order.");
    out_.wrapped("extern \"C\" int call(", params, ") {");
    out_.indent();
    const auto users = descriptor_users();
    for (size_t i = 0; i < program_.tma_descriptors.size(); ++i) {
      if (users[i].empty()) continue;
      write_descriptor(program_.tma_descriptors[i], users[i]);
    }
    for (size_t i = 0; i < program_.launches.size(); ++i) write_launch(i);
    out_.line("return 0;");
    out_.close("}");
    out_.line();
  }

  void write_call_packed() {
    out_.open("extern \"C\" int call_packed(void* const* args, void* stream) {");
    if (context_.params().empty()) out_.line("(void)args;");
    std::vector<std::string> packed = context_.packed_arguments();
    packed.push_back("(cudaStream_t)stream");
    out_.wrapped("return call(", packed, ");");
    out_.close("}");
  }

  WrapperContext context_;
  const Program& program_;
  std::string device_source_file_;
  bool hip_;
  Needs needs_;
  std::map<std::string, std::string> kernel_symbols_;  // launch kernel -> symbol in the cubin
  std::vector<std::string> kernels_;                   // each launched kernel once, in launch order
  CodeWriter out_;
};

}  // namespace

std::string generate_cuda_wrapper(const Program& program, std::string_view device_source_file,
                                  std::map<std::string, std::string> kernel_symbols) {
  return DeviceWrapperGenerator(program, device_source_file, HostApi::kCuda,
                                std::move(kernel_symbols))
      .generate();
}

std::string generate_hip_wrapper(const Program& program, std::string_view device_source_file) {
  return DeviceWrapperGenerator(program, device_source_file, HostApi::kHip).generate();
}

std::string embed_cuda_device_image(std::string_view image, std::string_view device_source_file) {
  constexpr size_t kBytesPerLine = 16;
  std::string text = fmt::format(
      "\n// The device code: the {}-byte cubin nvcc built from {}.\nnamespace {{\n\n"
      "alignas(64) const unsigned char tj_device_image[] = {{\n",
      image.size(), device_source_file);
  for (size_t i = 0; i < image.size(); i += kBytesPerLine) {
    text += "   ";
    for (size_t j = i; j < std::min(image.size(), i + kBytesPerLine); ++j) {
      text += fmt::format(" 0x{:02x},", static_cast<unsigned char>(image[j]));
    }
    text += '\n';
  }
  text += "};\n\n}  // namespace\n";
  return text;
}

}  // namespace tilejit::detail

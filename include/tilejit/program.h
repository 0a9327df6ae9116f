// tilejit/program.h — what a user hands tilejit: one callable made of kernels.
//
//   tilejit::Program p = tilejit::ProgramBuilder("vector_add")
//       .source(cuda_source)                       // CUDA C++ (or C for the CPU backend)
//       .tensor("A", "float32", {"n"})
//       .tensor("B", "float32", {"n"})
//       .tensor("C", "float32", {"n"})
//       .launch(tilejit::Launch("vector_add_kernel").with_grid({"ceildiv(n,
//       256)"}).with_block({256})) .out_idx({-1}) .build();
//   std::string json = p.to_json();                // the versioned JSON form: tilejit.program/1
//   tilejit::Program q = tilejit::Program::from_json(json);   // q == p
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tilejit/dtype.h"
#include "tilejit/expr.h"

namespace tilejit {

// The largest struct scalar, in bytes.
inline constexpr uint32_t kMaxStructBytes = 4096;

// One field of a struct scalar, in declaration order: a scalar of `dtype` (an integer, bool,
// float32, float64 or handle), or an array of `count` of them (`float v[3]`: count 3).
struct StructField {
  std::string name;
  DataType dtype;
  uint32_t count = 1;

  friend bool operator==(const StructField&, const StructField&) = default;
};

// Where a struct scalar's fields lie, by the C ABI: each field at the next multiple of its
// alignment (its element size), the size rounded up to the largest alignment (tail padding).
struct StructLayout {
  uint32_t size = 0;
  uint32_t alignment = 1;
  std::vector<uint32_t> offsets;  // one per field, in bytes
};

// A parameter of the callable: a tensor (shape given, possibly empty strides = compact
// row-major) or a scalar (no shape). The seed's KernelParam. A struct scalar (dtype "struct")
// is passed by value, described by its fields: `struct Params { int n; float alpha; }`,
// `float2`, `cuComplex`.
struct KernelParam {
  std::string name;
  DataType dtype;
  std::vector<Expr> shape;                   // empty for a scalar
  std::optional<std::vector<Expr>> strides;  // in elements; absent = compact row-major
  bool scalar = false;
  std::vector<StructField> fields;  // a struct scalar's fields; empty otherwise

  static KernelParam tensor(std::string name, DataType dtype, std::vector<Expr> shape,
                            std::optional<std::vector<Expr>> strides = std::nullopt);
  static KernelParam scalar_param(std::string name, DataType dtype);
  static KernelParam struct_param(std::string name, std::vector<StructField> fields);

  bool is_struct() const { return dtype.is_struct(); }
  // The C layout of a struct scalar's fields (validate() checks the fields first).
  StructLayout struct_layout() const;

  bool is_scalar() const { return scalar; }
  bool is_unsigned() const { return dtype.is_unsigned(); }
  bool is_float8() const { return dtype.is_float8(); }
  bool is_float4() const { return dtype.is_float4(); }
  bool is_boolean() const { return dtype.is_boolean(); }

  friend bool operator==(const KernelParam&, const KernelParam&) = default;
};

// An L2 access-policy window set on the stream for the duration of one launch:
// `num_bytes` of the buffer `param` persist in L2 with probability `hit_ratio`.
// num_bytes is clamped at run time to the device's maximum persisting L2 size.
struct L2Window {
  std::string param;
  Expr num_bytes;
  double hit_ratio = 1.0;
  std::string hit_property = "persisting";  // persisting | streaming | normal
  std::string miss_property = "streaming";

  friend bool operator==(const L2Window&, const L2Window&) = default;
};

// One kernel launch. Grid and block are 3 expressions (missing ones are 1).
// `kernel` is the kernel's C++ name: `scale`, `ns::scale`, or a template instantiation
// `my_sqrt<float>` (CUDA; NVRTC looks the mangled name up, nvcc instantiates it).
// `args` lists the kernel's parameters by name (Program params, shape/stride variables, TMA
// descriptor names); when absent it is derived from the kernel's __global__ signature.
// `signature` is the kernel's parameter list as C text ("const float* x, int n"), read instead
// of the source's declaration: for a kernel declared through a macro.
struct Launch {
  std::string kernel;
  std::array<Expr, 3> grid{Expr(1), Expr(1), Expr(1)};
  std::array<Expr, 3> block{Expr(1), Expr(1), Expr(1)};
  Expr dynamic_smem{0};
  std::array<uint32_t, 3> cluster{1, 1, 1};
  bool cooperative = false;
  bool pdl = false;  // programmatic dependent launch
  std::optional<std::vector<std::string>> args;
  std::optional<std::string> signature;
  std::vector<L2Window> l2_windows;

  Launch() = default;
  explicit Launch(std::string kernel_name) : kernel(std::move(kernel_name)) {}
  // Fluent setters, so a launch reads as one expression. Texts are parsed as Expr.
  Launch& with_grid(std::vector<Expr> dims);
  Launch& with_block(std::vector<Expr> dims);
  Launch& with_dynamic_smem(Expr bytes);
  Launch& with_cluster(std::array<uint32_t, 3> dims);
  Launch& with_cooperative(bool on = true);
  Launch& with_pdl(bool on = true);
  Launch& with_args(std::vector<std::string> names);
  Launch& with_signature(std::string parameter_list);
  Launch& with_l2_window(L2Window window);

  bool uses_cluster() const { return cluster != std::array<uint32_t, 3>{1, 1, 1}; }
  friend bool operator==(const Launch&, const Launch&) = default;
};

// A TMA descriptor (CUtensorMap) built on the host before the launches that take it.
// Arrays are in the driver's order: index 0 is the innermost (fastest-varying) dimension.
// global_dims / global_strides default to the buffer's own shape and strides (reversed);
// global_strides are in bytes and list rank - 1 values (dimension 1 upwards), as
// cuTensorMapEncodeTiled takes them.
struct TmaDescriptor {
  enum class Kind : uint8_t { kTiled, kIm2col };

  std::string name;
  std::string buffer;
  Kind kind = Kind::kTiled;
  uint32_t rank = 0;
  std::vector<Expr> global_dims;          // empty = from the buffer
  std::vector<Expr> global_strides;       // empty = from the buffer; bytes, rank - 1 values
  std::vector<uint32_t> box_dims;         // tiled only
  std::vector<uint32_t> element_strides;  // empty = all 1
  std::string interleave = "none";        // none | 16b | 32b
  std::string swizzle = "none";           // none | 32b | 64b | 128b (| 128b_atom_32b ...)
  std::string l2_promotion = "none";      // none | 64b | 128b | 256b
  std::string oob_fill = "none";          // none | nan_request_zero_fma
  // im2col only:
  std::vector<int32_t> lower_corner;  // rank - 2 values
  std::vector<int32_t> upper_corner;  // rank - 2 values
  uint32_t channels_per_pixel = 0;
  uint32_t pixels_per_column = 0;

  friend bool operator==(const TmaDescriptor&, const TmaDescriptor&) = default;
};

enum class Language : uint8_t { kCuda, kC, kHip, kMetal };
std::string_view to_string(Language language);
Language parse_language(std::string_view text);  // "cuda" | "c" | "hip" | "metal"

// Everything needed to compile and launch one callable: TileLang's lowered PrimFunc.
struct Program {
  std::string name;
  std::vector<KernelParam> params;
  std::vector<Launch> launches;  // in launch order
  std::vector<TmaDescriptor> tma_descriptors;
  std::string source;
  Language language = Language::kCuda;
  std::vector<std::string> include_dirs;
  std::map<std::string, std::string> defines;
  std::vector<int> out_idx;  // default outputs; negative counts from the end
  std::vector<std::string> compile_flags;

  // The versioned JSON form ("format": "tilejit.program/1"), docs/program-format.md.
  // to_json() is canonical: equal Programs print byte-identical JSON.
  std::string to_json(int indent = 2) const;
  static Program from_json(std::string_view json);         // throws ProgramError with the JSON path
  static Program load(const std::filesystem::path& path);  // a .json file

  // Checks names, variables, descriptors and launches; throws ProgramError naming what is
  // wrong. compile() calls it; the JSON reader calls it too.
  void validate() const;
  // Shape and stride variables, in order of first appearance over the params.
  std::vector<std::string> shape_variables() const;
  const KernelParam* find_param(std::string_view name) const;

  friend bool operator==(const Program&, const Program&) = default;
};

class ProgramBuilder {
 public:
  explicit ProgramBuilder(std::string name);
  ProgramBuilder& source(std::string text, Language language = Language::kCuda);
  // Shapes and strides are given as text ("n", "ceildiv(M, 2)", "128") or Expr.
  ProgramBuilder& tensor(std::string name, std::string_view dtype, std::vector<Expr> shape,
                         std::optional<std::vector<Expr>> strides = std::nullopt);
  ProgramBuilder& scalar(std::string name, std::string_view dtype);
  // A struct passed by value, its fields in declaration order:
  //   .struct_scalar("p", {{"n", DataType::parse("int32")}, {"v", DataType::parse("float32"), 3}})
  ProgramBuilder& struct_scalar(std::string name, std::vector<StructField> fields);
  ProgramBuilder& launch(Launch launch);
  ProgramBuilder& tma(TmaDescriptor descriptor);
  ProgramBuilder& include_dir(std::string dir);
  ProgramBuilder& define(std::string name, std::string value = "1");
  ProgramBuilder& out_idx(std::vector<int> indices);
  ProgramBuilder& compile_flag(std::string flag);
  Program build() const;  // validates

 private:
  Program program_;
};

}  // namespace tilejit

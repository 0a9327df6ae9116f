// Program::validate: names, struct descriptions, variables, TMA descriptors, launches and
// out_idx, each failure a ProgramError naming the thing and what was expected.
#include <fmt/format.h>
#include <algorithm>
#include <set>

#include "ir/identifier.h"
#include "ir/signature.h"
#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace tilejit {
namespace {

// Integer scalars double as symbols: grids and shapes may use them by name.
bool is_integer_scalar(const KernelParam& p) {
  return p.is_scalar() && p.dtype.is_integer() && p.dtype.lanes == 1;
}

bool one_of(std::string_view value, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

std::string join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += " | ";
    out += item;
  }
  return out;
}

void check_choice(std::string_view what, std::string_view value,
                  std::initializer_list<std::string_view> allowed) {
  if (!one_of(value, allowed)) {
    throw ProgramError(fmt::format("{} is '{}': expected {}", what, value, join(allowed)));
  }
}

// A constant expression must lie in range; symbolic ones are checked when evaluated.
void check_constant_at_least(const Expr& e, int64_t minimum, std::string_view what) {
  if (e.is_const() && e.const_value() < minimum) {
    throw ProgramError(
        fmt::format("{} is {}: expected a value >= {}", what, e.const_value(), minimum));
  }
}

// The names an expression outside the params may use: shape/stride variables and integer
// scalar params.
class SymbolTable {
 public:
  explicit SymbolTable(const Program& program) {
    for (const std::string& v : program.shape_variables()) symbols_.insert(v);
    for (const KernelParam& p : program.params) {
      if (is_integer_scalar(p)) symbols_.insert(p.name);
    }
  }

  bool contains(std::string_view name) const { return symbols_.count(std::string(name)) != 0; }

  void check(const Expr& e, std::string_view what) const {
    for (const std::string& v : e.variables()) {
      if (!contains(v)) {
        throw ProgramError(fmt::format(
            "{} ('{}') uses the variable '{}': expected a shape or stride variable or an integer "
            "scalar parameter ({})",
            what, e.str(), v, describe()));
      }
    }
  }

  std::string describe() const {
    if (symbols_.empty()) return "this program has none";
    std::string out = "available: ";
    bool first = true;
    for (const std::string& s : symbols_) {
      if (!first) out += ", ";
      out += s;
      first = false;
    }
    return out;
  }

 private:
  std::set<std::string> symbols_;
};

// A struct scalar's description: named fields of the scalar types a C struct of them can hold
// and Python can fill, at most 4 KiB in all (CUDA's classic kernel parameter limit).
void validate_struct(const KernelParam& p, size_t i) {
  const std::string what = fmt::format("params[{}] (struct parameter '{}')", i, p.name);
  if (p.dtype.lanes != 1) {
    throw ProgramError(
        fmt::format("{} has dtype {}: expected \"struct\" without lanes", what, p.dtype.str()));
  }
  if (p.fields.empty()) {
    throw ProgramError(
        fmt::format("{} has no fields: expected its fields in declaration order", what));
  }
  std::set<std::string_view> names;
  uint64_t bytes = 0;
  for (size_t f = 0; f < p.fields.size(); ++f) {
    const StructField& field = p.fields[f];
    const std::string at = fmt::format("{} fields[{}]", what, f);
    if (!detail::is_c_identifier(field.name)) {
      throw ProgramError(fmt::format("{} has the name '{}': expected a C identifier", at,
                                     detail::printable(field.name)));
    }
    if (!names.insert(field.name).second) {
      throw ProgramError(fmt::format("{}: the field name '{}' is used twice", at, field.name));
    }
    const DataType& t = field.dtype;
    const bool allowed = t.lanes == 1 && (t.is_integer() || t.is_boolean() || t.is_handle() ||
                                          (t.code == TypeCode::kFloat && t.bits >= 32));
    if (!allowed) {
      throw ProgramError(fmt::format(
          "{} ('{}') has dtype {}: expected an integer, bool, float32, float64 or handle field", at,
          field.name, t.str()));
    }
    if (field.count < 1) {
      throw ProgramError(
          fmt::format("{} ('{}') has count 0: expected 1, or an array length", at, field.name));
    }
    bytes += uint64_t{field.count} * static_cast<uint64_t>(t.storage_bytes(1));
  }
  if (bytes > kMaxStructBytes) {
    throw ProgramError(
        fmt::format("{} takes {} bytes: expected at most {}", what, bytes, kMaxStructBytes));
  }
}

void validate_params(const Program& program) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < program.params.size(); ++i) {
    const KernelParam& p = program.params[i];
    if (!detail::is_c_identifier(p.name)) {
      throw ProgramError(fmt::format("params[{}] has the name '{}': expected a C identifier", i,
                                     detail::printable(p.name)));
    }
    if (!names.insert(p.name).second) {
      throw ProgramError(
          fmt::format("params[{}]: the parameter name '{}' is used twice", i, p.name));
    }
    if (!p.fields.empty() && !(p.is_scalar() && p.is_struct())) {
      throw ProgramError(fmt::format(
          "params[{}] (parameter '{}') has fields but is not a struct scalar: expected dtype "
          "\"struct\" and no shape, or no fields",
          i, p.name));
    }
    if (p.is_struct() && !p.is_scalar()) {
      throw ProgramError(fmt::format(
          "params[{}] (tensor parameter '{}') has dtype struct: structs are scalars passed by "
          "value; expected a tensor of a scalar dtype",
          i, p.name));
    }
    if (p.is_scalar()) {
      if (p.is_struct()) validate_struct(p, i);
      if (!p.shape.empty() || p.strides) {
        throw ProgramError(fmt::format(
            "params[{}] (scalar parameter '{}') has a shape or strides: expected none", i, p.name));
      }
      if (p.dtype.is_complex()) {
        throw ProgramError(fmt::format(
            "params[{}] (scalar parameter '{}') is {}: complex values are passed in tensors only; "
            "expected a 1-element {} tensor, or a struct scalar of two {} fields (re, im) as "
            "cuComplex is",
            i, p.name, p.dtype.str(), p.dtype.str(), p.dtype.bits == 64 ? "float32" : "float64"));
      }
      continue;
    }
    for (size_t d = 0; d < p.shape.size(); ++d) {
      check_constant_at_least(p.shape[d], 0,
                              fmt::format("params[{}].shape[{}] of parameter '{}'", i, d, p.name));
    }
    if (p.strides && p.strides->size() != p.shape.size()) {
      throw ProgramError(
          fmt::format("params[{}].strides of parameter '{}' has {} entries for {} dimensions: "
                      "expected one stride per dimension",
                      i, p.name, p.strides->size(), p.shape.size()));
    }
  }
}

// Every shape/stride variable must be bindable at call time: it is a whole dimension or stride
// of some tensor, or an integer scalar parameter. A variable seen only inside a compound
// expression ("ceildiv(K, 2)") could never receive a value.
void validate_variables_bindable(const Program& program) {
  std::set<std::string> bindable;
  for (const KernelParam& p : program.params) {
    if (is_integer_scalar(p)) bindable.insert(p.name);
    if (p.is_scalar()) continue;
    for (const Expr& e : p.shape) {
      if (e.is_var()) bindable.insert(e.var_name());
    }
    if (p.strides) {
      for (const Expr& e : *p.strides) {
        if (e.is_var()) bindable.insert(e.var_name());
      }
    }
  }
  for (size_t i = 0; i < program.params.size(); ++i) {
    const KernelParam& p = program.params[i];
    if (p.is_scalar()) continue;
    auto check = [&](const Expr& e, std::string_view list, size_t d) {
      for (const std::string& v : e.variables()) {
        if (bindable.count(v) == 0) {
          throw ProgramError(fmt::format(
              "params[{}].{}[{}] of parameter '{}' ('{}') uses the variable '{}', which no "
              "tensor dimension, stride or integer scalar parameter provides: expected '{}' to "
              "appear on its own somewhere",
              i, list, d, p.name, e.str(), v, v));
        }
      }
    };
    for (size_t d = 0; d < p.shape.size(); ++d) check(p.shape[d], "shape", d);
    if (p.strides) {
      for (size_t d = 0; d < p.strides->size(); ++d) check((*p.strides)[d], "strides", d);
    }
  }
  for (size_t i = 0; i < program.params.size(); ++i) {
    const KernelParam& p = program.params[i];
    if (!p.is_scalar() && bindable.count(p.name) != 0) {
      throw ProgramError(
          fmt::format("params[{}]: tensor parameter '{}' has the name of a shape/stride "
                      "variable: expected distinct names",
                      i, p.name));
    }
  }
}

void validate_tma(const Program& program, const SymbolTable& symbols) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < program.tma_descriptors.size(); ++i) {
    const TmaDescriptor& d = program.tma_descriptors[i];
    if (!detail::is_c_identifier(d.name)) {
      throw ProgramError(
          fmt::format("tma_descriptors[{}] has the name '{}': expected a C identifier", i,
                      detail::printable(d.name)));
    }
    std::string what = fmt::format("tma_descriptors[{}] (TMA descriptor '{}')", i, d.name);
    if (!names.insert(d.name).second) {
      throw ProgramError(
          fmt::format("tma_descriptors[{}]: the descriptor name '{}' is used twice", i, d.name));
    }
    if (program.find_param(d.name) != nullptr || symbols.contains(d.name)) {
      throw ProgramError(
          fmt::format("{} has the name of a parameter or variable: expected a "
                      "distinct name",
                      what));
    }
    const KernelParam* buffer = program.find_param(d.buffer);
    if (buffer == nullptr || buffer->is_scalar()) {
      throw ProgramError(
          fmt::format("{} describes the buffer '{}': expected the name of a tensor "
                      "parameter",
                      what, d.buffer));
    }
    bool tiled = d.kind == TmaDescriptor::Kind::kTiled;
    uint32_t min_rank = tiled ? 1 : 3;
    if (d.rank < min_rank || d.rank > 5) {
      throw ProgramError(fmt::format("{} has rank {}: expected {}..5 for {} descriptor", what,
                                     d.rank, min_rank, tiled ? "a tiled" : "an im2col"));
    }
    if (d.global_dims.empty()) {
      if (buffer->shape.size() != d.rank) {
        throw ProgramError(fmt::format(
            "{} has rank {} but its buffer '{}' has {} dimensions: expected equal ranks, or "
            "explicit global_dims",
            what, d.rank, d.buffer, buffer->shape.size()));
      }
    } else if (d.global_dims.size() != d.rank) {
      throw ProgramError(fmt::format("{} lists {} global_dims: expected rank = {}", what,
                                     d.global_dims.size(), d.rank));
    }
    if (!d.global_strides.empty() && d.global_strides.size() != d.rank - 1) {
      throw ProgramError(
          fmt::format("{} lists {} global_strides: expected rank - 1 = {} (bytes, "
                      "dimension 1 upwards)",
                      what, d.global_strides.size(), d.rank - 1));
    }
    for (size_t k = 0; k < d.global_dims.size(); ++k) {
      symbols.check(d.global_dims[k], fmt::format("{} global_dims[{}]", what, k));
    }
    for (size_t k = 0; k < d.global_strides.size(); ++k) {
      symbols.check(d.global_strides[k], fmt::format("{} global_strides[{}]", what, k));
    }
    if (tiled) {
      if (d.box_dims.size() != d.rank) {
        throw ProgramError(fmt::format("{} lists {} box_dims: expected rank = {}", what,
                                       d.box_dims.size(), d.rank));
      }
      for (size_t k = 0; k < d.box_dims.size(); ++k) {
        if (d.box_dims[k] < 1 || d.box_dims[k] > 256) {
          throw ProgramError(
              fmt::format("{} box_dims[{}] is {}: expected 1..256", what, k, d.box_dims[k]));
        }
      }
    } else {
      if (!d.box_dims.empty()) {
        throw ProgramError(
            fmt::format("{} is im2col and lists box_dims: expected none (im2col "
                        "uses channels_per_pixel and pixels_per_column)",
                        what));
      }
      if (d.lower_corner.size() != d.rank - 2 || d.upper_corner.size() != d.rank - 2) {
        throw ProgramError(
            fmt::format("{} lists {} lower_corner and {} upper_corner values: "
                        "expected rank - 2 = {} each",
                        what, d.lower_corner.size(), d.upper_corner.size(), d.rank - 2));
      }
      // The driver packs the corner offsets more tightly as the rank grows.
      const int32_t corner_limit = d.rank == 3 ? 32768 : d.rank == 4 ? 128 : 16;
      for (const auto* corner : {&d.lower_corner, &d.upper_corner}) {
        for (size_t k = 0; k < corner->size(); ++k) {
          int32_t v = (*corner)[k];
          if (v < -corner_limit || v >= corner_limit) {
            throw ProgramError(
                fmt::format("{} {}[{}] is {}: expected {}..{} for rank {}", what,
                            corner == &d.lower_corner ? "lower_corner" : "upper_corner", k, v,
                            -corner_limit, corner_limit - 1, d.rank));
          }
        }
      }
      if (d.channels_per_pixel < 1 || d.channels_per_pixel > 256 || d.pixels_per_column < 1 ||
          d.pixels_per_column > 1024) {
        throw ProgramError(
            fmt::format("{} has channels_per_pixel {} and pixels_per_column {}: "
                        "expected 1..256 and 1..1024",
                        what, d.channels_per_pixel, d.pixels_per_column));
      }
    }
    if (tiled && (!d.lower_corner.empty() || !d.upper_corner.empty() || d.channels_per_pixel != 0 ||
                  d.pixels_per_column != 0)) {
      throw ProgramError(
          fmt::format("{} is tiled and sets im2col fields (corners, "
                      "channels_per_pixel, pixels_per_column): expected none",
                      what));
    }
    if (!d.element_strides.empty()) {
      if (d.element_strides.size() != d.rank) {
        throw ProgramError(fmt::format("{} lists {} element_strides: expected rank = {} or none",
                                       what, d.element_strides.size(), d.rank));
      }
      for (size_t k = 0; k < d.element_strides.size(); ++k) {
        if (d.element_strides[k] < 1 || d.element_strides[k] > 8) {
          throw ProgramError(fmt::format("{} element_strides[{}] is {}: expected 1..8", what, k,
                                         d.element_strides[k]));
        }
      }
    }
    check_choice(what + " interleave", d.interleave, {"none", "16b", "32b"});
    check_choice(
        what + " swizzle", d.swizzle,
        {"none", "32b", "64b", "128b", "128b_atom_32b", "128b_atom_32b_flip_8b", "128b_atom_64b"});
    check_choice(what + " l2_promotion", d.l2_promotion, {"none", "64b", "128b", "256b"});
    check_choice(what + " oob_fill", d.oob_fill, {"none", "nan_request_zero_fma"});
  }
}

void validate_launches(const Program& program, const SymbolTable& symbols) {
  if (program.launches.empty() && program.language != Language::kMetal) {
    throw ProgramError(
        fmt::format("launches: program '{}' has no launches: expected at least one (only "
                    "metal programs may have none)",
                    program.name));
  }
  static constexpr std::string_view kAxes[3] = {"x", "y", "z"};
  for (size_t i = 0; i < program.launches.size(); ++i) {
    const Launch& l = program.launches[i];
    // C has no namespaces or templates; CUDA and HIP kernels may be named as C++ does.
    const std::optional<detail::KernelName> kernel_name = detail::parse_kernel_name(l.kernel);
    if (program.language == Language::kC ? !detail::is_c_identifier(l.kernel) : !kernel_name) {
      throw ProgramError(fmt::format(
          "launches[{}] names the kernel '{}': expected {}", i, detail::printable(l.kernel),
          program.language == Language::kC
              ? "a C identifier"
              : "a C++ name: an identifier, optionally qualified (ns::k) and with template "
                "arguments (k<float, 128>)"));
    }
    const std::string kernel = fmt::format("kernel '{}'", l.kernel);
    for (int a = 0; a < 3; ++a) {
      std::string grid_what =
          fmt::format("launches[{}].grid[{}] (grid.{} of {})", i, a, kAxes[a], kernel);
      std::string block_what =
          fmt::format("launches[{}].block[{}] (block.{} of {})", i, a, kAxes[a], kernel);
      symbols.check(l.grid[a], grid_what);
      symbols.check(l.block[a], block_what);
      check_constant_at_least(l.grid[a], 1, grid_what);
      check_constant_at_least(l.block[a], 1, block_what);
      if (l.cluster[a] < 1) {
        throw ProgramError(
            fmt::format("launches[{}].cluster[{}] (cluster.{} of {}) is {}: expected >= 1", i, a,
                        kAxes[a], kernel, l.cluster[a]));
      }
    }
    const std::string smem_what = fmt::format("launches[{}].dynamic_smem of {}", i, kernel);
    symbols.check(l.dynamic_smem, smem_what);
    check_constant_at_least(l.dynamic_smem, 0, smem_what);
    if (l.args) {
      for (const std::string& arg : *l.args) {
        bool known = program.find_param(arg) != nullptr || symbols.contains(arg) ||
                     std::any_of(program.tma_descriptors.begin(), program.tma_descriptors.end(),
                                 [&](const TmaDescriptor& d) { return d.name == arg; });
        if (!known) {
          throw ProgramError(
              fmt::format("launches[{}].args of {} name '{}': expected a parameter, a "
                          "shape/stride variable or a TMA descriptor name",
                          i, kernel, arg));
        }
      }
    }
    for (size_t w = 0; w < l.l2_windows.size(); ++w) {
      const L2Window& window = l.l2_windows[w];
      // "launches[0].l2_windows[1].num_bytes of kernel 'k'"
      auto field = [&](std::string_view name) {
        return fmt::format("launches[{}].l2_windows[{}]{}{} of {}", i, w, name.empty() ? "" : ".",
                           name, kernel);
      };
      const KernelParam* param = program.find_param(window.param);
      if (param == nullptr || param->is_scalar()) {
        throw ProgramError(fmt::format("{} names '{}': expected the name of a tensor parameter",
                                       field(""), window.param));
      }
      symbols.check(window.num_bytes, field("num_bytes"));
      check_constant_at_least(window.num_bytes, 0, field("num_bytes"));
      if (!(window.hit_ratio > 0.0 && window.hit_ratio <= 1.0)) {
        throw ProgramError(fmt::format("{} is {}: expected 0 < hit_ratio <= 1", field("hit_ratio"),
                                       window.hit_ratio));
      }
      check_choice(field("hit_property"), window.hit_property,
                   {"persisting", "streaming", "normal"});
      check_choice(field("miss_property"), window.miss_property,
                   {"persisting", "streaming", "normal"});
    }
  }
}

void validate_out_idx(const Program& program) {
  const int n = static_cast<int>(program.params.size());
  std::set<int> seen;
  for (size_t k = 0; k < program.out_idx.size(); ++k) {
    const int index = program.out_idx[k];
    if (index < -n || index >= n) {
      throw ProgramError(
          fmt::format("out_idx[{}]: out_idx {} is out of range: expected -{}..{} for {} "
                      "parameters",
                      k, index, n, n - 1, n));
    }
    int resolved = index < 0 ? index + n : index;
    const KernelParam& p = program.params[static_cast<size_t>(resolved)];
    if (p.is_scalar()) {
      throw ProgramError(
          fmt::format("out_idx[{}]: out_idx {} points at the scalar parameter '{}': expected a "
                      "tensor parameter",
                      k, index, p.name));
    }
    if (!seen.insert(resolved).second) {
      throw ProgramError(
          fmt::format("out_idx[{}]: out_idx names the parameter '{}' twice", k, p.name));
    }
  }
}

}  // namespace

void Program::validate() const {
  if (name.empty()) throw ProgramError("the program has an empty name: expected a name");
  validate_params(*this);
  validate_variables_bindable(*this);
  SymbolTable symbols(*this);
  validate_tma(*this, symbols);
  validate_launches(*this, symbols);
  validate_out_idx(*this);
  for (const auto& [define, value] : defines) {
    if (!detail::is_c_identifier(define)) {
      throw ProgramError(fmt::format("the define '{}' is not a C identifier", define));
    }
  }
}

}  // namespace tilejit

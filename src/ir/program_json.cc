// The JSON form of a Program, "tilejit.program/1" (docs/program-format.md).
//
// Printing is canonical: keys in a fixed order, defaults left out, constants as integers and
// every other expression as its canonical text, so equal Programs print byte-identical JSON
// (the compile cache hashes it). Reading is strict: an unknown key, a wrong type or a bad
// expression is a ProgramError that names the JSON path of the offending value.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace tilejit {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kFormat = "tilejit.program/1";

// ---------------------------------------------------------------------------------------------
// Printing

Json expr_to_json(const Expr& e) {
  if (e.is_const()) return e.const_value();
  return e.str();
}

Json exprs_to_json(const std::vector<Expr>& exprs) {
  Json out = Json::array();
  for (const Expr& e : exprs) out.push_back(expr_to_json(e));
  return out;
}

// Grid and block print only up to their last dimension that is not 1 (at least one).
Json dims_to_json(const std::array<Expr, 3>& dims) {
  size_t used = 3;
  while (used > 1 && dims[used - 1] == Expr(1)) --used;
  Json out = Json::array();
  for (size_t i = 0; i < used; ++i) out.push_back(expr_to_json(dims[i]));
  return out;
}

Json param_to_json(const KernelParam& p) {
  Json out;
  out["name"] = p.name;
  out["dtype"] = p.dtype.str();
  if (!p.fields.empty()) {
    Json fields = Json::array();
    for (const StructField& f : p.fields) {
      Json field;
      field["name"] = f.name;
      field["dtype"] = f.dtype.str();
      if (f.count != 1) field["count"] = f.count;
      fields.push_back(std::move(field));
    }
    out["fields"] = std::move(fields);
  }
  if (!p.is_scalar()) {
    out["shape"] = exprs_to_json(p.shape);
    if (p.strides) out["strides"] = exprs_to_json(*p.strides);
  }
  return out;
}

Json launch_to_json(const Launch& l) {
  const L2Window default_window;
  Json out;
  out["kernel"] = l.kernel;
  out["grid"] = dims_to_json(l.grid);
  out["block"] = dims_to_json(l.block);
  if (l.dynamic_smem != Expr(0)) out["dynamic_smem"] = expr_to_json(l.dynamic_smem);
  if (l.uses_cluster()) out["cluster"] = l.cluster;
  if (l.cooperative) out["cooperative"] = true;
  if (l.pdl) out["pdl"] = true;
  if (l.args) out["args"] = *l.args;
  if (l.signature) out["signature"] = *l.signature;
  if (!l.l2_windows.empty()) {
    Json windows = Json::array();
    for (const L2Window& w : l.l2_windows) {
      Json jw;
      jw["param"] = w.param;
      jw["num_bytes"] = expr_to_json(w.num_bytes);
      if (w.hit_ratio != default_window.hit_ratio) jw["hit_ratio"] = w.hit_ratio;
      if (w.hit_property != default_window.hit_property) jw["hit_property"] = w.hit_property;
      if (w.miss_property != default_window.miss_property) jw["miss_property"] = w.miss_property;
      windows.push_back(std::move(jw));
    }
    out["l2_windows"] = std::move(windows);
  }
  return out;
}

Json tma_to_json(const TmaDescriptor& d) {
  const TmaDescriptor defaults;
  Json out;
  out["name"] = d.name;
  out["buffer"] = d.buffer;
  out["kind"] = d.kind == TmaDescriptor::Kind::kTiled ? "tiled" : "im2col";
  out["rank"] = d.rank;
  if (!d.global_dims.empty()) out["global_dims"] = exprs_to_json(d.global_dims);
  if (!d.global_strides.empty()) out["global_strides"] = exprs_to_json(d.global_strides);
  if (!d.box_dims.empty()) out["box_dims"] = d.box_dims;
  if (!d.element_strides.empty()) out["element_strides"] = d.element_strides;
  if (d.interleave != defaults.interleave) out["interleave"] = d.interleave;
  if (d.swizzle != defaults.swizzle) out["swizzle"] = d.swizzle;
  if (d.l2_promotion != defaults.l2_promotion) out["l2_promotion"] = d.l2_promotion;
  if (d.oob_fill != defaults.oob_fill) out["oob_fill"] = d.oob_fill;
  if (!d.lower_corner.empty()) out["lower_corner"] = d.lower_corner;
  if (!d.upper_corner.empty()) out["upper_corner"] = d.upper_corner;
  if (d.channels_per_pixel != 0) out["channels_per_pixel"] = d.channels_per_pixel;
  if (d.pixels_per_column != 0) out["pixels_per_column"] = d.pixels_per_column;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw ProgramError(fmt::format("{}: {}", path, what));
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string item(const std::string& path, size_t index) {
  return fmt::format("{}[{}]", path, index);
}

// Rejects keys outside `allowed`, so that a misspelt optional key is an error and not a
// silently ignored setting.
void check_keys(const Json& object, const std::string& path,
                std::initializer_list<std::string_view> allowed) {
  if (!object.is_object()) fail(path.empty() ? "(top level)" : path, "expected a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(child(path, key), fmt::format("unknown key (expected one of: {})", list));
  }
}

const Json* find(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const Json& require(const Json& object, const std::string& path, std::string_view key) {
  const Json* value = find(object, key);
  if (value == nullptr) fail(child(path, key), "missing required key");
  return *value;
}

std::string read_string(const Json& value, const std::string& path) {
  if (!value.is_string()) fail(path, "expected a string");
  return value.get<std::string>();
}

bool read_bool(const Json& value, const std::string& path) {
  if (!value.is_boolean()) fail(path, "expected true or false");
  return value.get<bool>();
}

int64_t read_integer(const Json& value, const std::string& path, int64_t lo, int64_t hi) {
  int64_t v = 0;
  if (value.is_number_integer() && !value.is_number_unsigned()) {
    v = value.get<int64_t>();
  } else if (value.is_number_unsigned() &&
             value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    v = static_cast<int64_t>(value.get<uint64_t>());
  } else {
    fail(path, fmt::format("expected an integer in {}..{}", lo, hi));
  }
  if (v < lo || v > hi) fail(path, fmt::format("{} is out of range: expected {}..{}", v, lo, hi));
  return v;
}

Expr read_expr(const Json& value, const std::string& path) {
  if (value.is_number_integer()) {
    return Expr(read_integer(value, path, std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max()));
  }
  if (!value.is_string()) fail(path, "expected an integer or an expression string");
  try {
    return Expr::parse(value.get<std::string>());
  } catch (const ProgramError& e) {
    fail(path, e.what());
  }
}

const Json& read_array(const Json& value, const std::string& path) {
  if (!value.is_array()) fail(path, "expected an array");
  return value;
}

std::vector<Expr> read_exprs(const Json& value, const std::string& path) {
  std::vector<Expr> out;
  for (size_t i = 0; i < read_array(value, path).size(); ++i) {
    out.push_back(read_expr(value[i], item(path, i)));
  }
  return out;
}

std::vector<std::string> read_strings(const Json& value, const std::string& path) {
  std::vector<std::string> out;
  for (size_t i = 0; i < read_array(value, path).size(); ++i) {
    out.push_back(read_string(value[i], item(path, i)));
  }
  return out;
}

template <typename Int>
std::vector<Int> read_integers(const Json& value, const std::string& path) {
  std::vector<Int> out;
  for (size_t i = 0; i < read_array(value, path).size(); ++i) {
    out.push_back(
        static_cast<Int>(read_integer(value[i], item(path, i), std::numeric_limits<Int>::min(),
                                      std::numeric_limits<Int>::max())));
  }
  return out;
}

// Grid and block: 1 to 3 expressions, missing ones are 1.
std::array<Expr, 3> read_dims(const Json& value, const std::string& path) {
  if (!value.is_array() || value.empty() || value.size() > 3) {
    fail(path, "expected an array of 1 to 3 integers or expression strings");
  }
  std::array<Expr, 3> out{Expr(1), Expr(1), Expr(1)};
  for (size_t i = 0; i < value.size(); ++i) out[i] = read_expr(value[i], item(path, i));
  return out;
}

DataType read_dtype(const Json& value, const std::string& path) {
  std::string dtype_path = child(path, "dtype");
  std::string dtype_text = read_string(require(value, path, "dtype"), dtype_path);
  try {
    return DataType::parse(dtype_text);
  } catch (const ProgramError& e) {
    fail(dtype_path, e.what());
  }
}

StructField read_field(const Json& value, const std::string& path) {
  check_keys(value, path, {"name", "dtype", "count"});
  StructField field;
  field.name = read_string(require(value, path, "name"), child(path, "name"));
  field.dtype = read_dtype(value, path);
  if (const Json* count = find(value, "count")) {
    field.count = static_cast<uint32_t>(
        read_integer(*count, child(path, "count"), 1, std::numeric_limits<uint32_t>::max()));
  }
  return field;
}

KernelParam read_param(const Json& value, const std::string& path) {
  check_keys(value, path, {"name", "dtype", "fields", "shape", "strides"});
  std::string name = read_string(require(value, path, "name"), child(path, "name"));
  DataType dtype = read_dtype(value, path);
  std::vector<StructField> fields;
  if (const Json* list = find(value, "fields")) {
    const std::string fields_path = child(path, "fields");
    for (size_t i = 0; i < read_array(*list, fields_path).size(); ++i) {
      fields.push_back(read_field((*list)[i], item(fields_path, i)));
    }
  }
  const Json* shape = find(value, "shape");
  const Json* strides = find(value, "strides");
  if (shape == nullptr) {
    if (strides != nullptr) fail(child(path, "strides"), "a scalar (no \"shape\") has no strides");
    KernelParam p = KernelParam::scalar_param(std::move(name), dtype);
    p.fields = std::move(fields);
    return p;
  }
  if (!fields.empty()) fail(child(path, "fields"), "a tensor (with \"shape\") has no fields");
  std::optional<std::vector<Expr>> stride_exprs;
  if (strides != nullptr) stride_exprs = read_exprs(*strides, child(path, "strides"));
  return KernelParam::tensor(std::move(name), dtype, read_exprs(*shape, child(path, "shape")),
                             std::move(stride_exprs));
}

L2Window read_l2_window(const Json& value, const std::string& path) {
  check_keys(value, path, {"param", "num_bytes", "hit_ratio", "hit_property", "miss_property"});
  L2Window w;
  w.param = read_string(require(value, path, "param"), child(path, "param"));
  w.num_bytes = read_expr(require(value, path, "num_bytes"), child(path, "num_bytes"));
  if (const Json* v = find(value, "hit_ratio")) {
    if (!v->is_number()) fail(child(path, "hit_ratio"), "expected a number in (0, 1]");
    w.hit_ratio = v->get<double>();
  }
  if (const Json* v = find(value, "hit_property")) {
    w.hit_property = read_string(*v, child(path, "hit_property"));
  }
  if (const Json* v = find(value, "miss_property")) {
    w.miss_property = read_string(*v, child(path, "miss_property"));
  }
  return w;
}

Launch read_launch(const Json& value, const std::string& path) {
  check_keys(value, path,
             {"kernel", "grid", "block", "dynamic_smem", "cluster", "cooperative", "pdl", "args",
              "signature", "l2_windows"});
  Launch l(read_string(require(value, path, "kernel"), child(path, "kernel")));
  if (const Json* v = find(value, "grid")) l.grid = read_dims(*v, child(path, "grid"));
  if (const Json* v = find(value, "block")) l.block = read_dims(*v, child(path, "block"));
  if (const Json* v = find(value, "dynamic_smem")) {
    l.dynamic_smem = read_expr(*v, child(path, "dynamic_smem"));
  }
  if (const Json* v = find(value, "cluster")) {
    std::string cpath = child(path, "cluster");
    if (!v->is_array() || v->empty() || v->size() > 3) {
      fail(cpath, "expected an array of 1 to 3 positive integers");
    }
    for (size_t i = 0; i < v->size(); ++i) {
      l.cluster[i] = static_cast<uint32_t>(
          read_integer((*v)[i], item(cpath, i), 1, std::numeric_limits<uint32_t>::max()));
    }
  }
  if (const Json* v = find(value, "cooperative")) {
    l.cooperative = read_bool(*v, child(path, "cooperative"));
  }
  if (const Json* v = find(value, "pdl")) l.pdl = read_bool(*v, child(path, "pdl"));
  if (const Json* v = find(value, "args")) l.args = read_strings(*v, child(path, "args"));
  if (const Json* v = find(value, "signature")) {
    l.signature = read_string(*v, child(path, "signature"));
  }
  if (const Json* v = find(value, "l2_windows")) {
    std::string wpath = child(path, "l2_windows");
    for (size_t i = 0; i < read_array(*v, wpath).size(); ++i) {
      l.l2_windows.push_back(read_l2_window((*v)[i], item(wpath, i)));
    }
  }
  return l;
}

TmaDescriptor read_tma(const Json& value, const std::string& path) {
  check_keys(value, path,
             {"name", "buffer", "kind", "rank", "global_dims", "global_strides", "box_dims",
              "element_strides", "interleave", "swizzle", "l2_promotion", "oob_fill",
              "lower_corner", "upper_corner", "channels_per_pixel", "pixels_per_column"});
  TmaDescriptor d;
  d.name = read_string(require(value, path, "name"), child(path, "name"));
  d.buffer = read_string(require(value, path, "buffer"), child(path, "buffer"));
  if (const Json* v = find(value, "kind")) {
    std::string kind = read_string(*v, child(path, "kind"));
    if (kind == "tiled") {
      d.kind = TmaDescriptor::Kind::kTiled;
    } else if (kind == "im2col") {
      d.kind = TmaDescriptor::Kind::kIm2col;
    } else {
      fail(child(path, "kind"),
           fmt::format("'{}' is not a descriptor kind: expected tiled | im2col", kind));
    }
  }
  d.rank =
      static_cast<uint32_t>(read_integer(require(value, path, "rank"), child(path, "rank"), 1, 5));
  if (const Json* v = find(value, "global_dims")) {
    d.global_dims = read_exprs(*v, child(path, "global_dims"));
  }
  if (const Json* v = find(value, "global_strides")) {
    d.global_strides = read_exprs(*v, child(path, "global_strides"));
  }
  if (const Json* v = find(value, "box_dims")) {
    d.box_dims = read_integers<uint32_t>(*v, child(path, "box_dims"));
  }
  if (const Json* v = find(value, "element_strides")) {
    d.element_strides = read_integers<uint32_t>(*v, child(path, "element_strides"));
  }
  if (const Json* v = find(value, "interleave"))
    d.interleave = read_string(*v, child(path, "interleave"));
  if (const Json* v = find(value, "swizzle")) d.swizzle = read_string(*v, child(path, "swizzle"));
  if (const Json* v = find(value, "l2_promotion")) {
    d.l2_promotion = read_string(*v, child(path, "l2_promotion"));
  }
  if (const Json* v = find(value, "oob_fill"))
    d.oob_fill = read_string(*v, child(path, "oob_fill"));
  if (const Json* v = find(value, "lower_corner")) {
    d.lower_corner = read_integers<int32_t>(*v, child(path, "lower_corner"));
  }
  if (const Json* v = find(value, "upper_corner")) {
    d.upper_corner = read_integers<int32_t>(*v, child(path, "upper_corner"));
  }
  if (const Json* v = find(value, "channels_per_pixel")) {
    d.channels_per_pixel = static_cast<uint32_t>(read_integer(
        *v, child(path, "channels_per_pixel"), 0, std::numeric_limits<uint32_t>::max()));
  }
  if (const Json* v = find(value, "pixels_per_column")) {
    d.pixels_per_column = static_cast<uint32_t>(read_integer(
        *v, child(path, "pixels_per_column"), 0, std::numeric_limits<uint32_t>::max()));
  }
  return d;
}

// "source" is one string, or an array of lines (each ends with a newline) so that a
// hand-written file can keep its kernel readable.
std::string read_source(const Json& value, const std::string& path) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) fail(path, "expected a string or an array of line strings");
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    out += read_string(value[i], item(path, i));
    out += '\n';
  }
  return out;
}

Program read_program(const Json& root) {
  const std::string top;
  check_keys(root, top,
             {"format", "name", "language", "source", "params", "launches", "tma_descriptors",
              "include_dirs", "defines", "out_idx", "compile_flags"});
  std::string format = read_string(require(root, top, "format"), "format");
  if (format != kFormat) {
    fail("format", fmt::format("'{}' is not supported: expected \"{}\"", format, kFormat));
  }
  Program p;
  p.name = read_string(require(root, top, "name"), "name");
  if (const Json* v = find(root, "language")) {
    std::string language = read_string(*v, "language");
    try {
      p.language = parse_language(language);
    } catch (const ProgramError& e) {
      fail("language", e.what());
    }
  }
  if (const Json* v = find(root, "source")) p.source = read_source(*v, "source");
  if (const Json* v = find(root, "params")) {
    for (size_t i = 0; i < read_array(*v, "params").size(); ++i) {
      p.params.push_back(read_param((*v)[i], item("params", i)));
    }
  }
  if (const Json* v = find(root, "launches")) {
    for (size_t i = 0; i < read_array(*v, "launches").size(); ++i) {
      p.launches.push_back(read_launch((*v)[i], item("launches", i)));
    }
  }
  if (const Json* v = find(root, "tma_descriptors")) {
    for (size_t i = 0; i < read_array(*v, "tma_descriptors").size(); ++i) {
      p.tma_descriptors.push_back(read_tma((*v)[i], item("tma_descriptors", i)));
    }
  }
  if (const Json* v = find(root, "include_dirs")) p.include_dirs = read_strings(*v, "include_dirs");
  if (const Json* v = find(root, "defines")) {
    if (!v->is_object()) fail("defines", "expected an object of name: value strings");
    for (const auto& [key, value] : v->items()) {
      p.defines[key] = read_string(value, child("defines", key));
    }
  }
  if (const Json* v = find(root, "out_idx")) p.out_idx = read_integers<int>(*v, "out_idx");
  if (const Json* v = find(root, "compile_flags")) {
    p.compile_flags = read_strings(*v, "compile_flags");
  }
  p.validate();
  return p;
}

}  // namespace

std::string Program::to_json(int indent) const {
  Json out;
  out["format"] = kFormat;
  out["name"] = name;
  out["language"] = to_string(language);
  out["source"] = source;
  out["params"] = Json::array();
  for (const KernelParam& p : params) out["params"].push_back(param_to_json(p));
  out["launches"] = Json::array();
  for (const Launch& l : launches) out["launches"].push_back(launch_to_json(l));
  if (!tma_descriptors.empty()) {
    out["tma_descriptors"] = Json::array();
    for (const TmaDescriptor& d : tma_descriptors) out["tma_descriptors"].push_back(tma_to_json(d));
  }
  if (!include_dirs.empty()) out["include_dirs"] = include_dirs;
  if (!defines.empty()) {
    Json jd = Json::object();
    for (const auto& [key, value] : defines) jd[key] = value;  // std::map: sorted, canonical
    out["defines"] = std::move(jd);
  }
  if (!out_idx.empty()) out["out_idx"] = out_idx;
  if (!compile_flags.empty()) out["compile_flags"] = compile_flags;
  try {
    return out.dump(indent);
  } catch (const Json::type_error& e) {
    // Strings are stored as given; JSON needs UTF-8.
    throw ProgramError(fmt::format("program '{}' cannot be printed as JSON: {}", name, e.what()));
  }
}

Program Program::from_json(std::string_view json) {
  Json root;
  try {
    // JSON allows a key twice and nlohmann keeps the last; a strict reader refuses, so that
    // a stale duplicate cannot silently override a setting.
    std::vector<std::set<std::string>> keys_by_depth;
    std::string duplicate;
    auto reject_duplicates = [&](int depth, Json::parse_event_t event, Json& parsed) {
      auto level = static_cast<size_t>(depth);
      if (event == Json::parse_event_t::object_start) {
        if (keys_by_depth.size() <= level + 1) keys_by_depth.resize(level + 2);
        keys_by_depth[level + 1].clear();
      } else if (event == Json::parse_event_t::key) {
        if (!keys_by_depth[level].insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
      }
      return true;
    };
    root = Json::parse(json.begin(), json.end(), reject_duplicates);
    if (!duplicate.empty()) {
      throw ProgramError(
          fmt::format("invalid JSON: the key \"{}\" appears twice in one object", duplicate));
    }
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond double's range (1e400).
    throw ProgramError(fmt::format("invalid JSON: {}", e.what()));
  }
  return read_program(root);
}

Program Program::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ProgramError(fmt::format("cannot open the program file '{}'", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ProgramError(fmt::format("cannot read the program file '{}'", path.string()));
  try {
    return from_json(text.str());
  } catch (const ProgramError& e) {
    throw ProgramError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace tilejit

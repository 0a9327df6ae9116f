// tilejit.Program and its parts: the C++ model of include/tilejit/program.h, built with keyword
// arguments and read back as plain Python values (shapes as ints and expression strings).
#include <nanobind/operators.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "casters.h"
#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace tilejit::python {

Expr to_expr(nb::handle value, const std::string& what) {
  if (PyLong_Check(value.ptr()) && !PyBool_Check(value.ptr())) {
    return Expr(nb::cast<int64_t>(value));
  }
  if (PyUnicode_Check(value.ptr())) {
    try {
      return Expr::parse(nb::cast<std::string>(value));
    } catch (const ProgramError& e) {
      throw ProgramError(what + ": " + e.what());
    }
  }
  throw ProgramError(what + ": expected an int or an expression string, got " +
                     nb::cast<std::string>(nb::str(nb::handle(Py_TYPE(value.ptr())))));
}

std::vector<Expr> to_exprs(nb::handle values, const std::string& what) {
  if (PyUnicode_Check(values.ptr()) || !PySequence_Check(values.ptr())) {
    throw ProgramError(what + ": expected a list of ints and expression strings");
  }
  std::vector<Expr> exprs;
  size_t i = 0;
  for (nb::handle value : values) {
    exprs.push_back(to_expr(value, what + "[" + std::to_string(i++) + "]"));
  }
  return exprs;
}

namespace {

DataType to_dtype(const std::string& text, const std::string& what) {
  try {
    return DataType::parse(text);
  } catch (const ProgramError& e) {
    throw ProgramError(what + ": " + e.what());
  }
}

std::string repr_exprs(const std::vector<Expr>& exprs) {
  std::string text = "[";
  for (size_t i = 0; i < exprs.size(); ++i) {
    text += (i ? ", " : "") + (exprs[i].is_const() ? exprs[i].str() : "'" + exprs[i].str() + "'");
  }
  return text + "]";
}

// torch.<name> for a DataType, the seed's KernelParam.torch_dtype(). torch is imported here,
// on first use, so that tilejit imports without it.
nb::object torch_dtype(const DataType& dtype) {
  if (dtype.lanes != 1) {
    throw ArgumentError("torch has no vector dtype for " + dtype.str());
  }
  std::string name;
  switch (dtype.code) {
    case TypeCode::kFloat8E4M3:
      name = "float8_e4m3fn";
      break;
    case TypeCode::kFloat8E5M2:
      name = "float8_e5m2";
      break;
    // torch stores float4 two to a byte, as tilejit does.
    case TypeCode::kFloat4E2M1:
      name = "float4_e2m1fn_x2";
      break;
    case TypeCode::kHandle:
      throw ArgumentError("a handle parameter has no torch dtype");
    default:
      name = dtype.str();
      break;
  }
  nb::module_ torch = nb::module_::import_("torch");
  if (!nb::hasattr(torch, name.c_str())) {
    throw NotAvailableError("this torch has no dtype torch." + name);
  }
  return torch.attr(name.c_str());
}

// tilejit.DataType (python/tilejit/_dtype.py), a str subclass: what KernelParam.dtype returns.
nb::object dtype_object(const DataType& dtype) {
  static PyObject* type = [] {
    nb::object cls = nb::module_::import_("tilejit._dtype").attr("DataType");
    return cls.release().ptr();  // kept for the life of the process
  }();
  return nb::handle(type)(dtype.str());
}

// An Expr as plain Python values: an int, a variable's name, or (op, lhs, rhs) with op one of
// "+", "-", "*", "//", "%", "ceildiv", "min", "max". Lets Python code evaluate a shape over
// values of its own (torch's SymInts) without a second expression parser.
nb::object expr_tree(const Expr& expr) {
  using Op = Expr::Op;
  switch (expr.op()) {
    case Op::kConst:
      return nb::int_(expr.const_value());
    case Op::kVar:
      return nb::str(expr.var_name().c_str(), expr.var_name().size());
    default:
      break;
  }
  const char* op = nullptr;
  switch (expr.op()) {
    case Op::kAdd:
      op = "+";
      break;
    case Op::kSub:
      op = "-";
      break;
    case Op::kMul:
      op = "*";
      break;
    case Op::kFloorDiv:
      op = "//";
      break;
    case Op::kFloorMod:
      op = "%";
      break;
    case Op::kCeilDiv:
      op = "ceildiv";
      break;
    case Op::kMin:
      op = "min";
      break;
    case Op::kMax:
      op = "max";
      break;
    default:
      throw ProgramError("expr_tree: unknown expression node in '" + expr.str() + "'");
  }
  return nb::make_tuple(op, expr_tree(expr.lhs()), expr_tree(expr.rhs()));
}

}  // namespace

void bind_program(nb::module_& m) {
  m.def(
      "expr_tree", [](nb::handle expr) { return expr_tree(to_expr(expr, "expr_tree")); }, "expr"_a,
      nb::sig("def expr_tree(expr: int | str) -> int | str | tuple"),
      "An expression (int or text) as a tree of plain values: an int, a variable name, or "
      "(op, lhs, rhs) with op in '+', '-', '*', '//', '%', 'ceildiv', 'min', 'max'.");

  nb::class_<KernelParam>(m, "KernelParam",
                          "A parameter of a Program: a tensor (with a shape) or a scalar. Build "
                          "one with tilejit.Tensor(...) or tilejit.Scalar(...).")
      .def_ro("name", &KernelParam::name)
      .def_prop_ro(
          "dtype", [](const KernelParam& p) { return dtype_object(p.dtype); },
          "The element type: a tilejit.DataType, the name ('float16', 'int32', 'float8_e4m3', "
          "...) as a str that also equals the torch and numpy dtype of the same type.")
      .def_prop_ro(
          "shape", [](const KernelParam& p) { return p.shape; },
          "Dimensions: ints for constants, strings for symbolic ones ('M', "
          "'ceildiv(N, 2)'); empty for a scalar.")
      .def_prop_ro(
          "strides", [](const KernelParam& p) { return p.strides; },
          "Strides in elements, or None for compact row-major.")
      .def_prop_ro(
          "fields",
          [](const KernelParam& p) {
            nb::list out;
            for (const StructField& f : p.fields) {
              out.append(nb::make_tuple(f.name, dtype_object(f.dtype), f.count));
            }
            return out;
          },
          "A struct scalar's fields in declaration order, as (name, dtype, count) tuples; empty "
          "for every other param.")
      .def_prop_ro(
          "struct_size",
          [](const KernelParam& p) { return p.is_struct() ? p.struct_layout().size : 0; },
          "The bytes a struct scalar's fields lay out by the C ABI (padding included); 0 for "
          "every other param.")
      .def("is_scalar", &KernelParam::is_scalar)
      .def("is_struct", &KernelParam::is_struct)
      .def("is_unsigned", &KernelParam::is_unsigned)
      .def("is_float8", &KernelParam::is_float8)
      .def("is_float4", &KernelParam::is_float4)
      .def("is_boolean", &KernelParam::is_boolean)
      .def(
          "torch_dtype", [](const KernelParam& p) { return torch_dtype(p.dtype); },
          "The torch dtype of this parameter (imports torch).")
      .def(
          "tilelang_dtype",
          [](const KernelParam& p) { return dtype_object(p.dtype).attr("tilelang_dtype")(); },
          "The TileLang dtype of this parameter (imports tilelang).")
      .def(nb::self == nb::self)
      .def("__repr__", [](const KernelParam& p) {
        if (p.is_struct()) {
          std::string text = "Struct('" + p.name + "', [";
          for (size_t i = 0; i < p.fields.size(); ++i) {
            const StructField& f = p.fields[i];
            text += (i ? ", ('" : "('") + f.name + "', '" + f.dtype.str() + "'" +
                    (f.count == 1 ? "" : ", " + std::to_string(f.count)) + ")";
          }
          return text + "])";
        }
        if (p.is_scalar()) {
          return "Scalar('" + p.name + "', '" + p.dtype.str() + "')";
        }
        std::string text =
            "Tensor('" + p.name + "', '" + p.dtype.str() + "', " + repr_exprs(p.shape);
        if (p.strides) {
          text += ", strides=" + repr_exprs(*p.strides);
        }
        return text + ")";
      });

  m.def(
      "_torch_dtype", [](const std::string& name) { return torch_dtype(to_dtype(name, "dtype")); },
      "name"_a, "torch.<dtype> for a tilejit dtype name (tilejit.DataType.torch_dtype).");
  m.def(
      "Tensor",
      [](std::string name, const std::string& dtype, nb::handle shape, nb::handle strides) {
        std::string what = "tensor '" + name + "'";
        std::optional<std::vector<Expr>> stride_exprs;
        if (!strides.is_none()) {
          stride_exprs = to_exprs(strides, what + " strides");
        }
        return KernelParam::tensor(name, to_dtype(dtype, what + " dtype"),
                                   to_exprs(shape, what + " shape"), std::move(stride_exprs));
      },
      "name"_a, "dtype"_a, "shape"_a, "strides"_a = nb::none(),
      nb::sig("def Tensor(name: str, dtype: str, shape: Sequence[int | str], "
              "strides: Sequence[int | str] | None = None) -> KernelParam"),
      "A tensor parameter: shape and strides (in elements; None = compact row-major) are ints "
      "and expression strings.");
  m.def(
      "Scalar",
      [](std::string name, const std::string& dtype) {
        DataType type = to_dtype(dtype, "scalar '" + name + "' dtype");
        return KernelParam::scalar_param(std::move(name), type);
      },
      "name"_a, "dtype"_a, "A scalar parameter (an int, float or bool at call time).");
  m.def(
      "Struct",
      [](std::string name, nb::handle fields) {
        const std::string what = "struct '" + name + "'";
        if (!nb::isinstance<nb::sequence>(fields) || nb::isinstance<nb::str>(fields)) {
          throw ProgramError(what +
                             " fields: expected a list of (name, dtype) or (name, dtype, "
                             "count) tuples");
        }
        std::vector<StructField> list;
        for (nb::handle item : fields) {
          const std::string at = what + " field " + std::to_string(list.size());
          if (!nb::isinstance<nb::tuple>(item) || (nb::len(item) != 2 && nb::len(item) != 3)) {
            throw ProgramError(at + ": expected (name, dtype) or (name, dtype, count)");
          }
          nb::tuple t = nb::borrow<nb::tuple>(item);
          StructField field;
          if (!nb::isinstance<nb::str>(t[0]) || !nb::isinstance<nb::str>(t[1])) {
            throw ProgramError(at + ": expected a str name and a str dtype");
          }
          field.name = nb::cast<std::string>(t[0]);
          field.dtype = to_dtype(nb::cast<std::string>(t[1]), at + " ('" + field.name + "') dtype");
          if (nb::len(t) == 3) {
            if (!PyLong_Check(t[2].ptr()) || PyBool_Check(t[2].ptr())) {
              throw ProgramError(at + " ('" + field.name + "'): the count must be an int");
            }
            const long long count = nb::cast<long long>(t[2]);
            if (count < 1 || count > 1 << 20) {
              throw ProgramError(at + " ('" + field.name + "'): the count must be 1 or more");
            }
            field.count = static_cast<uint32_t>(count);
          }
          list.push_back(std::move(field));
        }
        return KernelParam::struct_param(std::move(name), std::move(list));
      },
      "name"_a, "fields"_a,
      nb::sig("def Struct(name: str, fields: Sequence[tuple[str, str] | tuple[str, str, int]]) "
              "-> KernelParam"),
      "A struct scalar passed by value, described by its fields in declaration order: "
      "Struct('p', [('n', 'int32'), ('alpha', 'float32'), ('v', 'float64', 3)]). A call takes "
      "a tuple or list in field order, a dict by field name, a ctypes.Structure with those "
      "fields, or a complex for a struct of two float fields.");

  nb::class_<L2Window>(m, "L2Window",
                       "An L2 persistence window set for one launch: num_bytes of buffer `param` "
                       "persist with probability hit_ratio.")
      .def(
          "__init__",
          [](L2Window* self, std::string param, nb::handle num_bytes, double hit_ratio,
             std::string hit_property, std::string miss_property) {
            new (self) L2Window{param, to_expr(num_bytes, "L2 window on '" + param + "' num_bytes"),
                                hit_ratio, std::move(hit_property), std::move(miss_property)};
          },
          nb::sig("def __init__(self, param: str, num_bytes: int | str, hit_ratio: float = 1.0, "
                  "hit_property: str = 'persisting', miss_property: str = 'streaming') -> None"),
          "param"_a, "num_bytes"_a, "hit_ratio"_a = 1.0, "hit_property"_a = "persisting",
          "miss_property"_a = "streaming")
      .def_ro("param", &L2Window::param)
      .def_prop_ro("num_bytes", [](const L2Window& w) { return w.num_bytes; })
      .def_ro("hit_ratio", &L2Window::hit_ratio)
      .def_ro("hit_property", &L2Window::hit_property)
      .def_ro("miss_property", &L2Window::miss_property)
      .def(nb::self == nb::self);

  nb::class_<Launch>(m, "Launch",
                     "One kernel launch: grid and block (1 to 3 dimensions, ints or expression "
                     "strings), dynamic shared memory, cluster, cooperative and PDL flags, an "
                     "optional argument list (else derived from the kernel's signature), L2 "
                     "windows, and an optional explicit signature (the kernel's C parameter list, "
                     "for a kernel declared through a macro). The kernel may be named as C++ "
                     "does: 'my_sqrt<float>', 'ns::scale'.")
      .def(
          "__init__",
          [](Launch* self, std::string kernel, nb::handle grid, nb::handle block,
             nb::handle dynamic_smem, std::array<uint32_t, 3> cluster, bool cooperative, bool pdl,
             std::optional<std::vector<std::string>> args, std::vector<L2Window> l2_windows,
             std::optional<std::string> signature) {
            std::string what = "launch of '" + kernel + "'";
            auto* launch = new (self) Launch(kernel);
            launch->with_grid(to_exprs(grid, what + " grid"))
                .with_block(to_exprs(block, what + " block"))
                .with_dynamic_smem(to_expr(dynamic_smem, what + " dynamic_smem"))
                .with_cluster(cluster)
                .with_cooperative(cooperative)
                .with_pdl(pdl);
            launch->args = std::move(args);
            launch->l2_windows = std::move(l2_windows);
            launch->signature = std::move(signature);
          },
          nb::sig("def __init__(self, kernel: str, grid: Sequence[int | str] = (1,), "
                  "block: Sequence[int | str] = (1,), dynamic_smem: int | str = 0, "
                  "cluster: Sequence[int] = (1, 1, 1), cooperative: bool = False, "
                  "pdl: bool = False, args: Sequence[str] | None = None, "
                  "l2_windows: Sequence[L2Window] = (), signature: str | None = None) -> None"),
          "kernel"_a, "grid"_a = nb::make_tuple(1), "block"_a = nb::make_tuple(1),
          "dynamic_smem"_a = 0, "cluster"_a = std::array<uint32_t, 3>{1, 1, 1},
          "cooperative"_a = false, "pdl"_a = false, "args"_a = nb::none(),
          "l2_windows"_a = std::vector<L2Window>{}, "signature"_a = nb::none())
      .def_ro("kernel", &Launch::kernel)
      .def_prop_ro("grid", [](const Launch& l) { return l.grid; })
      .def_prop_ro("block", [](const Launch& l) { return l.block; })
      .def_prop_ro("dynamic_smem", [](const Launch& l) { return l.dynamic_smem; })
      .def_ro("cluster", &Launch::cluster)
      .def_ro("cooperative", &Launch::cooperative)
      .def_ro("pdl", &Launch::pdl)
      .def_ro("args", &Launch::args)
      .def_ro("signature", &Launch::signature)
      .def_ro("l2_windows", &Launch::l2_windows)
      .def(nb::self == nb::self);

  nb::class_<TmaDescriptor>(m, "TmaDescriptor",
                            "A TMA descriptor (CUtensorMap) encoded before the launches that take "
                            "it. Arrays are in the driver's order (innermost dimension first).")
      .def(
          "__init__",
          [](TmaDescriptor* self, std::string name, std::string buffer, const std::string& kind,
             uint32_t rank, nb::handle global_dims, nb::handle global_strides,
             std::vector<uint32_t> box_dims, std::vector<uint32_t> element_strides,
             std::string interleave, std::string swizzle, std::string l2_promotion,
             std::string oob_fill, std::vector<int32_t> lower_corner,
             std::vector<int32_t> upper_corner, uint32_t channels_per_pixel,
             uint32_t pixels_per_column) {
            std::string what = "TMA descriptor '" + name + "'";
            if (kind != "tiled" && kind != "im2col") {
              throw ProgramError(what + ": kind must be 'tiled' or 'im2col', got '" + kind + "'");
            }
            auto* d = new (self) TmaDescriptor();
            d->name = std::move(name);
            d->buffer = std::move(buffer);
            d->kind = kind == "tiled" ? TmaDescriptor::Kind::kTiled : TmaDescriptor::Kind::kIm2col;
            d->rank = rank;
            d->global_dims = to_exprs(global_dims, what + " global_dims");
            d->global_strides = to_exprs(global_strides, what + " global_strides");
            d->box_dims = std::move(box_dims);
            d->element_strides = std::move(element_strides);
            d->interleave = std::move(interleave);
            d->swizzle = std::move(swizzle);
            d->l2_promotion = std::move(l2_promotion);
            d->oob_fill = std::move(oob_fill);
            d->lower_corner = std::move(lower_corner);
            d->upper_corner = std::move(upper_corner);
            d->channels_per_pixel = channels_per_pixel;
            d->pixels_per_column = pixels_per_column;
          },
          "name"_a, "buffer"_a, "kind"_a = "tiled", "rank"_a = 0, "global_dims"_a = nb::tuple(),
          "global_strides"_a = nb::tuple(), "box_dims"_a = std::vector<uint32_t>{},
          "element_strides"_a = std::vector<uint32_t>{}, "interleave"_a = "none",
          "swizzle"_a = "none", "l2_promotion"_a = "none", "oob_fill"_a = "none",
          "lower_corner"_a = std::vector<int32_t>{}, "upper_corner"_a = std::vector<int32_t>{},
          "channels_per_pixel"_a = 0, "pixels_per_column"_a = 0)
      .def_ro("name", &TmaDescriptor::name)
      .def_ro("buffer", &TmaDescriptor::buffer)
      .def_prop_ro("kind",
                   [](const TmaDescriptor& d) {
                     return d.kind == TmaDescriptor::Kind::kTiled ? "tiled" : "im2col";
                   })
      .def_ro("rank", &TmaDescriptor::rank)
      .def_prop_ro("global_dims", [](const TmaDescriptor& d) { return d.global_dims; })
      .def_prop_ro("global_strides", [](const TmaDescriptor& d) { return d.global_strides; })
      .def_ro("box_dims", &TmaDescriptor::box_dims)
      .def_ro("element_strides", &TmaDescriptor::element_strides)
      .def_ro("swizzle", &TmaDescriptor::swizzle)
      .def(nb::self == nb::self);

  nb::class_<Program>(m, "Program",
                      "Everything needed to compile and launch one callable: device source, "
                      "params, launches, TMA descriptors. The constructor validates it.")
      .def(
          "__init__",
          [](Program* self, std::string name, std::string source, std::vector<KernelParam> params,
             std::vector<Launch> launches, std::vector<TmaDescriptor> tma_descriptors,
             const std::string& language, std::vector<std::string> include_dirs,
             std::map<std::string, std::string> defines, nb::handle out_idx,
             std::vector<std::string> compile_flags) {
            Program program;
            program.name = std::move(name);
            program.source = std::move(source);
            program.params = std::move(params);
            program.launches = std::move(launches);
            program.tma_descriptors = std::move(tma_descriptors);
            program.language = parse_language(language);
            program.include_dirs = std::move(include_dirs);
            program.defines = std::move(defines);
            if (PyLong_Check(out_idx.ptr())) {
              program.out_idx = {nb::cast<int>(out_idx)};
            } else if (!out_idx.is_none()) {
              program.out_idx = nb::cast<std::vector<int>>(out_idx);
            }
            program.compile_flags = std::move(compile_flags);
            program.validate();
            new (self) Program(std::move(program));
          },
          "name"_a, "source"_a, "params"_a, "launches"_a,
          "tma_descriptors"_a = std::vector<TmaDescriptor>{}, "language"_a = "cuda",
          "include_dirs"_a = std::vector<std::string>{},
          "defines"_a = std::map<std::string, std::string>{}, "out_idx"_a = nb::none(),
          "compile_flags"_a = std::vector<std::string>{})
      .def_ro("name", &Program::name)
      .def_ro("source", &Program::source)
      .def_ro("params", &Program::params)
      .def_ro("launches", &Program::launches)
      .def_ro("tma_descriptors", &Program::tma_descriptors)
      .def_prop_ro("language", [](const Program& p) { return std::string(to_string(p.language)); })
      .def_ro("include_dirs", &Program::include_dirs)
      .def_ro("defines", &Program::defines)
      .def_ro("out_idx", &Program::out_idx)
      .def_ro("compile_flags", &Program::compile_flags)
      .def("to_json", &Program::to_json, "indent"_a = 2,
           "The canonical JSON form (format tilejit.program/1).")
      .def_static(
          "from_json", [](const std::string& json) { return Program::from_json(json); }, "json"_a,
          "Parses the JSON form; raises ProgramError naming the JSON path of a bad value.")
      .def_static("load", &Program::load, "path"_a, "Reads a Program from a .json file.")
      .def("validate", &Program::validate)
      .def("shape_variables", &Program::shape_variables)
      .def(nb::self == nb::self)
      .def("__repr__", [](const Program& p) {
        return "Program('" + p.name + "', " + std::to_string(p.params.size()) + " params, " +
               std::to_string(p.launches.size()) + " launches, language='" +
               std::string(to_string(p.language)) + "')";
      });
}

}  // namespace tilejit::python

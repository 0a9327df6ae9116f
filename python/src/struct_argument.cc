#include "struct_argument.h"

#include <nanobind/nanobind.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace nb = nanobind;

namespace tilejit::python {
namespace {

std::string type_name(PyObject* object) {
  return Py_TYPE(object)->tp_name;
}

std::string field_list(const StructPlan& plan) {
  std::string out;
  for (const StructField& f : plan.fields) out += (out.empty() ? "" : ", ") + f.name;
  return out;
}

class Packer {
 public:
  Packer(const StructPlan& plan, unsigned char* out, const ArgumentName& name)
      : plan_(plan), out_(out), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ArgumentError(
        fmt::format("{}: argument '{}' (#{}): {}", name_.program, name_.param, name_.index, what));
  }
  [[noreturn]] void fail_field(size_t f, const std::string& what) const {
    fail(fmt::format("field '{}': {}", plan_.fields[f].name, what));
  }

  // One field's value: a scalar, or a sequence of `count` scalars for an array field.
  void field(size_t f, PyObject* value) const {
    const StructField& field = plan_.fields[f];
    unsigned char* at = out_ + plan_.layout.offsets[f];
    const size_t element = static_cast<size_t>(field.dtype.storage_bytes(1));
    if (field.count == 1) {
      element_value(f, value, at, "");
      return;
    }
    if (!PySequence_Check(value) || PyUnicode_Check(value) || PyBytes_Check(value)) {
      fail_field(f, fmt::format("expected a sequence of {} {} values, got {}", field.count,
                                field.dtype.str(), type_name(value)));
    }
    const Py_ssize_t n = PySequence_Size(value);
    if (n < 0) throw nb::python_error();
    if (static_cast<size_t>(n) != field.count) {
      fail_field(f, fmt::format("expected {} values, got {}", field.count, n));
    }
    for (Py_ssize_t k = 0; k < n; ++k) {
      nb::object item = nb::steal(PySequence_GetItem(value, k));
      if (!item.is_valid()) throw nb::python_error();
      element_value(f, item.ptr(), at + static_cast<size_t>(k) * element, fmt::format("[{}]", k));
    }
  }

 private:
  template <class T>
  static void store(unsigned char* at, T value) {
    std::memcpy(at, &value, sizeof value);
  }

  void element_value(size_t f, PyObject* value, unsigned char* at, const std::string& item) const {
    const DataType& dtype = plan_.fields[f].dtype;
    auto wrong = [&](std::string_view expected) {
      fail_field(f, fmt::format("{}expected {} ({}), got {}", item.empty() ? "" : item + ": ",
                                expected, dtype.str(), type_name(value)));
    };
    if (dtype.is_handle()) {
      store(at, pointer_value(f, value, item));
      return;
    }
    if (dtype.is_boolean()) {
      if (PyBool_Check(value)) {
        store(at, static_cast<uint8_t>(value == Py_True ? 1 : 0));
        return;
      }
      if (!PyIndex_Check(value)) wrong("a bool");
    }
    if (dtype.is_integer() || dtype.is_boolean()) {
      if (PyFloat_Check(value) || !PyIndex_Check(value)) wrong("an integer");
      nb::object index = nb::steal(PyNumber_Index(value));
      if (!index.is_valid()) throw nb::python_error();
      integer_value(f, index.ptr(), at, item);
      return;
    }
    // float32 / float64: a number.
    double v = 0;
    if (PyFloat_Check(value) || PyLong_Check(value) ||
        (Py_TYPE(value)->tp_as_number != nullptr &&
         Py_TYPE(value)->tp_as_number->nb_float != nullptr && !PyComplex_Check(value))) {
      v = PyFloat_AsDouble(value);
      if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        fail_field(f, fmt::format("{}the value does not fit in a float64",
                                  item.empty() ? "" : item + ": "));
      }
    } else {
      wrong("a number");
    }
    if (dtype.bits == 32) {
      if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
        fail_field(
            f, fmt::format("{}value {} is out of range for float32 (largest finite "
                           "magnitude {})",
                           item.empty() ? "" : item + ": ", v, std::numeric_limits<float>::max()));
      }
      store(at, static_cast<float>(v));
    } else {
      store(at, v);
    }
  }

  void integer_value(size_t f, PyObject* integer, unsigned char* at,
                     const std::string& item) const {
    const DataType& dtype = plan_.fields[f].dtype;
    const unsigned bits = dtype.is_boolean() ? 1 : dtype.bits;
    const bool is_signed = dtype.is_int();
    auto out_of_range = [&](const std::string& shown) {
      const std::string lo = !is_signed   ? "0"
                             : bits >= 64 ? fmt::format("{}", std::numeric_limits<int64_t>::min())
                                          : fmt::format("{}", -(int64_t{1} << (bits - 1)));
      const std::string hi =
          is_signed ? fmt::format("{}", bits >= 64 ? std::numeric_limits<int64_t>::max()
                                                   : (int64_t{1} << (bits - 1)) - 1)
                    : fmt::format("{}", bits >= 64 ? std::numeric_limits<uint64_t>::max()
                                                   : (uint64_t{1} << bits) - 1);
      fail_field(f, fmt::format("{}value {} is out of range for {} [{}, {}]",
                                item.empty() ? "" : item + ": ", shown, dtype.str(), lo, hi));
    };
    auto shown = [&]() {
      nb::object text = nb::steal(PyObject_Str(integer));
      return text.is_valid() ? nb::cast<std::string>(text) : std::string("?");
    };
    if (is_signed) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(integer, &overflow);
      if (v == -1 && PyErr_Occurred()) throw nb::python_error();
      const long long lo =
          bits >= 64 ? std::numeric_limits<long long>::min() : -(1LL << (bits - 1));
      const long long hi =
          bits >= 64 ? std::numeric_limits<long long>::max() : (1LL << (bits - 1)) - 1;
      if (overflow != 0 || v < lo || v > hi) out_of_range(shown());
      switch (bits) {
        case 8:
          store(at, static_cast<int8_t>(v));
          break;
        case 16:
          store(at, static_cast<int16_t>(v));
          break;
        case 32:
          store(at, static_cast<int32_t>(v));
          break;
        default:
          store(at, static_cast<int64_t>(v));
          break;
      }
      return;
    }
    if (PyObject_RichCompareBool(integer, nb::int_(0).ptr(), Py_LT) == 1) out_of_range(shown());
    const unsigned long long v = PyLong_AsUnsignedLongLong(integer);
    if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
      PyErr_Clear();
      out_of_range(shown());
    }
    if (bits < 64 && v > (1ULL << bits) - 1) out_of_range(shown());
    switch (bits) {
      case 1:
      case 8:
        store(at, static_cast<uint8_t>(v));
        break;
      case 16:
        store(at, static_cast<uint16_t>(v));
        break;
      case 32:
        store(at, static_cast<uint32_t>(v));
        break;
      default:
        store(at, static_cast<uint64_t>(v));
        break;
    }
  }

  // A handle field: an int address, a ctypes.c_void_p, or an object with data_ptr().
  void* pointer_value(size_t f, PyObject* value, const std::string& item) const {
    static PyObject* c_void_p = [] {
      nb::object type = nb::module_::import_("ctypes").attr("c_void_p");
      return type.release().ptr();  // kept for the life of the process
    }();
    const std::string where = item.empty() ? "" : item + ": ";
    nb::object address;
    if (PyBool_Check(value) || value == Py_None) {
      fail_field(f, fmt::format("{}expected a pointer (handle), got {}; pass 0 for a null pointer",
                                where, value == Py_None ? "None" : "a bool"));
    }
    if (PyLong_Check(value)) {
      address = nb::borrow(value);
    } else if (int is = PyObject_IsInstance(value, c_void_p); is != 0) {
      if (is < 0) throw nb::python_error();
      address = nb::steal(PyObject_GetAttrString(value, "value"));
      if (address.is_valid() && address.is_none()) return nullptr;
    } else if (nb::hasattr(value, "data_ptr")) {
      address = nb::handle(value).attr("data_ptr")();
    } else if (PyIndex_Check(value)) {
      address = nb::steal(PyNumber_Index(value));
    } else {
      fail_field(f, fmt::format("{}expected a pointer (handle): an int address, a ctypes.c_void_p "
                                "or an object with data_ptr(), got {}",
                                where, type_name(value)));
    }
    if (!address.is_valid()) throw nb::python_error();
    if (!PyLong_Check(address.ptr()) ||
        PyObject_RichCompareBool(address.ptr(), nb::int_(0).ptr(), Py_LT) == 1) {
      fail_field(f, where + "a pointer (handle) is a non-negative int");
    }
    void* pointer = PyLong_AsVoidPtr(address.ptr());
    if (pointer == nullptr && PyErr_Occurred()) {
      PyErr_Clear();
      fail_field(f, where + "the address does not fit in a pointer");
    }
    return pointer;
  }

  const StructPlan& plan_;
  unsigned char* out_;
  const ArgumentName& name_;
};

}  // namespace

StructPlan::StructPlan(const KernelParam& param)
    : fields(param.fields),
      layout(param.struct_layout()),
      takes_complex(param.fields.size() == 2 && param.fields[0].count == 1 &&
                    param.fields[1].count == 1 && param.fields[0].dtype == param.fields[1].dtype &&
                    param.fields[0].dtype.code == TypeCode::kFloat) {}

void pack_struct(const StructPlan& plan, PyObject* value, unsigned char* out,
                 const ArgumentName& name) {
  std::memset(out, 0, plan.layout.size);
  Packer packer(plan, out, name);
  const size_t n = plan.fields.size();
  if (PyTuple_Check(value) || PyList_Check(value)) {
    const Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
    if (static_cast<size_t>(size) != n) {
      packer.fail(
          fmt::format("expected {} values, one per field ({}), got {}", n, field_list(plan), size));
    }
    PyObject** items = PySequence_Fast_ITEMS(value);
    for (size_t f = 0; f < n; ++f) packer.field(f, items[f]);
    return;
  }
  if (PyDict_Check(value)) {
    for (size_t f = 0; f < n; ++f) {
      PyObject* item = PyDict_GetItemString(value, plan.fields[f].name.c_str());  // borrowed
      if (item == nullptr) {
        packer.fail(fmt::format("the dict has no field '{}' (fields: {})", plan.fields[f].name,
                                field_list(plan)));
      }
      packer.field(f, item);
    }
    if (static_cast<size_t>(PyDict_Size(value)) != n) {
      PyObject* key = nullptr;
      PyObject* item = nullptr;
      Py_ssize_t pos = 0;
      while (PyDict_Next(value, &pos, &key, &item)) {
        bool known = false;
        if (PyUnicode_Check(key)) {
          const char* text = PyUnicode_AsUTF8(key);
          for (const StructField& field : plan.fields)
            known |= text != nullptr && field.name == text;
        }
        if (!known) {
          nb::object shown = nb::steal(PyObject_Repr(key));
          packer.fail(fmt::format("the dict has the key {}, which is not a field ({})",
                                  shown.is_valid() ? nb::cast<std::string>(shown) : "?",
                                  field_list(plan)));
        }
      }
    }
    return;
  }
  if (PyComplex_Check(value)) {
    if (!plan.takes_complex) {
      packer.fail(
          fmt::format("a complex fills a struct of two float32 or two float64 fields; "
                      "this one has fields {}",
                      field_list(plan)));
    }
    nb::object re = nb::steal(PyFloat_FromDouble(PyComplex_RealAsDouble(value)));
    nb::object im = nb::steal(PyFloat_FromDouble(PyComplex_ImagAsDouble(value)));
    packer.field(0, re.ptr());
    packer.field(1, im.ptr());
    return;
  }
  static PyObject* structure = [] {
    nb::object type = nb::module_::import_("ctypes").attr("Structure");
    return type.release().ptr();  // kept for the life of the process
  }();
  if (int is = PyObject_IsInstance(value, structure); is != 0) {
    if (is < 0) throw nb::python_error();
    // The fields by name, checked against the type's _fields_ so that a Structure declared
    // for another layout is refused rather than misread.
    nb::object declared = nb::getattr(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(value))),
                                      "_fields_", nb::none());
    std::string names;
    if (nb::isinstance<nb::sequence>(declared)) {
      for (nb::handle entry : declared) {
        if (nb::isinstance<nb::tuple>(entry) && nb::len(entry) >= 1 &&
            nb::isinstance<nb::str>(entry[0])) {
          names += (names.empty() ? "" : ", ") + nb::cast<std::string>(entry[0]);
        }
      }
    }
    if (names != field_list(plan)) {
      packer.fail(fmt::format("the ctypes.Structure {} has the fields ({}): expected ({})",
                              type_name(value), names, field_list(plan)));
    }
    for (size_t f = 0; f < n; ++f) {
      nb::object item = nb::steal(PyObject_GetAttrString(value, plan.fields[f].name.c_str()));
      if (!item.is_valid()) throw nb::python_error();
      packer.field(f, item.ptr());
    }
    return;
  }
  packer.fail(fmt::format(
      "expected a struct value: a tuple or list of its {} fields ({}), a "
      "dict by field name, or a ctypes.Structure with those fields{}; got {}",
      n, field_list(plan), plan.takes_complex ? ", or a complex" : "", type_name(value)));
}

}  // namespace tilejit::python

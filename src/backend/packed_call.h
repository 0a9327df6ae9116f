// The argument array of a generated host library's call_packed entry (CONVENTIONS §3), built
// from a BoundCall on the caller's stack: no heap, no locks.
//
//   PackedCallPlan plan(program, binder, "nvcc");     // at load
//   PackedCallPlan::Storage storage;                  // per call, on the stack
//   call_packed(plan.fill(bound, storage), stream);
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "call/binder.h"
#include "codegen/wrapper.h"
#include "tilejit/errors.h"

namespace tilejit::detail {

class PackedCallPlan {
 public:
  static constexpr int kMaxArgs = kMaxParams + kMaxSymbols;

  // The pointers handed to call_packed, and 8-byte cells for the values that the BoundCall
  // does not already hold at call()'s C type.
  struct Storage {
    std::array<void*, kMaxArgs> args;
    alignas(8) unsigned char cells[kMaxArgs][8];
  };

  // Throws ProgramError naming the parameter for a scalar type that cannot be passed
  // (float16/bfloat16/float8 scalars: the BoundCall holds them as double).
  PackedCallPlan(const Program& program, const Binder& binder, std::string_view backend) {
    const std::vector<CallParam> params = wrapper_call_params(program);
    if (params.size() > static_cast<size_t>(kMaxArgs)) {
      throw ProgramError(fmt::format("program '{}': call() takes {} values; at most {} supported",
                                     program.name, params.size(), kMaxArgs));
    }
    for (const CallParam& p : params) entries_.push_back(plan_entry(p, program, binder, backend));
  }

  void* const* fill(const BoundCall& call, Storage& storage) const {
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      const size_t index = static_cast<size_t>(e.index);
      if (e.origin == Origin::kData) {
        storage.args[i] = const_cast<void**>(&call.data[index]);
        continue;
      }
      if (e.origin == Origin::kBytes) {  // a struct: call() reads it where the Binder copied it
        storage.args[i] = call.data[index];
        continue;
      }
      unsigned char* cell = storage.cells[i];
      const int64_t integer =
          e.origin == Origin::kSymbol ? call.symbols[index] : call.int_values[index];
      switch (e.value) {
        case Value::kInt8:
          store(cell, static_cast<int8_t>(integer));
          break;
        case Value::kInt16:
          store(cell, static_cast<int16_t>(integer));
          break;
        case Value::kInt32:
          store(cell, static_cast<int32_t>(integer));
          break;
        case Value::kInt64:
          store(cell, integer);
          break;
        case Value::kFloat32:
          store(cell, static_cast<float>(call.float_values[index]));
          break;
        case Value::kFloat64:
          store(cell, call.float_values[index]);
          break;
      }
      storage.args[i] = cell;
    }
    return storage.args.data();
  }

 private:
  enum class Origin : uint8_t { kData, kBytes, kInt, kFloat, kSymbol };
  enum class Value : uint8_t { kInt8, kInt16, kInt32, kInt64, kFloat32, kFloat64 };
  struct Entry {
    Origin origin;
    Value value;
    int index;  // param index (data, int, float) or symbol slot
  };

  template <class T>
  static void store(unsigned char* cell, T value) {
    std::memcpy(cell, &value, sizeof value);
  }

  static Value integer_value(const DataType& dtype) {
    switch (dtype.is_boolean() ? 8 : dtype.bits) {
      case 8:
        return Value::kInt8;
      case 16:
        return Value::kInt16;
      case 32:
        return Value::kInt32;
      default:
        return Value::kInt64;
    }
  }

  static Entry plan_entry(const CallParam& p, const Program& program, const Binder& binder,
                          std::string_view backend) {
    switch (p.kind) {
      case CallParam::Kind::kTensor:
        return {Origin::kData, Value::kInt64, p.param_index};
      case CallParam::Kind::kSymbol: {
        const int slot = binder.symbol_slot(p.name);
        if (slot < 0) {
          throw ProgramError(
              fmt::format("program '{}': call() takes the symbol '{}', which no parameter binds",
                          program.name, p.name));
        }
        return {Origin::kSymbol, integer_value(p.dtype), slot};
      }
      case CallParam::Kind::kScalar:
        break;
    }
    const DataType& dtype = p.dtype;
    if (dtype.is_handle()) return {Origin::kData, Value::kInt64, p.param_index};
    if (dtype.is_struct()) return {Origin::kBytes, Value::kInt64, p.param_index};
    if (dtype.is_integer() || dtype.is_boolean()) {
      return {Origin::kInt, integer_value(dtype), p.param_index};
    }
    if (dtype.code == TypeCode::kFloat && dtype.lanes == 1 && dtype.bits == 32) {
      return {Origin::kFloat, Value::kFloat32, p.param_index};
    }
    if (dtype.code == TypeCode::kFloat && dtype.lanes == 1 && dtype.bits == 64) {
      return {Origin::kFloat, Value::kFloat64, p.param_index};
    }
    throw ProgramError(fmt::format(
        "program '{}': scalar parameter '{}' has dtype {}; the {} backend passes integer, bool, "
        "handle, float32, float64 and struct scalars",
        program.name, p.name, dtype.str(), backend));
  }

  std::vector<Entry> entries_;
};

}  // namespace tilejit::detail

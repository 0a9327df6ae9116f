// The backend registry: execution_backend names to implementations. Each backend defines
// its accessor in its own file; adding a backend adds a declaration and a table line here.
#include <string>

#include <fmt/format.h>

#include "backend/backend.h"
#include "tilejit/errors.h"

namespace tilejit::detail {

const Backend& cpu_backend();    // cpu.cc
const Backend& nvrtc_backend();  // nvrtc.cc
const Backend& nvcc_backend();   // nvcc.cc
const Backend& hip_backend();    // hip.cc
const Backend& metal_backend();  // metal.cc

namespace {

struct Entry {
  std::string_view name;
  const Backend& (*get)();
};

constexpr Entry kBackends[] = {
    {"cpu", &cpu_backend}, {"nvrtc", &nvrtc_backend}, {"nvcc", &nvcc_backend},
    {"hip", &hip_backend}, {"metal", &metal_backend},
};

const Entry* find(std::string_view name) {
  for (const Entry& entry : kBackends) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

GlobalSymbol Executor::global(std::string_view name, Device /*device*/) const {
  throw ArgumentError(fmt::format(
      "get_global('{}'): this backend's modules expose no globals to tilejit; expected the "
      "nvrtc backend for a CUDA __constant__ / __device__ variable, or cpu for a C global",
      name));
}

const Backend& backend_named(std::string_view name) {
  if (const Entry* entry = find(name)) return entry->get();
  std::string known;
  for (const Entry& entry : kBackends)
    known += fmt::format("{}\"{}\"", known.empty() ? "" : ", ", entry.name);
  throw ArgumentError(fmt::format(
      "execution_backend \"{}\" is not available in this build (known: {})", name, known));
}

namespace {

// The seed's execution_backend names (tilelang.jit.compile) that are not ours. Its host-wrapper
// backends (tvm_ffi, cython, dlpack) compile generated host code next to the device code into
// one library: here that is the target's host-wrapper backend (nvcc for CUDA). Its "torch"
// backend runs Metal kernels through torch.mps: our metal backend. Its "cutedsl" backend emits
// CuTe DSL Python from TileLang's IR; tilejit compiles C/CUDA sources and has no counterpart.
std::string_view backend_for_seed_name(std::string_view requested, const Target& target) {
  if (requested == "tvm_ffi" || requested == "cython" || requested == "dlpack") {
    if (target.kind == "cuda") return "nvcc";
    if (target.kind == "c") return "cpu";
    if (target.kind == "hip") return "hip";
    throw ArgumentError(
        fmt::format("execution_backend \"{}\" (a host-wrapper backend of the seed) has no "
                    "counterpart for target \"{}\"; use \"auto\"",
                    requested, target.str()));
  }
  if (requested == "torch") {
    if (target.kind == "metal") return "metal";
    throw ArgumentError(fmt::format(
        "execution_backend \"torch\" is the seed's Metal backend (kernels run through "
        "torch.mps) and cannot run target \"{}\"; use \"auto\" (CUDA: \"nvrtc\" or \"nvcc\", "
        "C: \"cpu\")",
        target.str()));
  }
  if (requested == "cutedsl") {
    throw ArgumentError(
        "execution_backend \"cutedsl\" does not exist in tilejit: the seed's CuTe DSL backend "
        "generates CuTe DSL Python from TileLang IR, while tilejit compiles CUDA C++ sources; "
        "use \"nvrtc\" (or \"auto\") to compile in process, \"nvcc\" for a host-wrapper "
        "library");
  }
  std::string known;
  for (const Entry& entry : kBackends) known += fmt::format("\"{}\", ", entry.name);
  throw ArgumentError(fmt::format(
      "execution_backend \"{}\" is not available in this build (known: \"auto\", {}and the "
      "seed's \"tvm_ffi\", \"cython\", \"dlpack\", \"torch\"; docs/seed-compat.md)",
      requested, known));
}

}  // namespace

std::string_view default_backend_for(const Target& target) {
  if (target.kind == "c") return "cpu";
  if (target.kind == "cuda") return find("nvrtc") != nullptr ? "nvrtc" : "nvcc";
  if (target.kind == "hip") return "hip";
  if (target.kind == "metal") return "metal";
  throw ArgumentError(fmt::format("no execution backend for target \"{}\"", target.str()));
}

std::string_view backend_for(std::string_view requested, const Target& target) {
  if (requested.empty() || requested == "auto") return default_backend_for(target);
  if (const Entry* entry = find(requested)) return entry->name;
  return backend_for_seed_name(requested, target);
}

}  // namespace tilejit::detail

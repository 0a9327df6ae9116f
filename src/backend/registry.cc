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

std::string_view default_backend_for(const Target& target) {
  if (target.kind == "c") return "cpu";
  if (target.kind == "cuda") return find("nvrtc") != nullptr ? "nvrtc" : "nvcc";
  if (target.kind == "hip") return "hip";
  if (target.kind == "metal") return "metal";
  throw ArgumentError(fmt::format("no execution backend for target \"{}\"", target.str()));
}

}  // namespace tilejit::detail

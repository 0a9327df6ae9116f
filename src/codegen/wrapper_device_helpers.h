// The helpers generated CUDA and HIP host wrappers define: src/codegen/wrapper_device_helpers.cu,
// embedded by the build (wrapper_device_helpers.cc.in) as the device header is.
#pragma once

#include <string_view>

namespace tilejit::detail {

// The whole file, sections and their `//@ NAME` lines included.
std::string_view wrapper_device_helpers_source();

}  // namespace tilejit::detail

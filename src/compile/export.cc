// Kernel::export_to: a compiled kernel handed to a C or C++ user as a shared library, its C
// header, the sources it was built from and a README, usable with no tilejit at run time.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/shared_library.h"
#include "codegen/wrapper.h"
#include "compile/kernel_state.h"
#include "cuda/nvrtc.h"
#include "tilejit/errors.h"
#include "tilejit/kernel.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::CallParam;

// File names made from the Program's name must not depend on what characters a user put there.
std::string file_stem(std::string_view name) {
  std::string stem;
  for (char c : name) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    stem += safe ? c : '_';
  }
  return stem.empty() ? "program" : stem;
}

// An nvrtc kernel has a cubin and a C++ launch plan, neither of which a C program can call:
// the same Program is built again by the nvcc backend, whose library exports call().
CompiledArtifact host_library_artifact(const CompiledArtifact& artifact) {
  if (artifact.binary_kind == "shared_library") return artifact;
  if (artifact.backend != "nvrtc") {
    throw ArgumentError(
        fmt::format("cannot export '{}': a '{}' artifact of the {} backend has no host library",
                    artifact.program.name, artifact.binary_kind, artifact.backend));
  }
  detail::ResolvedOptions options;
  options.backend = "nvcc";
  options.target = detail::Target::parse(artifact.target);
  options.out_idx = artifact.program.out_idx;
  options.compile_flags = artifact.program.compile_flags;
  try {
    return detail::backend_named("nvcc").build(artifact.program, options);
  } catch (const NotAvailableError& e) {
    throw NotAvailableError(fmt::format(
        "cannot export '{}': an nvrtc kernel is exported by building its host library with "
        "nvcc, which is not available ({}); compile with execution_backend=\"nvcc\" on a "
        "machine with the CUDA toolkit",
        artifact.program.name, e.what()));
  }
}

std::string describe(const Program& program, const CallParam& p) {
  switch (p.kind) {
    case CallParam::Kind::kScalar:
      return fmt::format("{} {}: scalar {}", p.c_type, p.name, p.dtype.str());
    case CallParam::Kind::kSymbol:
      return fmt::format("{} {}: the size '{}' of the tensors that use it", p.c_type, p.name,
                         p.name);
    case CallParam::Kind::kTensor:
      break;
  }
  const KernelParam& param = program.params[static_cast<size_t>(p.param_index)];
  std::vector<std::string> dims;
  for (const Expr& e : param.shape) dims.push_back(e.str());
  std::string text = fmt::format("{} {}: {} tensor [{}]", p.c_type, p.name, param.dtype.str(),
                                 fmt::join(dims, ", "));
  if (param.strides) {
    std::vector<std::string> strides;
    for (const Expr& e : *param.strides) strides.push_back(e.str());
    text += fmt::format(", strides [{}] elements", fmt::join(strides, ", "));
  } else {
    text += ", compact row-major";
  }
  const auto& outputs = program.out_idx;
  if (std::find(outputs.begin(), outputs.end(), p.param_index) != outputs.end()) {
    text += " (output: the caller allocates it)";
  }
  return text;
}

// The Program's own include dirs, defines and flags, as a compiler command line takes them.
std::string program_flags(const Program& program) {
  std::string flags;
  for (const std::string& dir : program.include_dirs) flags += " -I" + dir;
  for (const auto& [name, value] : program.defines) {
    flags += value.empty() ? " -D" + name : fmt::format(" -D{}={}", name, value);
  }
  for (const std::string& flag : program.compile_flags) flags += " " + flag;
  return flags;
}

std::string readme(const CompiledArtifact& artifact, const std::string& stem,
                   const std::vector<std::string>& sources, const std::string& build_command) {
  const Program& program = artifact.program;
  const bool gpu = artifact.backend != "cpu";
  std::string text =
      fmt::format("{} -- exported by tilejit {} (backend {}, target {})\n\n", program.name,
                  detail::tilejit_version(), artifact.backend, artifact.target);
  text += "Files\n";
  text += fmt::format(
      "  lib{}.so  the kernel and its host code; needs no tilejit at run time{}\n", stem,
      gpu ? " (the CUDA runtime is linked in; the driver comes from the system)" : "");
  text += fmt::format("  {}.h      declares init, get_last_error, call and call_packed\n", stem);
  for (const std::string& source : sources) text += fmt::format("  {}\n", source);
  text += "\nUse from C or C++\n";
  text += fmt::format("  #include \"{}.h\"\n", stem);
  text += "  if (init() != 0) fprintf(stderr, \"%s\\n\", get_last_error());  // once per device\n";
  text += "  if (call(...) != 0) fprintf(stderr, \"%s\\n\", get_last_error());\n";
  text += fmt::format("  cc main.c -I. -L. -l{} -Wl,-rpath,'$ORIGIN'\n", stem);
  text += "\ncall() takes, in order:\n";
  for (const CallParam& p : detail::wrapper_call_params(program)) {
    text += "  " + describe(program, p) + "\n";
  }
  if (gpu)
    text += "  cudaStream_t stream: where the launches are enqueued (0: the default stream)\n";
  text +=
      "call() checks nothing about the arguments (tilejit's Binder does that when tilejit calls\n";
  text += "the kernel): pass pointers and sizes that match the shapes above.\n";
  text += "\nRebuild from the sources\n";
  text += "  " + build_command + "\n";
  return text;
}

}  // namespace

void Kernel::export_to(const std::filesystem::path& dir) const {
  const CompiledArtifact& compiled = detail::kernel_state(*this).artifact;
  const CompiledArtifact artifact = host_library_artifact(compiled);
  const Program& program = artifact.program;
  const std::string stem = file_stem(program.name);

  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    throw Error(
        fmt::format("cannot create the export directory {}: {}", dir.string(), error.message()));
  }
  detail::write_file(dir / ("lib" + stem + ".so"), artifact.binary);

  std::vector<std::string> sources;
  std::string build_command;
  const std::string library = "lib" + stem + ".so";
  if (artifact.backend == "cpu") {
    detail::write_file(dir / (stem + ".h"),
                       detail::generate_wrapper_header(program, detail::HostApi::kCpu));
    detail::write_file(dir / (stem + ".c"), artifact.device_source);
    detail::write_file(dir / (stem + "_host.c"), artifact.host_source);
    sources = {stem + ".c       the Program's source",
               stem + "_host.c  the generated host wrapper"};
    // With the cpu backend's layout flags, so that the command rebuilds the library shipped
    // here; without them the linker's hardened default comes back.
    build_command = fmt::format("cc -O2 -fPIC -shared {}{} -o {} {}.c {}_host.c -lm",
                                fmt::join(detail::kCpuLibraryLayoutFlags, " "),
                                program_flags(program), library, stem, stem);
  } else if (artifact.backend == "nvcc") {
    detail::write_file(dir / (stem + ".h"),
                       detail::generate_wrapper_header(program, detail::HostApi::kCuda));
    detail::write_file(dir / detail::kCudaDeviceSourceFile, artifact.device_source);
    detail::write_file(dir / "host.cu", artifact.host_source);
    fs::create_directories(dir / "include" / "tilejit");
    detail::write_file(dir / "include" / cuda::kDeviceHeaderName, cuda::device_header_source());
    sources = {"kernel.cu    the Program's CUDA source",
               "host.cu      the generated host wrapper, with the cubin built from kernel.cu "
               "embedded",
               "include/tilejit/cuda_device.h  the device header kernel.cu may include"};
    const std::string arch = artifact.metadata.count("arch") ? artifact.metadata.at("arch") : "";
    const std::string number = arch.size() > 3 ? arch.substr(3) : "XY";
    // host.cu carries the device code, so it rebuilds alone; the README also says how the
    // embedded cubin was built.
    build_command = fmt::format(
        "nvcc -shared -Xcompiler -fPIC -std=c++17 -O3 -o {2} -x c++ host.cu\n"
        "The embedded cubin was built with\n"
        "  nvcc --cubin -std=c++17 -O3 -gencode arch=compute_{0},code=sm_{0} -Iinclude{1} "
        "-o kernel.cubin kernel.cu",
        number, program_flags(program), library);
  } else if (artifact.backend == "hip") {
    detail::write_file(dir / (stem + ".h"),
                       detail::generate_wrapper_header(program, detail::HostApi::kHip));
    detail::write_file(dir / detail::kHipDeviceSourceFile, artifact.device_source);
    detail::write_file(dir / "host.hip", artifact.host_source);
    sources = {"kernel.hip   the Program's HIP source",
               "host.hip     the generated host wrapper (includes kernel.hip)"};
    build_command =
        fmt::format("hipcc -shared -fPIC -std=c++17 -O3 --offload-arch={}{} -o {} host.hip",
                    detail::Target::parse(artifact.target).arch, program_flags(program), library);
  } else {
    throw ArgumentError(fmt::format("cannot export '{}': the {} backend has no host library",
                                    program.name, artifact.backend));
  }
  detail::write_file(dir / "README.txt", readme(artifact, stem, sources, build_command));
}

}  // namespace tilejit

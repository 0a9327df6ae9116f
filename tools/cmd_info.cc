// `tilejit info`: the version and every toolchain tilejit can use on this machine.
#include <filesystem>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "cli.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace {

using tilejit::detail::find_program;

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// The version line of `program --version` ("Cuda compilation tools, release 13.0, V13.0.48").
std::string version_of(const std::filesystem::path& program, std::string_view marker) {
  const auto result =
      tilejit::detail::run_process({program.string(), "--version"}, std::chrono::seconds(30));
  if (result.exit_code != 0) return "unknown version";
  std::string_view text = result.output;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (line.find(marker) != std::string_view::npos) return std::string(line);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return first_line(result.output);
}

void print_host_compiler() {
  try {
    const auto& compiler = tilejit::detail::HostCompiler::detect();
    fmt::print("host compiler:  {} / {} ({})\n", compiler.c_compiler, compiler.cxx_compiler,
               compiler.version);
  } catch (const tilejit::Error& e) {
    fmt::print("host compiler:  not found ({})\n", e.what());
  }
}

void print_nvcc() {
  std::optional<std::filesystem::path> nvcc = find_program("nvcc");
  if (!nvcc) {
    // The toolkit that NVRTC came from, when nvcc is not on PATH.
    for (const auto& include_dir : tilejit::cuda::cuda_include_dirs()) {
      const auto candidate = include_dir.parent_path() / "bin" / "nvcc";
      if (find_program(candidate.string())) {
        nvcc = candidate;
        break;
      }
    }
  }
  if (!nvcc) {
    fmt::print("nvcc:           not found (put the CUDA toolkit's bin/ on PATH)\n");
    return;
  }
  fmt::print("nvcc:           {} ({})\n", nvcc->string(), version_of(*nvcc, "release"));
}

// The CUDA section: NVRTC, the driver and the devices (src/cuda, all dlopen'ed). Maintained
// with src/cuda: extend it here when that layer learns more facts worth showing.
void print_cuda_section() {
  std::string why;
  if (tilejit::cuda::nvrtc_available(&why)) {
    const auto& nvrtc = tilejit::cuda::nvrtc();
    fmt::print("nvrtc:          {} ({}; newest arch sm_{})\n", nvrtc.version_string(),
               nvrtc.library_path, nvrtc.max_arch());
  } else {
    fmt::print("nvrtc:          not available ({})\n", first_line(why));
  }
  why.clear();
  if (!tilejit::cuda::driver_available(&why)) {
    fmt::print("cuda driver:    not available ({})\n", first_line(why));
    return;
  }
  const auto& driver = tilejit::cuda::driver();
  fmt::print("cuda driver:    {}.{}\n", driver.version / 1000, (driver.version % 1000) / 10);
  const int count = tilejit::cuda::device_count();
  fmt::print("devices:        {}\n", count);
  for (int i = 0; i < count; ++i) {
    const auto& info = tilejit::cuda::device_info(i);
    fmt::print("  [{}] {} (sm_{}{}, {} SMs, {:.1f} GiB, {} KiB smem/block opt-in)\n", i, info.name,
               info.cc_major, info.cc_minor, info.multiprocessors,
               static_cast<double>(info.total_memory) / (1024.0 * 1024.0 * 1024.0),
               info.max_shared_per_block_optin / 1024);
  }
}

void run() {
  fmt::print("tilejit {}\n", tilejit::detail::tilejit_version());
  print_host_compiler();
  print_nvcc();
  print_cuda_section();
}

const tilejit::cli::Registration kRegistration{
    "info", [](CLI::App& app) {
      CLI::App* cmd =
          app.add_subcommand("info", "Show the tilejit version and the toolchains found");
      cmd->callback(run);
    }};

}  // namespace

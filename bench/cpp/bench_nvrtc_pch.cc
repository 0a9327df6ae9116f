// Cold NVRTC compiles of header-heavy Programs with and without precompiled headers, in one
// process (a PCH is valid only in the NVRTC instance that wrote it: docs/cache.md):
//
//   bench_nvrtc_pch [--target T] first.json second.json ...
//
// Per mode (TILEJIT_NVRTC_PCH=0, then on), each Program is compiled through compile() into a
// fresh cache directory, in order; with PCHs on, the first writes the PCH and the others load
// it when their #include prefix is the same (TileLang's GEMM at other tile sizes). Prints the
// wall and CPU seconds of each compile and the ratios on/off. CPU seconds (this process's user
// + system time: NVRTC runs in it) stay meaningful on a machine busy with other work.
// No GPU needed.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cache/memory_cache.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace {

using namespace tilejit;

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

struct Timing {
  double wall = 0;
  double cpu = 0;
  std::string pch;
};

std::vector<Timing> compile_all(const std::vector<Program>& programs, const std::string& target,
                                bool pch) {
  detail::TempDir cache("tilejit-bench-pch");
  ::setenv("TILELANG_CACHE_DIR", cache.path().c_str(), 1);
  ::setenv("TILEJIT_NVRTC_PCH", pch ? "1" : "0", 1);
  detail::MemoryCache::global().clear();
  CompileOptions options;
  options.execution_backend = "nvrtc";
  options.target = target;
  std::vector<Timing> timings;
  for (const Program& program : programs) {
    const double cpu = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    Kernel kernel = compile(program, options);
    Timing t;
    t.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    t.cpu = cpu_seconds() - cpu;
    auto it = kernel.artifact().metadata.find("pch");
    t.pch =
        it == kernel.artifact().metadata.end() ? "" : it->second.substr(0, it->second.find(' '));
    timings.push_back(t);
  }
  return timings;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "cuda -arch=sm_90a";
  std::vector<Program> programs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--target" && i + 1 < argc) {
      target = argv[++i];
    } else {
      programs.push_back(Program::load(arg));
    }
  }
  if (programs.empty()) {
    std::fprintf(stderr, "usage: bench_nvrtc_pch [--target T] program.json...\n");
    return 2;
  }
  const std::vector<Timing> off = compile_all(programs, target, false);
  const std::vector<Timing> on = compile_all(programs, target, true);
  std::printf("bench_nvrtc_pch: cold NVRTC compile through compile(), %s\n", target.c_str());
  std::printf("%-28s %10s %10s %10s %10s %8s %8s  %s\n", "program", "off wall", "off cpu",
              "on wall", "on cpu", "wall x", "cpu x", "pch");
  for (size_t i = 0; i < programs.size(); ++i) {
    std::printf("%-28s %9.2fs %9.2fs %9.2fs %9.2fs %8.2f %8.2f  %s\n", programs[i].name.c_str(),
                off[i].wall, off[i].cpu, on[i].wall, on[i].cpu, on[i].wall / off[i].wall,
                on[i].cpu / off[i].cpu, on[i].pch.c_str());
  }
  return 0;
}

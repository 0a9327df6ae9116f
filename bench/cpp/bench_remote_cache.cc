// The remote cache tier (docs/cluster.md) against a private redis-server on loopback, in one
// run, printed as ratios (docs/PERFORMANCE.md records them):
//   1. cold compile (nothing cached anywhere; publishes to Redis);
//   2. remote hit: a fresh process with an empty disk cache, per kernel, up to a loaded Kernel;
//   3. local disk hit: a fresh process with the disk cache filled, per kernel;
//   4. 8 processes started together on one new key: how many of them compile (goal: 1).
// cpu backend (host compiler), so it runs on any machine.
//
//   bench_remote_cache [--kernels 16]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cache/memory_cache.h"
#include "compile/compile.h"
#include "redis_server.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using tilejit::detail::CompileSource;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

tilejit::Program program(int salt, int index) {
  return tilejit::ProgramBuilder(fmt::format("bench_remote_{}_{}", salt, index))
      .source(fmt::format("void bench_axpy(const float* A, float* B, int n) {{\n"
                          "  for (int i = 0; i < n; ++i) B[i] = A[i] * {}.0f + {}.0f;\n"
                          "}}\n",
                          index + 1, salt),
              tilejit::Language::kC)
      .tensor("A", "float32", {"n"})
      .tensor("B", "float32", {"n"})
      .launch(tilejit::Launch("bench_axpy"))
      .build();
}

const char* source_word(CompileSource source) {
  switch (source) {
    case CompileSource::kMemoryCache:
      return "memory";
    case CompileSource::kDiskCache:
      return "disk";
    case CompileSource::kRemoteCache:
      return "remote";
    case CompileSource::kBuilt:
      return "built";
  }
  return "?";
}

// Child: compiles kernels first..first+count-1 of `salt`, one line "ms <time> <source>" each.
int child(int salt, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    tilejit::detail::MemoryCache::global().clear();
    const auto start = Clock::now();
    const auto outcome = tilejit::detail::compile_with_outcome(program(salt, i), {});
    fmt::print("ms {:.4f} {}\n", ms_since(start), source_word(outcome.source));
  }
  return 0;
}

struct ChildLine {
  double ms;
  std::string source;
};

std::vector<ChildLine> parse(const std::string& output) {
  std::vector<ChildLine> lines;
  size_t pos = 0;
  while (pos < output.size()) {
    const size_t end = output.find('\n', pos);
    const std::string line = output.substr(pos, end - pos);
    if (line.starts_with("ms ")) {
      const size_t space = line.find(' ', 3);
      lines.push_back({std::stod(line.substr(3, space - 3)), line.substr(space + 1)});
    }
    pos = end == std::string::npos ? output.size() : end + 1;
  }
  return lines;
}

std::vector<ChildLine> run_child(const fs::path& cache, int salt, int first, int count) {
  ::setenv("TILELANG_CACHE_DIR", cache.c_str(), 1);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const auto result = tilejit::detail::run_process(
      {self, "--child", std::to_string(salt), std::to_string(first), std::to_string(count)},
      std::chrono::seconds(300));
  if (result.exit_code != 0) throw tilejit::Error("child failed: " + result.output);
  return parse(result.output);
}

// Per-kernel median of a child's lines, the first (toolchain probe, first connection) aside.
double per_kernel(const std::vector<ChildLine>& lines, const std::string& expected) {
  std::vector<double> times;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].source != expected)
      throw tilejit::Error(fmt::format("expected a {} hit, got {}", expected, lines[i].source));
    if (i > 0) times.push_back(lines[i].ms);
  }
  return median(times);
}

void bench(int kernels) {
  tilejit::testing::RedisServer redis;
  ::setenv("TILEJIT_REMOTE_CACHE", redis.url().c_str(), 1);
  ::setenv("TILEJIT_REMOTE_CACHE_SECRET", "bench-cluster-secret-0123456789", 1);
  tilejit::detail::TempDir dir("bench-remote");
  const int salt = static_cast<int>(::getpid() % 100000);

  // 1. Cold: a child with an empty disk cache and nothing on the server; it publishes.
  const std::vector<ChildLine> cold = run_child(dir.path() / "a", salt, 0, kernels);
  const double cold_ms = per_kernel(cold, "built");
  // 2. Remote hits: another fresh process, another empty disk cache.
  const double remote_ms = per_kernel(run_child(dir.path() / "b", salt, 0, kernels), "remote");
  // 3. Disk hits: a fresh process on the cache that step 2 filled.
  const double disk_ms = per_kernel(run_child(dir.path() / "b", salt, 0, kernels), "disk");
  fmt::print("cold compile:               {:.2f} ms per kernel\n", cold_ms);
  fmt::print(
      "remote hit, fresh process:  {:.3f} ms per kernel: {:.1f}x faster than cold "
      "(goal <= 2 ms and >= 20x)\n",
      remote_ms, cold_ms / remote_ms);
  fmt::print("disk hit, fresh process:    {:.3f} ms per kernel: remote/disk {:.2f}x\n", disk_ms,
             remote_ms / disk_ms);

  // 4. Eight processes start together on one key nobody has.
  constexpr int kProcesses = 8;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::pair<pid_t, fs::path>> children;
  for (int p = 0; p < kProcesses; ++p) {
    const fs::path out = dir.path() / fmt::format("stampede{}.txt", p);
    ::setenv("TILELANG_CACHE_DIR", (dir.path() / fmt::format("s{}", p)).c_str(), 1);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT,
                                     0600);
    std::vector<std::string> args = {self, "--child", std::to_string(salt), "1000", "1"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ) != 0)
      throw tilejit::Error("cannot start a child");
    posix_spawn_file_actions_destroy(&actions);
    children.emplace_back(pid, out);
  }
  int built = 0, remote = 0;
  std::vector<double> times;
  for (const auto& [pid, out] : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::vector<ChildLine> lines = parse(tilejit::detail::read_file(out));
    if (lines.size() != 1) throw tilejit::Error("a stampede child reported nothing");
    built += lines[0].source == "built";
    remote += lines[0].source == "remote";
    times.push_back(lines[0].ms);
  }
  fmt::print(
      "{} processes on one new key: {} compiled, {} got it from Redis (goal: 1 compile); "
      "slowest {:.1f} ms, cold compile {:.1f} ms\n",
      kProcesses, built, remote, *std::max_element(times.begin(), times.end()), cold_ms);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 4 && args[0] == "--child")
      return child(std::stoi(args[1]), std::stoi(args[2]), std::stoi(args[3]));
    int kernels = 16;
    if (args.size() == 2 && args[0] == "--kernels") kernels = std::max(3, std::stoi(args[1]));
    fmt::print("bench_remote_cache ({} kernels, cpu backend, redis-server on loopback):\n",
               kernels);
    bench(kernels);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_remote_cache: {}\n", e.what());
    return 1;
  }
  return 0;
}

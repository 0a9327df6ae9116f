// The cost of tilejit's compile path around the compiler, measured in one run and printed as
// ratios (docs/PERFORMANCE.md records them):
//   1. cold compile (key, build, store, load) vs the bare compiler call on the same source;
//   2. a disk hit in a fresh process, up to a loaded Kernel, vs the cold compile, and the same
//      entries again in that process with the verified read and the load timed apart;
//   3. a memory hit: compile(program) again, and a jit object called again (for NVRTC also a
//      cpu Program's, once the driver has started its threads);
//   4. par_compile of N distinct kernels on every usable core vs one worker, each repeated and
//      interleaved, and for NVRTC the first call of a fresh process (a child per repeat), with
//      where each task's time went (the round trip to a worker, the worker's own time, a new
//      worker's start-up).
// For the cpu backend (host compiler) always; for NVRTC where libnvrtc exists (cold and
// par_compile) and a CUDA device exists (disk hit: loading a cubin needs the driver).
//
//   bench_cache [--backend cpu|nvrtc|all] [--kernels 64] [--repeats 5]
//   bench_cache --memory-hits N     # 3. alone, cpu backend, N hits of each (for callgrind)
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/shared_library.h"
#include "cache/disk_cache.h"
#include "cache/memory_cache.h"
#include "codegen/wrapper.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "cuda/nvrtc_worker.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using tilejit::CompileOptions;
using tilejit::Program;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

// The median without a fresh process's first kernel, which also pays the one-time costs.
double median_after_first(const std::vector<double>& values) {
  return values.size() < 2 ? 0.0 : median(std::vector<double>(values.begin() + 1, values.end()));
}

// A distinct Program per (salt, index): every one a new cache key.
Program cpu_program(int salt, int index) {
  return tilejit::ProgramBuilder(fmt::format("bench_cpu_{}_{}", salt, index))
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

Program cuda_program(int salt, int index) {
  return tilejit::ProgramBuilder(fmt::format("bench_cuda_{}_{}", salt, index))
      .source(fmt::format(
          "extern \"C\" __global__ void bench_axpy(const float* A, float* B, int n) {{\n"
          "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
          "  if (i < n) B[i] = A[i] * {}.0f + {}.0f;\n"
          "}}\n",
          index + 1, salt))
      .tensor("A", "float32", {"n"})
      .tensor("B", "float32", {"n"})
      .launch(tilejit::Launch("bench_axpy").with_grid({"ceildiv(n, 256)"}).with_block({256}))
      .build();
}

struct Backend {
  std::string name;
  CompileOptions options;
  bool can_load = true;  // false: NVRTC without a driver (build and store only)
  Program (*program)(int, int);
};

int unique_salt() {
  static int counter = 0;
  return static_cast<int>(::getpid() % 10000) * 1000 + counter++;
}

// The compiler call tilejit makes, made directly on the same source.
double bare_compile_ms(const Backend& backend, const Program& program) {
  if (backend.name == "cpu") {
    tilejit::detail::TempDir dir("bench-bare");
    tilejit::detail::write_file(dir.path() / "k.c", program.source);
    tilejit::detail::write_file(dir.path() / "k_host.c",
                                tilejit::detail::generate_cpu_wrapper(program));
    const auto& cc = tilejit::detail::HostCompiler::detect();
    const auto start = Clock::now();
    std::vector<std::string> argv = {cc.c_compiler, "-O2", "-fPIC", "-shared"};
    argv.insert(argv.end(), tilejit::detail::kCpuLibraryLayoutFlags.begin(),
                tilejit::detail::kCpuLibraryLayoutFlags.end());
    argv.insert(argv.end(), {"-o", (dir.path() / "k.so").string(), (dir.path() / "k.c").string(),
                             (dir.path() / "k_host.c").string(), "-lm"});
    auto result = tilejit::detail::run_process(argv, std::chrono::seconds(300));
    const double ms = ms_since(start);
    if (result.exit_code != 0) throw tilejit::Error("bare compile failed: " + result.output);
    return ms;
  }
  const auto resolved = tilejit::detail::resolve_options(program, backend.options);
  tilejit::cuda::NvrtcOptions options;
  options.arch = tilejit::cuda::CudaArch::parse(resolved.target.arch);
  options.source_name = program.name + ".cu";
  const auto start = Clock::now();
  (void)tilejit::cuda::compile_cuda(program.source, options);
  return ms_since(start);
}

// One cold compile through tilejit: key, build, store, and load where a device allows.
// `placement` is where NVRTC runs when there is no device (par_compile asks for workers).
double cold_compile_ms(
    const Backend& backend, const Program& program,
    tilejit::detail::CompilerPlacement placement = tilejit::detail::CompilerPlacement::kInProcess) {
  tilejit::detail::MemoryCache::global().clear();
  const auto start = Clock::now();
  if (backend.can_load) {
    (void)tilejit::detail::compile_with_outcome(program, backend.options, placement);
  } else {
    auto resolved = tilejit::detail::resolve_options(program, backend.options);
    resolved.compiler_placement = placement;
    Program with_outputs = program;
    with_outputs.out_idx = resolved.out_idx;
    const std::string key = tilejit::cache_key(program, backend.options);
    auto artifact = tilejit::detail::backend_named(resolved.backend).build(with_outputs, resolved);
    if (auto disk = tilejit::detail::DiskCache::from_env()) disk->store(key, artifact);
  }
  return ms_since(start);
}

struct ChildTimes {
  std::vector<double> hits;              // ms per disk hit through compile()
  std::vector<double> read_ms, load_ms;  // the same entries again, read and load timed apart
};

ChildTimes run_child(const std::string& backend, int salt, int count) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  tilejit::detail::ProcessResult result = tilejit::detail::run_process(
      {self, "--child-disk-hit", backend, std::to_string(salt), std::to_string(count)},
      std::chrono::seconds(300));
  if (result.exit_code != 0) throw tilejit::Error("disk-hit child failed: " + result.output);
  ChildTimes times;
  size_t pos = 0;
  while (pos < result.output.size()) {
    const size_t end = result.output.find('\n', pos);
    const std::string line = result.output.substr(pos, end - pos);
    if (line.starts_with("ms ")) times.hits.push_back(std::stod(line.substr(3)));
    if (line.starts_with("split ")) {
      const size_t space = line.find(' ', 6);
      times.read_ms.push_back(std::stod(line.substr(6, space - 6)));
      times.load_ms.push_back(std::stod(line.substr(space + 1)));
    }
    pos = end == std::string::npos ? result.output.size() : end + 1;
  }
  return times;
}

Backend make_backend(const std::string& name) {
  if (name == "cpu") return {"cpu", {}, true, &cpu_program};
  // The cpu backend's libraries in the linker's default layout (separate code pages, RELRO),
  // which the backend's own flags turn off for a faster dlopen (src/backend/cpu.cc).
  if (name == "cpu-hardened") {
    Backend backend{"cpu", {}, true, &cpu_program};
    backend.options.compile_flags = {"-Wl,-z,separate-code", "-Wl,-z,relro"};
    return backend;
  }
  Backend backend{"nvrtc", {}, true, &cuda_program};
  backend.options.execution_backend = "nvrtc";
  std::string why;
  backend.can_load = tilejit::cuda::driver_available(&why);
  backend.options.target = backend.can_load ? "cuda" : "cuda -arch=sm_90";
  return backend;
}

// `hits` compile(program) memory hits and `jit_hits` jit(args) memory hits, after one compile of
// each (a build or a disk hit). With `--memory-hits N`, valgrind --tool=callgrind counts the
// instructions of one hit: the inclusive cost of tilejit::compile (of Jit::kernel_for for
// jit), at N minus at 0, divided by N.
void memory_hits(const Backend& backend, const Program& program, int hits, int jit_hits,
                 std::string_view label = "") {
  (void)tilejit::compile(program, backend.options);
  auto start = Clock::now();
  for (int i = 0; i < hits; ++i) (void)tilejit::compile(program, backend.options);
  const double compile_ns = hits > 0 ? ms_since(start) * 1e6 / hits : 0.0;
  auto jitted = tilejit::jit([&](int) { return program; }, backend.options);
  (void)jitted(0);
  start = Clock::now();
  for (int i = 0; i < jit_hits; ++i) (void)jitted(0);
  const double jit_ns = jit_hits > 0 ? ms_since(start) * 1e6 / jit_hits : 0.0;
  fmt::print(
      "memory hit{}:  compile(program) {:.0f} ns (per-thread memo: Program, options and option "
      "env vars compared); jit(args) {:.0f} ns (goal <= 200 ns)\n",
      label, compile_ns, jit_ns);
}

// --- 4. par_compile --------------------------------------------------------------------------

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

// One par_compile of `kernels` new Programs and where its time went: each task is one cold
// compile (key, build in a worker or in-process, load where a device allows); the NVRTC
// worker pool's counters say which part of a task was the round trip to a worker and which part
// of that the worker's own compile, and how long new workers took to their first answer.
struct ParRun {
  double wall_ms = 0;
  double task_ms = 0;        // mean per task, in the compile thread
  double round_trip_ms = 0;  // mean per answered compile
  double worker_ms = 0;      // mean, the worker's own time on a request
  double new_workers = 0;
  double first_answer_ms = 0;  // mean over new workers: spawn to first answer
  double first_worker_ms = 0;  // mean, the worker's own time on that first request

  std::string serialize() const {
    return fmt::format("{} {} {} {} {} {} {}", wall_ms, task_ms, round_trip_ms, worker_ms,
                       new_workers, first_answer_ms, first_worker_ms);
  }
  static ParRun parse(const std::string& text) {
    ParRun run;
    if (std::sscanf(text.c_str(), "%lf %lf %lf %lf %lf %lf %lf", &run.wall_ms, &run.task_ms,
                    &run.round_trip_ms, &run.worker_ms, &run.new_workers, &run.first_answer_ms,
                    &run.first_worker_ms) != 7) {
      throw tilejit::Error("unreadable par_compile child line: " + text);
    }
    return run;
  }
};

ParRun par_run(const Backend& backend, int kernels, int workers,
               tilejit::detail::CompilerPlacement placement) {
  std::vector<Program> programs;
  const int par_salt = unique_salt();
  for (int i = 0; i < kernels; ++i) programs.push_back(backend.program(par_salt, i));
  const tilejit::cuda::NvrtcWorkerStats before = tilejit::cuda::nvrtc_worker_stats();
  std::atomic<uint64_t> task_ns{0};
  const auto start = Clock::now();
  tilejit::detail::par_compile_tasks(
      programs.size(),
      [&](size_t i) {
        const double ms = cold_compile_ms(backend, programs[i], placement);
        task_ns.fetch_add(static_cast<uint64_t>(ms * 1e6));
        return tilejit::detail::CompileReport{};
      },
      [](size_t i) { return std::to_string(i); }, workers, false);
  ParRun run;
  run.wall_ms = ms_since(start);
  const tilejit::cuda::NvrtcWorkerStats after = tilejit::cuda::nvrtc_worker_stats();
  run.task_ms = static_cast<double>(task_ns.load()) / 1e6 / kernels;
  const auto mean_ms = [](uint64_t ns, uint64_t count) {
    return count == 0 ? 0.0 : static_cast<double>(ns) / 1e6 / static_cast<double>(count);
  };
  const uint64_t answered = after.answered - before.answered;
  run.round_trip_ms = mean_ms(after.round_trip_ns - before.round_trip_ns, answered);
  run.worker_ms = mean_ms(after.worker_ns - before.worker_ns, answered);
  const uint64_t first = after.first_answers - before.first_answers;
  run.new_workers = static_cast<double>(after.spawned - before.spawned);
  run.first_answer_ms = mean_ms(after.first_answer_ns - before.first_answer_ns, first);
  run.first_worker_ms = mean_ms(after.first_worker_ns - before.first_worker_ns, first);
  return run;
}

// A fresh process's first par_compile, then its second: what a program pays the first time
// (its workers start inside the timed call) and once its pool is warm. Before both, one
// in-process compile, so that loading NVRTC (and the driver) in this process is not counted.
int child_par_compile(const std::string& name, int kernels) {
  const Backend backend = make_backend(name);
  ::setenv("TILELANG_DISABLE_CACHE", "1", 1);
  (void)cold_compile_ms(backend, backend.program(unique_salt(), 0));
  using tilejit::detail::CompilerPlacement;
  fmt::print(
      "par first {}\n",
      par_run(backend, kernels, usable_cores(), CompilerPlacement::kWorkerProcess).serialize());
  fmt::print(
      "par again {}\n",
      par_run(backend, kernels, usable_cores(), CompilerPlacement::kWorkerProcess).serialize());
  return 0;
}

struct ParSeries {
  std::string label;
  int workers = 1;
  std::vector<ParRun> runs;
  double median_wall() const {
    std::vector<double> walls;
    for (const ParRun& run : runs) walls.push_back(run.wall_ms);
    return median(walls);
  }
};

void print_series(const ParSeries& series, int kernels) {
  for (size_t r = 0; r < series.runs.size(); ++r) {
    const ParRun& run = series.runs[r];
    // Busy: the share of (threads x wall) spent inside tasks; the rest is thread start-up,
    // dispatch, and the tail where some threads have no task left.
    const double busy = 100.0 * run.task_ms * kernels / (series.workers * run.wall_ms);
    std::string line =
        fmt::format("    {:<24} {}: {:5.0f} ms | busy {:3.0f}% | per task {:5.1f} ms", series.label,
                    r + 1, run.wall_ms, busy, run.task_ms);
    if (run.round_trip_ms > 0) {
      line += fmt::format(" = round trip {:5.1f} (the worker's own {:5.1f}) + the rest {:4.1f}",
                          run.round_trip_ms, run.worker_ms, run.task_ms - run.round_trip_ms);
    }
    if (run.new_workers > 0) {
      line += fmt::format(
          " | {:.0f} new workers: first answer {:.1f} ms after spawn = start-up {:.1f} + first "
          "compile {:.1f}",
          run.new_workers, run.first_answer_ms, run.first_answer_ms - run.first_worker_ms,
          run.first_worker_ms);
    }
    fmt::print("{}\n", line);
  }
}

void par_compile_section(const Backend& backend, int kernels, int repeats) {
  using tilejit::detail::CompilerPlacement;
  const int cores = usable_cores();
  const CompilerPlacement workers = CompilerPlacement::kWorkerProcess;
  ParSeries first{fmt::format("{} workers, first call", cores), cores, {}};
  ParSeries again{fmt::format("{} workers, 2nd call", cores), cores, {}};
  const bool pool = backend.name == "nvrtc";  // NVRTC compiles in worker processes
  ParSeries warm{fmt::format("{} workers{}", cores, pool ? ", warm pool" : ""), cores, {}};
  ParSeries serial{pool ? "1 worker, warm" : "1 worker", 1, {}};
  ParSeries alone{"1 new worker alone", 1, {}};
  // Warm this process's pool first: every worker started, NVRTC loaded in each.
  (void)par_run(backend, kernels, cores, workers);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  for (int r = 0; r < repeats; ++r) {
    // Interleaved, the order alternating, so that the host's drift (it moved the 1-worker time
    // by 1.7x between runs on the H200 host) reaches every series alike.
    if (r % 2 == 1) serial.runs.push_back(par_run(backend, kernels, 1, workers));
    warm.runs.push_back(par_run(backend, kernels, cores, workers));
    if (pool) {
      // A fresh process's par_compile of all the kernels, and of one kernel (one new worker
      // starting alone, against `cores` starting together: is start-up contended?).
      for (const int count : {kernels, 1}) {
        const tilejit::detail::ProcessResult child = tilejit::detail::run_process(
            {self, "--child-par-compile", backend.name, std::to_string(count)},
            std::chrono::seconds(600));
        if (child.exit_code != 0) throw tilejit::Error("par_compile child failed: " + child.output);
        for (size_t pos = 0; pos < child.output.size();) {
          const size_t end = std::min(child.output.find('\n', pos), child.output.size());
          const std::string line = child.output.substr(pos, end - pos);
          const std::string rest = line.size() > 10 ? line.substr(10) : std::string();
          if (line.starts_with("par first ")) {
            (count == 1 ? alone : first).runs.push_back(ParRun::parse(rest));
          }
          if (line.starts_with("par again ") && count != 1) {
            again.runs.push_back(ParRun::parse(rest));
          }
          pos = end + 1;
        }
      }
    }
    if (r % 2 == 0) serial.runs.push_back(par_run(backend, kernels, 1, workers));
  }
  const double serial_ms = serial.median_wall();
  const double warm_ms = warm.median_wall();
  fmt::print(
      "par_compile of {} kernels:  {} workers {:.0f} ms, 1 worker {:.0f} ms (medians of {}): "
      "speedup {:.1f}x on {} cores (goal >= 14x)\n",
      kernels, cores, warm_ms, serial_ms, repeats, serial_ms / warm_ms, cores);
  if (!first.runs.empty()) {
    const double first_ms = first.median_wall();
    fmt::print(
        "  the first par_compile of a fresh process (starts its NVRTC workers): {:.0f} ms "
        "({:.1f}x; goal >= 14x), its second {:.0f} ms ({:.1f}x)\n",
        first_ms, serial_ms / first_ms, again.median_wall(), serial_ms / again.median_wall());
    // Medians over the repeats of each run's means.
    auto median_of = [](const ParSeries& series, auto field) {
      std::vector<double> values;
      for (const ParRun& run : series.runs) values.push_back(field(run));
      return median(values);
    };
    const auto answer = [](const ParRun& run) { return run.first_answer_ms; };
    const auto compile = [](const ParRun& run) { return run.first_worker_ms; };
    const auto start_up = [](const ParRun& run) {
      return run.first_answer_ms - run.first_worker_ms;
    };
    const auto own = [](const ParRun& run) { return run.worker_ms; };
    fmt::print(
        "  a new worker, spawn to first answer: alone {:.1f} ms (start-up {:.1f} + first compile "
        "{:.1f}); {} starting together {:.1f} ms (start-up {:.1f} + first compile {:.1f}); a "
        "warm compile in a worker: {:.1f} ms with 1 busy, {:.1f} ms with {} busy\n",
        median_of(alone, answer), median_of(alone, start_up), median_of(alone, compile), cores,
        median_of(first, answer), median_of(first, start_up), median_of(first, compile),
        median_of(serial, own), median_of(warm, own), cores);
  }
  fmt::print("  each run (a task is one cold compile{}):\n",
             pool ? "; its round trip is to a worker process" : "");
  for (const ParSeries* series : {&serial, &warm, &first, &again}) print_series(*series, kernels);
  print_series(alone, 1);
  if (backend.name == "nvrtc") {
    const double threads = par_run(backend, kernels, cores, CompilerPlacement::kInProcess).wall_ms;
    const double one_thread = par_run(backend, kernels, 1, CompilerPlacement::kInProcess).wall_ms;
    fmt::print(
        "  reference, NVRTC on threads of this process:  {} threads {:.0f} ms, 1 thread {:.0f} "
        "ms: {:.1f}x\n",
        cores, threads, one_thread, one_thread / threads);
  }
}

void bench_backend(const std::string& name, int kernels, int repeats) {
  const Backend backend = make_backend(name);
  fmt::print("== {} backend{}\n", name,
             backend.can_load ? "" : " (no CUDA driver: build + store, no load)");
  tilejit::detail::TempDir cache_dir("bench-cache");
  ::setenv("TILELANG_CACHE_DIR", (cache_dir.path() / "cache").c_str(), 1);
  ::unsetenv("TILELANG_DISABLE_CACHE");

  // 1. Cold compile vs the bare compiler: distinct sources (nothing either could reuse from the
  // other), which of the two goes first alternating, so that drift hits both alike.
  (void)cold_compile_ms(backend,
                        backend.program(unique_salt(), 0));  // warm up (toolchain probe, dlopen)
  std::vector<double> cold, bare;
  const int salt = unique_salt();
  const int bare_salt = unique_salt();
  for (int i = 0; i < repeats; ++i) {
    if (i % 2 == 0) bare.push_back(bare_compile_ms(backend, backend.program(bare_salt, i)));
    cold.push_back(cold_compile_ms(backend, backend.program(salt, i)));
    if (i % 2 == 1) bare.push_back(bare_compile_ms(backend, backend.program(bare_salt, i)));
  }
  const double cold_ms = median(cold), bare_ms = median(bare);
  fmt::print("cold compile:  tilejit {:.2f} ms, bare compiler {:.2f} ms: {:.3f}x (goal <= 1.05x)\n",
             cold_ms, bare_ms, cold_ms / bare_ms);

  // 2. Disk hits in a fresh process: the entries stored above, loaded by a new process (without
  // a device: the key and the verified read, everything but loading the cubin).
  {
    const ChildTimes child = run_child(name, salt, repeats);
    const std::vector<double>& times = child.hits;
    if (times.size() >= 2) {
      const double per_kernel = median_after_first(times);
      fmt::print(
          "disk hit, fresh process{}:  first kernel {:.3f} ms (one-time costs: toolchain "
          "fingerprint, driver init), then {:.3f} ms per kernel (goal <= 0.1 ms); cold / hit = "
          "{:.0f}x (goal >= 30x)\n",
          backend.can_load ? "" : " (key + verified read; no device to load on)", times[0],
          per_kernel, cold_ms / per_kernel);
    }
    if (child.read_ms.size() >= 2) {
      fmt::print(
          "disk hit split, the same entries again in that process:  key + verified read {:.3f} "
          "ms, load {:.3f} ms per kernel\n",
          median_after_first(child.read_ms), median_after_first(child.load_ms));
    }
  }

  // 2b. The same for libraries in the linker's hardened layout: what the cpu backend's layout
  // buys a disk hit.
  if (name == "cpu") {
    const Backend hardened = make_backend("cpu-hardened");
    const int hardened_salt = unique_salt();
    for (int i = 0; i < repeats; ++i) {
      (void)cold_compile_ms(hardened, hardened.program(hardened_salt, i));
    }
    const ChildTimes child = run_child("cpu-hardened", hardened_salt, repeats);
    if (child.hits.size() >= 2 && child.load_ms.size() >= 2) {
      fmt::print(
          "disk hit, fresh process, libraries linked with -z separate-code -z relro (the "
          "linker's default):  {:.3f} ms per kernel; load {:.3f} ms\n",
          median_after_first(child.hits), median_after_first(child.load_ms));
    }
  }

  // 3. Memory hits.
  if (backend.can_load) {
    memory_hits(backend, backend.program(salt, 0), 400000, 2000000);
    // Once the CUDA driver has started its threads, every reference count is an atomic
    // operation (libstdc++ skips that only in a single-threaded process): a cpu Program's hits
    // here show that cost apart from the backend's (the cpu section ran single-threaded).
    if (name == "nvrtc") {
      memory_hits(make_backend("cpu"), cpu_program(unique_salt(), 0), 400000, 2000000,
                  " (a cpu Program, after the CUDA driver's init)");
    }
  }

  // 4. par_compile of `kernels` new Programs, all cores vs one worker, disk cache off.
  ::setenv("TILELANG_DISABLE_CACHE", "1", 1);
  par_compile_section(backend, kernels, repeats);
  ::unsetenv("TILELANG_DISABLE_CACHE");
}

int child_disk_hit(const std::string& name, int salt, int count) {
  const Backend backend = make_backend(name);
  for (int i = 0; i < count; ++i) {
    const Program program = backend.program(salt, i);
    const auto start = Clock::now();
    bool hit = false;
    if (backend.can_load) {
      hit = tilejit::detail::compile_with_outcome(program, backend.options).source ==
            tilejit::detail::CompileSource::kDiskCache;
    } else {
      // What compile() does on a disk hit up to backend.load: the key, then the verified read,
      // which has the Program at hand (out_idx resolved) as in compile().
      const std::string key = tilejit::detail::compile_cache_key(program, backend.options);
      auto disk = tilejit::detail::DiskCache::from_env();
      Program keyed = program;
      keyed.out_idx = tilejit::detail::resolve_options(program, backend.options).out_idx;
      hit = disk && disk->lookup(key, &keyed).artifact.has_value();
    }
    const double ms = ms_since(start);
    if (!hit) {
      fmt::print(stderr, "kernel {} was not a disk hit\n", i);
      return 1;
    }
    fmt::print("ms {}\n", ms);
  }
  if (!backend.can_load) return 0;
  // Where a hit's time goes: the same entries again in this process, the verified read and the
  // load (the Binder, and cuLibraryLoadData or dlopen) timed apart. Warmer than the hits above
  // (the page cache and the process's memos hold them), so only the split is read from it.
  tilejit::detail::MemoryCache::global().clear();
  for (int i = 0; i < count; ++i) {
    const Program program = backend.program(salt, i);
    const auto start = Clock::now();
    const std::string key = tilejit::detail::compile_cache_key(program, backend.options);
    Program keyed = program;
    keyed.out_idx = tilejit::detail::resolve_options(program, backend.options).out_idx;
    auto found = tilejit::detail::DiskCache::from_env()->lookup(key, &keyed);
    const double read_ms = ms_since(start);
    const auto load_start = Clock::now();
    (void)tilejit::detail::make_kernel(std::move(*found.artifact), key);
    fmt::print("split {} {}\n", read_ms, ms_since(load_start));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || !args[0].starts_with("--child-")) fmt::print("bench_cache:\n");
  try {
    if (args.size() == 4 && args[0] == "--child-disk-hit") {
      return child_disk_hit(args[1], std::stoi(args[2]), std::stoi(args[3]));
    }
    if (args.size() == 3 && args[0] == "--child-par-compile") {
      return child_par_compile(args[1], std::stoi(args[2]));
    }
    if (args.size() == 2 && args[0] == "--memory-hits") {
      const int hits = std::stoi(args[1]);
      memory_hits(make_backend("cpu"), cpu_program(unique_salt(), 0), hits, hits);
      return 0;
    }
    std::string which = "all";
    int kernels = 64, repeats = 5;
    for (size_t i = 0; i + 1 < args.size(); i += 2) {
      if (args[i] == "--backend")
        which = args[i + 1];
      else if (args[i] == "--kernels")
        kernels = std::stoi(args[i + 1]);
      else if (args[i] == "--repeats")
        repeats = std::max(2, std::stoi(args[i + 1]));
    }
    for (const std::string name : {"cpu", "nvrtc"}) {
      if (which != "all" && which != name) continue;
      try {
        bench_backend(name, kernels, repeats);
      } catch (const tilejit::NotAvailableError& e) {
        fmt::print("== {} backend: skipped ({})\n", name, e.what());
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_cache: {}\n", e.what());
    return 1;
  }
  return 0;
}

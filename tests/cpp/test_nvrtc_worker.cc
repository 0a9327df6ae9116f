// NVRTC in worker processes (src/cuda/nvrtc_worker.h) without a GPU: the same bytes and the
// same exceptions as in-process compile_cuda(), concurrency, workers that die idle or
// mid-compile, a worker executable that always crashes, answers garbage or is missing, the
// wire format's decoder on truncated and corrupted input, and no zombie children left behind.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <typeinfo>

#include <fmt/format.h>

#include "backend/backend.h"
#include "cuda/nvrtc.h"
#include "cuda/nvrtc_worker.h"
#include "cuda/nvrtc_worker_protocol.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

extern char** environ;

namespace tilejit {
namespace {

namespace fs = std::filesystem;
namespace worker = cuda::worker;
using cuda::CudaArch;
using cuda::NvrtcOptions;
using cuda::NvrtcOutput;

#define REQUIRE_NVRTC()                                      \
  do {                                                       \
    std::string why_;                                        \
    if (!cuda::nvrtc_available(&why_)) GTEST_SKIP() << why_; \
  } while (0)

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

NvrtcOptions options_for(const std::string& source_name, const std::string& arch = "sm_90") {
  NvrtcOptions options;
  options.arch = CudaArch::parse(arch);
  options.source_name = source_name;
  return options;
}

// Kernels that differ in more than a constant: templates, shared memory, warp shuffles,
// macros from the options, a warning in the log.
std::string kernel_source(int index) {
  switch (index % 4) {
    case 0:
      return fmt::format(
          "template <int N> __device__ float poly(float x) {{\n"
          "  float r = 0.f;\n"
          "#pragma unroll\n"
          "  for (int i = 0; i < N; ++i) r = r * x + (float)(i * {} % 7);\n"
          "  return r;\n"
          "}}\n"
          "extern \"C\" __global__ void poly_{}(const float* x, float* y, int n) {{\n"
          "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
          "  if (i < n) y[i] = poly<{}>(x[i]);\n"
          "}}\n",
          index + 3, index, 5 + index % 11);
    case 1:
      return fmt::format(
          "extern \"C\" __global__ void block_sum_{}(const double* x, double* out, int n) {{\n"
          "  __shared__ double partial[{}];\n"
          "  double v = 0.0;\n"
          "  for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[i] * {}.5;\n"
          "  for (int offset = 16; offset > 0; offset /= 2)\n"
          "    v += __shfl_down_sync(0xffffffffu, v, offset);\n"
          "  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;\n"
          "  __syncthreads();\n"
          "  if (threadIdx.x == 0) {{\n"
          "    double s = 0.0;\n"
          "    for (int w = 0; w < blockDim.x / 32; ++w) s += partial[w];\n"
          "    out[blockIdx.x] = s;\n"
          "  }}\n"
          "}}\n",
          index, 32, index);
    case 2:
      // SCALE and OFFSET come from NvrtcOptions::defines.
      return fmt::format(
          "#include <tilejit/cuda_device.h>\n"
          "extern \"C\" __global__ void affine_{}(const int* a, long long* b, int n) {{\n"
          "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
          "  if (i < n) b[i] = (long long)a[i] * SCALE + OFFSET + {};\n"
          "}}\n",
          index, index);
    default:
      // `unused` makes NVRTC write a warning into the log of a successful compile.
      return fmt::format(
          "extern \"C\" __global__ void reverse_{}(unsigned short* v, int n) {{\n"
          "  int unused = {};\n"
          "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
          "  if (i < n / 2) {{ unsigned short t = v[i]; v[i] = v[n - 1 - i]; v[n - 1 - i] = t; "
          "}}\n"
          "}}\n",
          index, index);
  }
}

NvrtcOptions kernel_options(int index) {
  NvrtcOptions options = options_for(fmt::format("kernel_{}.cu", index));
  if (index % 4 == 2) {
    options.defines = {{"SCALE", std::to_string(index + 2)}, {"OFFSET", "(-7)"}};
  }
  if (index % 3 == 1) options.flags = {"--use_fast_math"};
  if (index % 5 == 3) options.verbose = true;
  return options;
}

void expect_same_output(const NvrtcOutput& actual, const NvrtcOutput& expected,
                        const std::string& what) {
  EXPECT_EQ(actual.binary_kind, expected.binary_kind) << what;
  EXPECT_EQ(actual.target, expected.target) << what;
  EXPECT_EQ(actual.options, expected.options) << what;
  EXPECT_EQ(actual.log, expected.log) << what;
  EXPECT_EQ(actual.dependencies, expected.dependencies) << what;
  EXPECT_EQ(actual.lowered_names, expected.lowered_names) << what;
  EXPECT_EQ(actual.pch, expected.pch) << what;
  EXPECT_EQ(actual.binary.size(), expected.binary.size()) << what;
  EXPECT_TRUE(actual.binary == expected.binary) << what << ": the binaries differ";
}

// The processes whose parent is this one and that are zombies (exited, never reaped). Reads
// /proc instead of calling waitpid(-1), which would reap other code's children.
std::vector<int> zombie_children() {
  std::vector<int> zombies;
  const pid_t self = ::getpid();
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == self && state == 'Z') zombies.push_back(std::stoi(name));
  }
  return zombies;
}

char process_state(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return 0;  // gone
  const size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

// Waits until `pid` has exited (a zombie or gone): kill() is asynchronous.
void wait_until_dead(int pid) {
  for (int i = 0; i < 5000; ++i) {
    const char state = process_state(pid);
    if (state == 0 || state == 'Z' || state == 'X') return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL() << "process " << pid << " did not die";
}

// A shell script in a private directory, for worker executables that misbehave.
fs::path write_script(const detail::TempDir& dir, const std::string& name,
                      const std::string& body) {
  const fs::path path = dir.path() / name;
  detail::write_file(path, "#!/bin/sh\n" + body);
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

TEST(NvrtcWorker, SameOutputAsInProcess) {
  REQUIRE_NVRTC();
  for (int index = 0; index < 6; ++index) {
    const std::string source = kernel_source(index);
    const NvrtcOptions options = kernel_options(index);
    const NvrtcOutput expected = cuda::compile_cuda(source, options);
    const NvrtcOutput actual = cuda::compile_cuda_in_worker(source, options);
    expect_same_output(actual, expected, options.source_name);
    EXPECT_EQ(actual.binary_kind, "cubin");
  }
  EXPECT_NE(cuda::compile_cuda(kernel_source(3), kernel_options(3)).log.find("unused"),
            std::string::npos)
      << "the warning kernel should leave a log to compare";
  EXPECT_FALSE(cuda::nvrtc_worker_stats().idle_pids.empty()) << "no worker process was used";
  EXPECT_TRUE(zombie_children().empty());
}

// One thread compiling one after another keeps using one warm worker: starting a worker (and
// NVRTC in it) per compile would cost more than the parallelism gains. Caught: a self-move in
// the pool emptied an idle worker's record and retired it every second compile.
TEST(NvrtcWorker, SequentialCompilesReuseOneWorker) {
  REQUIRE_NVRTC();
  (void)cuda::compile_cuda_in_worker(kernel_source(0), kernel_options(0));
  const cuda::NvrtcWorkerStats before = cuda::nvrtc_worker_stats();
  ASSERT_FALSE(before.idle_pids.empty());
  for (int index = 1; index < 6; ++index) {
    (void)cuda::compile_cuda_in_worker(kernel_source(index), kernel_options(index));
    const cuda::NvrtcWorkerStats now = cuda::nvrtc_worker_stats();
    EXPECT_EQ(now.spawned, before.spawned) << "compile " << index << " started a new worker";
    EXPECT_EQ(now.idle_pids, before.idle_pids) << "compile " << index;
  }
}

// The timing the pool accounts (bench_cache prints it): every answered compile once, the
// worker's own time inside the round trip (one clock, CLOCK_MONOTONIC, on both sides), and a
// new worker's first answer once, after its start-up.
TEST(NvrtcWorker, StatsAccountEachAnsweredCompileOnce) {
  REQUIRE_NVRTC();
  const cuda::NvrtcWorkerStats before = cuda::nvrtc_worker_stats();
  std::vector<int> indices = {4, 1, 5};
  for (int index : indices) {
    (void)cuda::compile_cuda_in_worker(kernel_source(index), kernel_options(index));
  }
  // A compile error is answered too.
  EXPECT_THROW(cuda::compile_cuda_in_worker("this is not CUDA", options_for("bad.cu")),
               CompileError);
  const cuda::NvrtcWorkerStats after = cuda::nvrtc_worker_stats();
  EXPECT_EQ(after.answered - before.answered, indices.size() + 1);
  const uint64_t worker_ns = after.worker_ns - before.worker_ns;
  EXPECT_GT(worker_ns, 0u);
  EXPECT_LE(worker_ns, after.round_trip_ns - before.round_trip_ns);
  EXPECT_EQ(after.first_answers - before.first_answers, after.spawned - before.spawned);
  EXPECT_GE(after.first_answers, 1u) << "the pool answered compiles without ever starting one";
  EXPECT_LE(after.first_worker_ns, after.first_answer_ns);
  EXPECT_LE(after.first_worker_ns, after.worker_ns);
}

TEST(NvrtcWorker, ListDependenciesCrossesLikeInProcess) {
  REQUIRE_NVRTC();
  NvrtcOptions options = kernel_options(2);
  options.list_dependencies = true;
  const NvrtcOutput expected = cuda::compile_cuda(kernel_source(2), options);
  expect_same_output(cuda::compile_cuda_in_worker(kernel_source(2), options), expected,
                     "list_dependencies");
}

// Name expressions go to the worker and the lowered names come back (template kernels and
// kernels with C++ linkage compiled by par_compile).
TEST(NvrtcWorker, LoweredNamesCrossLikeInProcess) {
  REQUIRE_NVRTC();
  const std::string source =
      "template <typename T> __global__ void twice(T* x) { x[0] *= 2; }\n"
      "namespace ns { __global__ void plain(float* x) { x[0] = 1; } }\n";
  NvrtcOptions options = kernel_options(0);
  options.name_expressions = {"twice<double>", "ns::plain"};
  const NvrtcOutput expected = cuda::compile_cuda(source, options);
  ASSERT_EQ(expected.lowered_names,
            (std::vector<std::string>{"_Z5twiceIdEvPT_", "_ZN2ns5plainEPf"}));
  expect_same_output(cuda::compile_cuda_in_worker(source, options), expected, "name_expressions");
}

// NVRTC resolves relative include directories against the working directory of the caller,
// which may have changed since the worker started.
TEST(NvrtcWorker, RelativeIncludeDirsResolveAgainstTheCallersDirectory) {
  REQUIRE_NVRTC();
  (void)cuda::compile_cuda_in_worker(kernel_source(0), kernel_options(0));  // a worker exists
  detail::TempDir dir("nvrtc-worker-cwd");
  fs::create_directories(dir.path() / "inc");
  detail::write_file(dir.path() / "inc" / "worker_scale.h", "#define WORKER_SCALE 37\n");
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  NvrtcOptions options = options_for("relative.cu");
  options.include_dirs = {"inc"};
  const std::string source =
      "#include \"worker_scale.h\"\n"
      "extern \"C\" __global__ void scale(float* x) { x[threadIdx.x] *= WORKER_SCALE; }\n";
  std::optional<NvrtcOutput> actual;
  std::string error;
  try {
    actual = cuda::compile_cuda_in_worker(source, options);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const NvrtcOutput expected = cuda::compile_cuda(source, options);
  fs::current_path(previous);
  ASSERT_TRUE(actual) << error;
  expect_same_output(*actual, expected, "relative include dir");
}

TEST(NvrtcWorker, CompileErrorCrossesWithLogOptionsAndSourceName) {
  REQUIRE_NVRTC();
  const NvrtcOptions options = options_for("broken_worker.cu");
  const std::string source =
      "extern \"C\" __global__ void k(float* x) {\n"
      "  x[0] = undeclared_name_1;\n"
      "  x[1] = undeclared_name_2;\n"
      "}\n";
  std::string in_process_what, in_process_log;
  try {
    cuda::compile_cuda(source, options);
    FAIL() << "a broken source compiled in process";
  } catch (const CompileError& e) {
    in_process_what = e.what();
    in_process_log = e.log();
  }
  try {
    cuda::compile_cuda_in_worker(source, options);
    FAIL() << "a broken source compiled in a worker";
  } catch (const CompileError& e) {
    EXPECT_EQ(std::string(e.what()), in_process_what);
    EXPECT_EQ(e.log(), in_process_log);
    EXPECT_NE(e.log().find("undeclared_name_2"), std::string::npos) << e.log();
    EXPECT_EQ(e.source_name(), "broken_worker.cu");
    EXPECT_NE(std::find(e.options().begin(), e.options().end(), "--gpu-architecture=sm_90"),
              e.options().end());
  }
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, ArgumentErrorCrossesWithItsType) {
  REQUIRE_NVRTC();
  const NvrtcOptions options = options_for("old.cu", "sm_30");
  try {
    cuda::compile_cuda_in_worker(kernel_source(1), options);
    FAIL() << "sm_30 was accepted";
  } catch (const CompileError& e) {
    FAIL() << "an ArgumentError crossed as CompileError: " << e.what();
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("sm_30"), std::string::npos) << e.what();
  }
}

TEST(NvrtcWorker, ConcurrentCompilesFromEightThreads) {
  REQUIRE_NVRTC();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 3;
  std::vector<NvrtcOutput> expected(kThreads * kPerThread);
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    expected[i] = cuda::compile_cuda(kernel_source(100 + i), kernel_options(100 + i));
  }
  std::vector<NvrtcOutput> actual(kThreads * kPerThread);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int k = 0; k < kPerThread; ++k) {
          const int i = t * kPerThread + k;
          actual[i] = cuda::compile_cuda_in_worker(kernel_source(100 + i), kernel_options(100 + i));
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    expect_same_output(actual[i], expected[i], kernel_options(100 + i).source_name);
  }
  const cuda::NvrtcWorkerStats stats = cuda::nvrtc_worker_stats();
  EXPECT_TRUE(stats.busy_pids.empty());
  cpu_set_t set;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_LE(static_cast<int>(stats.idle_pids.size()), CPU_COUNT(&set)) << "more workers than cores";
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, IdleWorkerKilledIsReplacedTransparently) {
  REQUIRE_NVRTC();
  (void)cuda::compile_cuda_in_worker(kernel_source(0), kernel_options(0));
  const cuda::NvrtcWorkerStats before = cuda::nvrtc_worker_stats();
  ASSERT_FALSE(before.idle_pids.empty());
  for (int pid : before.idle_pids) ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int pid : before.idle_pids) wait_until_dead(pid);

  const NvrtcOutput expected = cuda::compile_cuda(kernel_source(5), kernel_options(5));
  expect_same_output(cuda::compile_cuda_in_worker(kernel_source(5), kernel_options(5)), expected,
                     "after the idle workers were killed");
  const cuda::NvrtcWorkerStats after = cuda::nvrtc_worker_stats();
  EXPECT_EQ(after.retried, before.retried) << "a dead idle worker should be noticed before use";
  EXPECT_GT(after.spawned, before.spawned);
  for (int pid : before.idle_pids) {
    EXPECT_EQ(std::count(after.idle_pids.begin(), after.idle_pids.end(), pid), 0);
    EXPECT_EQ(process_state(pid), 0) << "killed worker " << pid << " was not reaped";
  }
  EXPECT_TRUE(zombie_children().empty());
}

// A kernel that takes NVRTC about a second: 400 dependent statements of transcendental math
// and scattered loads (measured here: 300 take 0.8 s), long enough for the test to see the
// worker busy and kill it before it answers.
std::string slow_kernel_source() {
  std::string source =
      "extern \"C\" __global__ void slow(const float* x, float* y) {\n"
      "  float acc = x[threadIdx.x];\n";
  for (int i = 0; i < 400; ++i) {
    source += fmt::format(
        "  acc = acc * 0.999f + __sinf(acc + {}.5f) * x[(threadIdx.x + {}) & 1023];\n", i, i * 7);
  }
  return source + "  y[threadIdx.x] = acc;\n}\n";
}

TEST(NvrtcWorker, WorkerKilledMidCompileIsRetriedInANewWorker) {
  REQUIRE_NVRTC();
  const NvrtcOptions options = options_for("slow.cu");
  const NvrtcOutput expected = cuda::compile_cuda(slow_kernel_source(), options);
  const uint64_t retried_before = cuda::nvrtc_worker_stats().retried;

  std::optional<NvrtcOutput> actual;
  std::string error;
  std::thread compiling([&] {
    try {
      actual = cuda::compile_cuda_in_worker(slow_kernel_source(), options);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  int victim = -1;
  for (int i = 0; i < 20000 && victim < 0; ++i) {
    const cuda::NvrtcWorkerStats stats = cuda::nvrtc_worker_stats();
    if (!stats.busy_pids.empty()) {
      victim = stats.busy_pids.front();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  if (victim > 0) ::kill(victim, SIGKILL);
  compiling.join();
  ASSERT_GT(victim, 0) << "the compile never showed up as busy";
  ASSERT_TRUE(actual) << error;
  expect_same_output(*actual, expected, "retried after SIGKILL");
  EXPECT_EQ(cuda::nvrtc_worker_stats().retried, retried_before + 1);
  EXPECT_EQ(process_state(victim), 0) << "the killed worker was not reaped";
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, AlwaysCrashingWorkerIsACompileErrorNamingTheDeath) {
  REQUIRE_NVRTC();
  detail::TempDir dir("nvrtc-worker-crash");
  const fs::path crash = write_script(dir, "crash-worker", "kill -SEGV $$\n");
  const ScopedEnv env(cuda::kNvrtcWorkerEnv, crash.string());
  const uint64_t retried_before = cuda::nvrtc_worker_stats().retried;
  try {
    cuda::compile_cuda_in_worker(kernel_source(7), options_for("doomed.cu"));
    FAIL() << "a crashing worker produced a result";
  } catch (const CompileError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("NVRTC worker process"), std::string::npos) << what;
    EXPECT_NE(what.find("died"), std::string::npos) << what;
    EXPECT_NE(what.find("signal 11"), std::string::npos) << what;
    EXPECT_NE(what.find("doomed.cu"), std::string::npos) << what;
    EXPECT_EQ(e.source_name(), "doomed.cu");
    EXPECT_FALSE(e.options().empty());
  }
  EXPECT_EQ(cuda::nvrtc_worker_stats().retried, retried_before + 1);
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, ExitingWorkerReportsItsExitStatus) {
  REQUIRE_NVRTC();
  detail::TempDir dir("nvrtc-worker-exit");
  const ScopedEnv env(cuda::kNvrtcWorkerEnv,
                      write_script(dir, "exit-worker", "exit 139\n").string());
  try {
    cuda::compile_cuda_in_worker(kernel_source(8), options_for("exits.cu"));
    FAIL() << "an exiting worker produced a result";
  } catch (const CompileError& e) {
    EXPECT_NE(std::string(e.what()).find("exit status 139"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, WorkerOfAnotherProtocolVersionIsNamed) {
  REQUIRE_NVRTC();
  detail::TempDir dir("nvrtc-worker-foreign");
  // A header with our magic, version 99 and an empty payload, written to the socket (fd 0).
  const fs::path foreign = write_script(
      dir, "foreign-worker", "printf 'TJNW\\143\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0' >&0\nsleep 5\n");
  const ScopedEnv env(cuda::kNvrtcWorkerEnv, foreign.string());
  try {
    cuda::compile_cuda_in_worker(kernel_source(9), options_for("foreign.cu"));
    FAIL() << "a foreign worker produced a result";
  } catch (const CompileError& e) {
    FAIL() << "a version mismatch is not a compile error: " << e.what();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("protocol version 99"), std::string::npos) << what;
    EXPECT_NE(what.find(foreign.string()), std::string::npos) << what;
    EXPECT_NE(what.find(cuda::kNvrtcWorkerEnv), std::string::npos) << what;
  }
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, GarbledResponseIsAnError) {
  REQUIRE_NVRTC();
  detail::TempDir dir("nvrtc-worker-garbled");
  // A well-formed header (this protocol version, 3 bytes) around a payload that is no response.
  static_assert(cuda::worker::kProtocolVersion == 4, "the header below spells the version");
  const fs::path garbled =
      write_script(dir, "garbled-worker",
                   "printf 'TJNW\\4\\0\\0\\0\\3\\0\\0\\0\\0\\0\\0\\0\\7xy' >&0\nsleep 5\n");
  const ScopedEnv env(cuda::kNvrtcWorkerEnv, garbled.string());
  try {
    cuda::compile_cuda_in_worker(kernel_source(10), options_for("garbled.cu"));
    FAIL() << "a garbled response produced a result";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("malformed NVRTC worker response"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(cuda::nvrtc_worker_stats().busy_pids.empty());
  EXPECT_TRUE(zombie_children().empty());
}

TEST(NvrtcWorker, MissingExecutableFallsBackInProcessWithOneWarning) {
  REQUIRE_NVRTC();
  const std::string missing = fmt::format("/nonexistent-{}/tilejit-nvrtc-worker", ::getpid());
  const ScopedEnv env(cuda::kNvrtcWorkerEnv, missing);
  const NvrtcOutput expected = cuda::compile_cuda(kernel_source(11), kernel_options(11));
  testing::internal::CaptureStderr();
  const NvrtcOutput first = cuda::compile_cuda_in_worker(kernel_source(11), kernel_options(11));
  const NvrtcOutput second = cuda::compile_cuda_in_worker(kernel_source(11), kernel_options(11));
  const std::string warnings = testing::internal::GetCapturedStderr();
  expect_same_output(first, expected, "in-process fallback");
  expect_same_output(second, expected, "in-process fallback, again");
  EXPECT_NE(warnings.find("tilejit: warning: "), std::string::npos) << warnings;
  EXPECT_NE(warnings.find(missing), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("TILEJIT_NVRTC_WORKER"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("No such file"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("in this process"), std::string::npos) << warnings;
  EXPECT_EQ(warnings.find("tilejit: warning: "), warnings.rfind("tilejit: warning: "))
      << "warned more than once:\n"
      << warnings;
}

TEST(NvrtcWorker, NonExecutableFileFallsBackInProcess) {
  REQUIRE_NVRTC();
  detail::TempDir dir("nvrtc-worker-noexec");
  const fs::path plain = dir.path() / "tilejit-nvrtc-worker";
  detail::write_file(plain, "not a program");
  const ScopedEnv env(cuda::kNvrtcWorkerEnv, plain.string());
  testing::internal::CaptureStderr();
  const NvrtcOutput out = cuda::compile_cuda_in_worker(kernel_source(12), kernel_options(12));
  const std::string warnings = testing::internal::GetCapturedStderr();
  expect_same_output(out, cuda::compile_cuda(kernel_source(12), kernel_options(12)), "no exec");
  EXPECT_NE(warnings.find("not executable"), std::string::npos) << warnings;
}

// The backend's build() gives the same artifact wherever NVRTC runs.
TEST(NvrtcWorker, BackendBuildInAWorkerGivesTheSameArtifact) {
  REQUIRE_NVRTC();
  const Program program =
      ProgramBuilder("worker_axpy")
          .source(
              "extern \"C\" __global__ void worker_axpy(const float* A, float* B, float a, int "
              "n) {\n"
              "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
              "  if (i < n) B[i] = a * A[i] + B[i] * 0.25f;\n"
              "}\n")
          .tensor("A", "float32", {"n"})
          .tensor("B", "float32", {"n"})
          .scalar("a", "float32")
          .launch(Launch("worker_axpy").with_grid({"ceildiv(n, 96)"}).with_block({96}))
          .build();
  detail::ResolvedOptions options;
  options.backend = "nvrtc";
  options.target = detail::Target{"cuda", "sm_90"};
  const detail::Backend& backend = detail::backend_named("nvrtc");
  options.compiler_placement = detail::CompilerPlacement::kInProcess;
  const CompiledArtifact in_process = backend.build(program, options);
  const uint64_t spawned_before = cuda::nvrtc_worker_stats().spawned;
  const size_t idle_before = cuda::nvrtc_worker_stats().idle_pids.size();
  options.compiler_placement = detail::CompilerPlacement::kWorkerProcess;
  const CompiledArtifact in_worker = backend.build(program, options);
  const cuda::NvrtcWorkerStats after = cuda::nvrtc_worker_stats();
  EXPECT_TRUE(after.spawned > spawned_before || idle_before > 0) << "no worker was involved";
  EXPECT_TRUE(in_worker.binary == in_process.binary) << "the cubins differ";
  EXPECT_EQ(in_worker.binary_kind, in_process.binary_kind);
  EXPECT_EQ(in_worker.host_source, in_process.host_source);
  EXPECT_EQ(in_worker.metadata, in_process.metadata);
  EXPECT_EQ(in_worker.target, in_process.target);
}

// --- The worker executable itself -----------------------------------------------------------

struct Spawned {
  pid_t pid = -1;
  int fd = -1;
};

Spawned spawn_worker_directly(std::vector<std::string> args) {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDIN_FILENO);
  args.insert(args.begin(), TILEJIT_NVRTC_WORKER_PATH);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  Spawned spawned;
  EXPECT_EQ(::posix_spawn(&spawned.pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  spawned.fd = fds[0];
  return spawned;
}

// Waits up to `limit` for `pid`; -1 when it is still running then (it is killed and reaped).
int wait_for_exit(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

TEST(NvrtcWorkerExecutable, ServesRequestsAndExitsOnEof) {
  REQUIRE_NVRTC();
  const Spawned child = spawn_worker_directly({});
  for (int index : {13, 14}) {
    const std::string payload = worker::encode_request(
        {fs::current_path().string(), kernel_source(index), kernel_options(index)});
    ASSERT_TRUE(worker::write_frame(child.fd, payload));
    const worker::Frame frame = worker::read_frame(child.fd);
    ASSERT_EQ(frame.status, worker::Frame::Status::kComplete);
    const worker::Response response = worker::decode_response(frame.payload);
    ASSERT_FALSE(response.error);
    expect_same_output(response.output,
                       cuda::compile_cuda(kernel_source(index), kernel_options(index)),
                       "direct request");
  }
  ::close(child.fd);
  const int status = wait_for_exit(child.pid, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(NvrtcWorkerExecutable, ExitsAfterItsIdleTimeout) {
  const Spawned child = spawn_worker_directly({"--idle-timeout-seconds", "1"});
  const int status = wait_for_exit(child.pid, std::chrono::seconds(30));
  ::close(child.fd);
  ASSERT_TRUE(WIFEXITED(status)) << "still running 30 s after a 1 s idle timeout";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(NvrtcWorkerExecutable, RejectsAForeignRequestAndAnswersWithItsVersion) {
  const Spawned child = spawn_worker_directly({});
  const char garbage[16] = "GET / HTTP/1.1\n";
  ASSERT_EQ(::write(child.fd, garbage, sizeof garbage), static_cast<ssize_t>(sizeof garbage));
  const worker::Frame frame = worker::read_frame(child.fd);
  EXPECT_EQ(frame.status, worker::Frame::Status::kComplete);
  EXPECT_TRUE(frame.payload.empty());
  ::close(child.fd);
  const int status = wait_for_exit(child.pid, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

// --- The wire format ------------------------------------------------------------------------

NvrtcOptions every_option_set() {
  NvrtcOptions options;
  options.arch = CudaArch{10, 3, true};
  options.source_name = "odd name \xff.cu";
  options.include_dirs = {"/a", "", "b c"};
  options.defines = {{"A", "1"}, {"EMPTY", ""}, {"Q", "\"x\\0y\""}};
  options.flags = {"--use_fast_math", std::string("nul\0inside", 10)};
  options.verbose = true;
  options.list_dependencies = true;
  options.name_expressions = {"k<float, 4>", "ns::f"};
  return options;
}

TEST(NvrtcWorkerProtocol, RequestRoundTripsEveryField) {
  const worker::Request request{"/some/dir", std::string("src\0with nul", 12), every_option_set()};
  const worker::Request decoded = worker::decode_request(worker::encode_request(request));
  EXPECT_EQ(decoded.working_directory, request.working_directory);
  EXPECT_EQ(decoded.source, request.source);
  EXPECT_EQ(decoded.options.arch, request.options.arch);
  EXPECT_EQ(decoded.options.source_name, request.options.source_name);
  EXPECT_EQ(decoded.options.include_dirs, request.options.include_dirs);
  EXPECT_EQ(decoded.options.defines, request.options.defines);
  EXPECT_EQ(decoded.options.flags, request.options.flags);
  EXPECT_EQ(decoded.options.verbose, request.options.verbose);
  EXPECT_EQ(decoded.options.list_dependencies, request.options.list_dependencies);
  EXPECT_EQ(decoded.options.name_expressions, request.options.name_expressions);
  // And the defaults, which are false/empty: a decoder that ignored a field would pass the
  // first half only by luck.
  const worker::Request plain{"", "", NvrtcOptions{}};
  const worker::Request plain_decoded = worker::decode_request(worker::encode_request(plain));
  EXPECT_FALSE(plain_decoded.options.verbose);
  EXPECT_FALSE(plain_decoded.options.list_dependencies);
  EXPECT_EQ(plain_decoded.options.source_name, "program.cu");
}

NvrtcOutput every_output_field_set() {
  NvrtcOutput output;
  output.binary = std::string(
      "\x7f"
      "ELF\0\1\2\xff",
      8);
  output.binary_kind = "cubin";
  output.target = "sm_103a";
  output.options = {"--gpu-architecture=sm_103a", "-lineinfo"};
  output.log = "warning: something\n";
  output.dependencies = {"/usr/include/x.h", "inc/y.h"};
  output.lowered_names = {"_Z1kIfLi4EEvPT_", "_ZN2ns1fEv"};
  return output;
}

TEST(NvrtcWorkerProtocol, OutputRoundTripsEveryField) {
  const NvrtcOutput output = every_output_field_set();
  const uint64_t worker_ns = 0x0123456789abcdefULL;
  const worker::Response response =
      worker::decode_response(worker::encode_output(output, worker_ns));
  ASSERT_FALSE(response.error);
  EXPECT_EQ(response.worker_ns, worker_ns);
  expect_same_output(response.output, output, "round trip");
}

// The crossed exception as exactly E, or nullopt (and a failure) when it is something else.
template <typename E>
std::optional<E> rethrown_as(const worker::Response& response) {
  if (!response.error) {
    ADD_FAILURE() << "no exception crossed";
    return std::nullopt;
  }
  try {
    std::rethrow_exception(response.error);
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
  return std::nullopt;
}

worker::Response cross(std::exception_ptr error) {
  const uint64_t worker_ns = 987654321;
  worker::Response response =
      worker::decode_response(worker::encode_exception(std::move(error), worker_ns));
  EXPECT_EQ(response.worker_ns, worker_ns);
  return response;
}

TEST(NvrtcWorkerProtocol, ExceptionsKeepTheirTypes) {
  const auto compile = rethrown_as<CompileError>(cross(std::make_exception_ptr(
      CompileError("summary", "the full log", {"--opt-a", "--opt-b"}, "named.cu"))));
  ASSERT_TRUE(compile);
  EXPECT_EQ(std::string(compile->what()), "summary");
  EXPECT_EQ(compile->log(), "the full log");
  EXPECT_EQ(compile->options(), (std::vector<std::string>{"--opt-a", "--opt-b"}));
  EXPECT_EQ(compile->source_name(), "named.cu");

  const auto cuda_error =
      rethrown_as<CudaError>(cross(std::make_exception_ptr(CudaError("cuFoo failed", 719))));
  ASSERT_TRUE(cuda_error);
  EXPECT_EQ(std::string(cuda_error->what()), "cuFoo failed");
  EXPECT_EQ(cuda_error->code(), 719);

  const auto argument =
      rethrown_as<ArgumentError>(cross(std::make_exception_ptr(ArgumentError("arg 'x' bad"))));
  ASSERT_TRUE(argument);
  EXPECT_EQ(std::string(argument->what()), "arg 'x' bad");
  const auto program =
      rethrown_as<ProgramError>(cross(std::make_exception_ptr(ProgramError("program bad"))));
  ASSERT_TRUE(program);
  EXPECT_EQ(std::string(program->what()), "program bad");
  const auto missing =
      rethrown_as<NotAvailableError>(cross(std::make_exception_ptr(NotAvailableError("no nvrtc"))));
  ASSERT_TRUE(missing);
  EXPECT_EQ(std::string(missing->what()), "no nvrtc");
  // Anything else arrives as a plain Error with its message.
  const auto plain = rethrown_as<Error>(cross(std::make_exception_ptr(std::out_of_range("range"))));
  ASSERT_TRUE(plain);
  EXPECT_EQ(std::string(plain->what()), "range");
}

// Every prefix of a valid response, and random corruptions of it, decode or throw Error: never
// a crash, never a read past the end (ASan builds check the latter).
TEST(NvrtcWorkerProtocol, TruncatedAndCorruptedPayloadsAreErrors) {
  const std::string responses[] = {
      worker::encode_output(every_output_field_set(), 42),
      worker::encode_exception(
          std::make_exception_ptr(CompileError("s", "log", {"a", "b"}, "n.cu")), 42),
  };
  for (const std::string& full : responses) {
    for (size_t size = 0; size < full.size(); ++size) {
      EXPECT_THROW(worker::decode_response(std::string_view(full).substr(0, size)), Error)
          << "prefix of " << size << " bytes";
    }
    EXPECT_THROW(worker::decode_response(full + "x"), Error) << "a trailing byte";
  }
  const std::string request = worker::encode_request({"/d", "source", every_option_set()});
  for (size_t size = 0; size < request.size(); ++size) {
    EXPECT_THROW(worker::decode_request(std::string_view(request).substr(0, size)), Error);
  }
  std::mt19937 random(20261122);
  int decoded = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bytes = responses[trial % 2];
    for (int flips = 1 + static_cast<int>(random() % 4); flips > 0; --flips) {
      bytes[random() % bytes.size()] = static_cast<char>(random());
    }
    try {
      (void)worker::decode_response(bytes);
      ++decoded;
    } catch (const Error&) {
    }
  }
  // Flips inside strings decode fine; flips in lengths and tags must not.
  EXPECT_LT(decoded, 5000);
}

TEST(NvrtcWorkerProtocol, FramesCarryPayloadsAndRejectForeignHeaders) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  const std::string big(3 << 20, 'z');  // larger than the socket buffer: written in pieces
  std::thread writer([&] { EXPECT_TRUE(worker::write_frame(fds[0], big)); });
  worker::Frame frame = worker::read_frame(fds[1]);
  writer.join();
  EXPECT_EQ(frame.status, worker::Frame::Status::kComplete);
  EXPECT_TRUE(frame.payload == big);

  const uint32_t header[4] = {worker::kMagic, worker::kProtocolVersion + 1, 0, 0};
  ASSERT_EQ(::write(fds[0], header, sizeof header), static_cast<ssize_t>(sizeof header));
  frame = worker::read_frame(fds[1]);
  EXPECT_EQ(frame.status, worker::Frame::Status::kForeign);
  EXPECT_EQ(frame.version, worker::kProtocolVersion + 1);

  // A length beyond any real payload is not allocated.
  const uint32_t huge[4] = {worker::kMagic, worker::kProtocolVersion, 0xffffffffu, 0xffffffffu};
  ASSERT_EQ(::write(fds[0], huge, sizeof huge), static_cast<ssize_t>(sizeof huge));
  EXPECT_EQ(worker::read_frame(fds[1]).status, worker::Frame::Status::kForeign);

  // Half a frame, then the peer goes away.
  const uint32_t partial[4] = {worker::kMagic, worker::kProtocolVersion, 100, 0};
  ASSERT_EQ(::write(fds[0], partial, sizeof partial), static_cast<ssize_t>(sizeof partial));
  ASSERT_EQ(::write(fds[0], "abc", 3), 3);
  ::close(fds[0]);
  EXPECT_EQ(worker::read_frame(fds[1]).status, worker::Frame::Status::kClosed);
  EXPECT_FALSE(worker::write_frame(fds[1], "to nobody"));
  ::close(fds[1]);
}

}  // namespace
}  // namespace tilejit

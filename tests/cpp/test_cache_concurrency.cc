// Many processes, one cache directory: 8 processes x 20 compiles over 5 overlapping keys,
// for the cpu backend (compile, load, run) and for NVRTC-to-cubin (build, store, read back:
// no GPU needed). Then a process killed in the middle of a store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "backend/backend.h"
#include "cache/disk_cache.h"
#include "cache_test_support.h"
#include "compile/compile.h"

extern char** environ;

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::CompileSource;
using detail::DiskCache;
using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::ScopedCacheDir;

constexpr int kProcesses = 8;
constexpr int kCompilesPerProcess = 20;
constexpr int kKeys = 5;
constexpr int kFirstScale = 20;

// Set in the children: which worker this is and where it reports how many builds it ran.
constexpr const char* kWorkerEnv = "TILEJIT_TEST_WORKER";
constexpr const char* kReportEnv = "TILEJIT_TEST_WORKER_REPORT";

Program cuda_program(int scale) {
  return ProgramBuilder("cuda_scale")
      .source(fmt::format("extern \"C\" __global__ void cuda_scale(float* x, int n) {{\n"
                          "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                          "  if (i < n) x[i] *= {}.0f;\n"
                          "}}\n",
                          scale))
      .tensor("x", "float32", {"n"})
      .launch(Launch("cuda_scale").with_grid({"ceildiv(n, 128)"}).with_block({128}))
      .build();
}

CompileOptions cubin_options() {
  CompileOptions options;
  options.execution_backend = "nvrtc";
  options.target = "cuda -arch=sm_90";
  return options;
}

bool nvrtc_usable(std::string* why) {
  try {
    (void)cache_key(cuda_program(1), cubin_options());
    return true;
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

// One NVRTC compile through the disk cache, the way compile() does it up to (not including)
// loading the cubin, which needs a driver. Returns true when it built.
bool build_or_load_cubin(int scale) {
  const Program program = cuda_program(scale);
  const CompileOptions options = cubin_options();
  const std::string key = cache_key(program, options);
  const std::optional<DiskCache> disk = DiskCache::from_env();
  EXPECT_TRUE(disk.has_value());
  DiskCache::Lookup found = disk->lookup(key);
  bool built = false;
  if (!found.artifact) {
    EXPECT_EQ(found.status, DiskCache::Status::kMiss);
    const detail::ResolvedOptions resolved = detail::resolve_options(program, options);
    Program with_outputs = program;
    with_outputs.out_idx = resolved.out_idx;
    found.artifact = detail::backend_named("nvrtc").build(with_outputs, resolved);
    disk->store(key, *found.artifact);
    built = true;
  }
  EXPECT_EQ(found.artifact->binary_kind, "cubin");
  EXPECT_EQ(found.artifact->binary.substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_NE(found.artifact->device_source.find(fmt::format("*= {}.0f", scale)), std::string::npos);
  return built;
}

// The children's body. Run directly it is a small single-process version of the same work.
TEST(ConcurrencyWorker, CompilesOverlappingKeys) {
  const char* worker = std::getenv(kWorkerEnv);
  std::optional<ScopedCacheDir> own_cache;
  if (worker == nullptr) own_cache.emplace();
  const std::string mode = worker == nullptr ? "cpu" : worker;
  const int index = std::getenv("TILEJIT_TEST_WORKER_INDEX")
                        ? std::atoi(std::getenv("TILEJIT_TEST_WORKER_INDEX"))
                        : 0;
  const int compiles = worker == nullptr ? kKeys : kCompilesPerProcess;
  int built = 0;
  for (int i = 0; i < compiles; ++i) {
    const int scale = kFirstScale + (index + i) % kKeys;
    if (mode == "nvrtc") {
      built += build_or_load_cubin(scale);
    } else {
      detail::MemoryCache::global().clear();  // every compile goes to the disk cache
      detail::CompileOutcome outcome = detail::compile_with_outcome(axpy_program(scale), {});
      built += outcome.source == CompileSource::kBuilt;
      expect_axpy_correct(outcome.kernel, scale);
    }
  }
  if (const char* report = std::getenv(kReportEnv)) std::ofstream(report) << built;
}

pid_t spawn_self(const std::string& filter, const std::vector<std::string>& extra_env) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> env_storage(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter_arg = "--gtest_filter=" + filter;
  char* argv[] = {const_cast<char*>(self.c_str()), filter_arg.data(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void run_workers(const std::string& mode, const ScopedCacheDir& cache) {
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcesses; ++p) {
    pids.push_back(spawn_self(
        "ConcurrencyWorker.CompilesOverlappingKeys",
        {std::string(kWorkerEnv) + "=" + mode, fmt::format("TILEJIT_TEST_WORKER_INDEX={}", p),
         fmt::format("{}={}", kReportEnv, (cache.scratch() / fmt::format("built{}", p)).string()),
         "TILELANG_CACHE_DIR=" + cache.root().string()}));
  }
  int total_built = 0;
  for (int p = 0; p < kProcesses; ++p) {
    EXPECT_EQ(wait_exit(pids[static_cast<size_t>(p)]), 0) << "worker " << p << " failed";
    std::ifstream report(cache.scratch() / fmt::format("built{}", p));
    int built = -1;
    report >> built;
    EXPECT_GE(built, 0) << "worker " << p << " wrote no report";
    total_built += built;
  }
  // Each key was built at least once; races may build a key more than once, never 8x each.
  EXPECT_GE(total_built, kKeys);
  EXPECT_LE(total_built, kKeys * kProcesses);

  const std::vector<DiskCache::EntryInfo> entries = DiskCache(cache.root()).list(true);
  EXPECT_EQ(entries.size(), static_cast<size_t>(kKeys));
  for (const DiskCache::EntryInfo& entry : entries) EXPECT_EQ(entry.problem, "") << entry.key;
  EXPECT_TRUE(fs::is_empty(cache.root() / "v1" / "tmp"));  // every loser discarded its copy
}

TEST(CacheConcurrency, CpuBackendProcesses) {
  ScopedCacheDir cache;
  run_workers("cpu", cache);
}

TEST(CacheConcurrency, NvrtcCubinProcesses) {
  std::string why;
  if (!nvrtc_usable(&why)) GTEST_SKIP() << "NVRTC is not available: " << why;
  ScopedCacheDir cache;
  run_workers("nvrtc", cache);
}

TEST(CacheConcurrency, KilledDuringStoreLeavesNothingHarmful) {
  ScopedCacheDir cache;
  const fs::path marker = cache.scratch() / "staged";
  pid_t pid = spawn_self("ConcurrencyWorker.CompilesOverlappingKeys",
                         {std::string(kWorkerEnv) + "=cpu", "TILEJIT_TEST_WORKER_INDEX=21",
                          "TILEJIT_TEST_PAUSE_IN_STORE=" + marker.string(),
                          "TILELANG_CACHE_DIR=" + cache.root().string()});
  // Index 21 makes the worker's first compile scale kFirstScale + 1; wait until it has
  // staged that entry, then kill it before the rename.
  for (int waited = 0; waited < 1200 && !fs::exists(marker); ++waited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(marker)) << "the worker never reached the store";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);

  const fs::path staging_root = cache.root() / "v1" / "tmp";
  ASSERT_FALSE(fs::is_empty(staging_root));  // the half-finished staging directory
  const std::string key = cache_key(axpy_program(kFirstScale + 1));
  EXPECT_FALSE(fs::exists(cache.entry(key)));  // nothing was published

  // A later run is not disturbed: it builds, stores and verifies the same key.
  detail::MemoryCache::global().clear();
  ::testing::internal::CaptureStderr();
  detail::CompileOutcome outcome = detail::compile_with_outcome(axpy_program(kFirstScale + 1), {});
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(outcome.source, CompileSource::kBuilt);
  EXPECT_EQ(warnings, "");
  expect_axpy_correct(outcome.kernel, kFirstScale + 1);
  EXPECT_TRUE(fs::exists(cache.entry(key)));

  // Once past the grace period, the dead process's directory is reclaimed by the next store.
  for (const fs::directory_entry& leftover : fs::directory_iterator(staging_root)) {
    struct timespec old_times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, leftover.path().c_str(), old_times, 0), 0);
  }
  detail::MemoryCache::global().clear();
  expect_axpy_correct(compile(axpy_program(kFirstScale + 2)), kFirstScale + 2);
  EXPECT_TRUE(fs::is_empty(staging_root));
  for (const DiskCache::EntryInfo& entry : DiskCache(cache.root()).list(true))
    EXPECT_EQ(entry.problem, "") << entry.key;
}

}  // namespace
}  // namespace tilejit

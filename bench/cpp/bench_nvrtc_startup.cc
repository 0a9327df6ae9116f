// NVRTC worker start-up on this host, for par_compile's first call (docs/PERFORMANCE.md,
// "par_compile's NVRTC workers"): W processes that each compile K tiny kernels with NVRTC,
// started either
//   spawn: as W cold processes at once (exec, libraries, dlopen of libnvrtc and NVRTC's
//          first-compile set-up in each: what par_compile's pool does today), or
//   fork:  by fork() from one single-threaded process that has loaded NVRTC and, where a
//          compile leaves it single-threaded, compiled once before the clock starts (a fork
//          server started ahead of need: its best case).
// Times count from the moment the processes are started: to each one's first result (mean and
// max over the W) and to the last one done. Repeated, the two alternating; medians at the end.
// Each process sets malloc up as tilejit-nvrtc-worker does.
//
//   bench_nvrtc_startup [--workers W] [--kernels K] [--repeats R]   (W: usable cores, K 4, R 5)
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda/nvrtc.h"
#include "cuda/nvrtc_worker_protocol.h"
#include "tilejit/errors.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using tilejit::cuda::NvrtcOptions;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void compile_one(int index) {
  NvrtcOptions options;
  options.arch = tilejit::cuda::CudaArch::parse("sm_90");
  options.source_name = fmt::format("startup_{}.cu", index);
  (void)tilejit::cuda::compile_cuda(
      fmt::format("extern \"C\" __global__ void axpy(const float* A, float* B, int n) {{\n"
                  "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
                  "  if (i < n) B[i] = A[i] * {}.0f + 1.0f;\n"
                  "}}\n",
                  index),
      options);
}

// One worker's part: K compiles, then one line on stdout (a pipe shared by all; one write of
// less than PIPE_BUF bytes, so lines do not interleave): ns from t0 to the first result and to
// the last.
void work(int64_t t0, int index, int kernels) {
  int64_t first = 0;
  for (int k = 0; k < kernels; ++k) {
    compile_one(index * kernels + k + 1);
    if (k == 0) first = now_ns() - t0;
  }
  const std::string line = fmt::format("done {} {}\n", first, now_ns() - t0);
  (void)!::write(STDOUT_FILENO, line.data(), line.size());
}

int threads_in_this_process() {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++count;
  }
  return count;
}

// Whether a compile leaves this process with one thread, tried in a child so that this one
// stays as it is.
bool compile_stays_single_threaded() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    compile_one(0);
    ::_exit(threads_in_this_process() == 1 ? 0 : 1);
  }
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

// The fork server: warm, then fork `workers` children at once and wait for them. fork() is only
// safe in a single-threaded process, and on the H200 host NVRTC leaves a second thread behind
// after a compile (not on the CPU machine): there the zygote has only loaded NVRTC. Its first
// line on stdout says which ("zygote compiled" or "zygote loaded").
int zygote(int workers, int kernels) {
  tilejit::cuda::worker::keep_freed_memory();
  (void)tilejit::cuda::nvrtc();
  if (threads_in_this_process() != 1) {
    fmt::print(stderr, "bench_nvrtc_startup: the zygote has {} threads after loading NVRTC\n",
               threads_in_this_process());
    return 1;
  }
  const bool compiled = compile_stays_single_threaded();
  if (compiled) compile_one(0);
  const std::string warmth = compiled ? "zygote compiled\n" : "zygote loaded\n";
  (void)!::write(STDOUT_FILENO, warmth.data(), warmth.size());
  const int64_t t0 = now_ns();
  std::vector<pid_t> children;
  for (int w = 0; w < workers; ++w) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      work(t0, w, kernels);
      ::_exit(0);
    }
    if (pid < 0) return 1;
    children.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  return failed == 0 ? 0 : 1;
}

struct Run {
  double first_mean_ms = 0, first_max_ms = 0, all_done_ms = 0;
  bool zygote_compiled = false;  // fork mode: the zygote compiled once, not only loaded NVRTC
};

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw tilejit::Error(fmt::format("posix_spawn failed: {}", error));
  return pid;
}

Run run(bool fork_mode, int workers, int kernels) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw tilejit::Error("pipe failed");
  std::vector<pid_t> pids;
  if (fork_mode) {
    pids.push_back(
        spawn({self, "--zygote", std::to_string(workers), std::to_string(kernels)}, fds[1]));
  } else {
    const std::string t0 = std::to_string(now_ns());
    for (int w = 0; w < workers; ++w) {
      pids.push_back(
          spawn({self, "--worker", t0, std::to_string(w), std::to_string(kernels)}, fds[1]));
    }
  }
  ::close(fds[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) output.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw tilejit::Error("a worker failed");
  }
  Run result;
  int count = 0;
  for (size_t pos = 0; pos < output.size();) {
    const size_t end = std::min(output.find('\n', pos), output.size());
    long long first = 0, done = 0;
    if (std::sscanf(output.c_str() + pos, "done %lld %lld", &first, &done) == 2) {
      result.first_mean_ms += static_cast<double>(first) / 1e6;
      result.first_max_ms = std::max(result.first_max_ms, static_cast<double>(first) / 1e6);
      result.all_done_ms = std::max(result.all_done_ms, static_cast<double>(done) / 1e6);
      ++count;
    }
    if (output.compare(pos, end - pos, "zygote compiled") == 0) result.zygote_compiled = true;
    pos = end + 1;
  }
  if (count != workers)
    throw tilejit::Error(fmt::format("{} of {} workers reported", count, workers));
  result.first_mean_ms /= count;
  return result;
}

const char* label(bool fork_mode, bool zygote_compiled) {
  if (!fork_mode) return "spawn cold processes  ";
  return zygote_compiled ? "fork from a warm zygote" : "fork from a zygote that loaded NVRTC";
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 4 && args[0] == "--worker") {
      tilejit::cuda::worker::keep_freed_memory();
      work(std::stoll(args[1]), std::stoi(args[2]), std::stoi(args[3]));
      return 0;
    }
    if (args.size() == 3 && args[0] == "--zygote") {
      return zygote(std::stoi(args[1]), std::stoi(args[2]));
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    int workers = ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    int kernels = 4, repeats = 5;
    for (size_t i = 0; i + 1 < args.size(); i += 2) {
      if (args[i] == "--workers") workers = std::max(1, std::stoi(args[i + 1]));
      if (args[i] == "--kernels") kernels = std::max(1, std::stoi(args[i + 1]));
      if (args[i] == "--repeats") repeats = std::max(1, std::stoi(args[i + 1]));
    }
    std::string why;
    if (!tilejit::cuda::nvrtc_available(&why)) {
      fmt::print("bench_nvrtc_startup: skipped ({})\n", why);
      return 0;
    }
    fmt::print("bench_nvrtc_startup: {} processes x {} tiny NVRTC compiles, {} repeats\n", workers,
               kernels, repeats);
    std::vector<Run> runs[2];  // [0] spawn, [1] fork
    for (int r = 0; r < repeats; ++r) {
      for (int i = 0; i < 2; ++i) {
        const bool fork_mode = (i + r) % 2 == 1;  // the order alternates
        const Run result = run(fork_mode, workers, kernels);
        runs[fork_mode].push_back(result);
        fmt::print("  {} {}: first result mean {:.1f} ms, max {:.1f} ms; all done {:.1f} ms\n",
                   label(fork_mode, result.zygote_compiled), r + 1, result.first_mean_ms,
                   result.first_max_ms, result.all_done_ms);
      }
    }
    for (int mode = 0; mode < 2; ++mode) {
      std::vector<double> first, done;
      for (const Run& result : runs[mode]) {
        first.push_back(result.first_mean_ms);
        done.push_back(result.all_done_ms);
      }
      fmt::print("{}: first result {:.1f} ms, all done {:.1f} ms (medians)\n",
                 label(mode == 1, runs[mode].back().zygote_compiled), median(first), median(done));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_nvrtc_startup: {}\n", e.what());
    return 1;
  }
  return 0;
}

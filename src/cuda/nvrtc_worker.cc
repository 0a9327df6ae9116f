#include "cuda/nvrtc_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cuda/nvrtc_worker_protocol.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

extern char** environ;

namespace tilejit::cuda {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The pool retires a worker idle this long itself, so that the worker's own idle exit does not
// race with a request sent to it.
constexpr auto kRetireIdleAfter = worker::kIdleTimeout - std::chrono::seconds(10);
// A worker whose socket closed is exiting; how long to wait for its exit status before killing.
constexpr auto kExitGrace = std::chrono::seconds(2);

void warn_once(const std::string& line) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard lock(mutex);
  if (!said.insert(line).second) return;
  const std::string text = "tilejit: warning: " + line + "\n";
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

// --- Locating the executable -------------------------------------------------------------

struct Candidate {
  std::string path;
  std::string origin;  // how it was found, for the warning
};

// Empty when `path` is an executable regular file, else why not.
std::string unusable_reason(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return std::strerror(errno);
  if (!S_ISREG(info.st_mode)) return "not a regular file";
  if (::access(path.c_str(), X_OK) != 0) return "not executable";
  return {};
}

// The directory of the binary tilejit is linked into (the Python package directory for the
// wheel).
std::optional<fs::path> module_directory() {
  std::optional<fs::path> module = detail::tilejit_module_path();
  if (!module) return std::nullopt;
  return module->parent_path();
}

const std::vector<Candidate>& default_candidates() {
  static const std::vector<Candidate> candidates = [] {
    std::vector<Candidate> list;
    if (std::optional<fs::path> dir = module_directory()) {
      list.push_back({(*dir / kNvrtcWorkerName).string(), "next to " + dir->string()});
    }
#ifdef TILEJIT_NVRTC_WORKER_BUILD_PATH
    list.push_back({TILEJIT_NVRTC_WORKER_BUILD_PATH, "build tree"});
#endif
#ifdef TILEJIT_NVRTC_WORKER_INSTALL_PATH
    list.push_back({TILEJIT_NVRTC_WORKER_INSTALL_PATH, "install prefix"});
#endif
    return list;
  }();
  return candidates;
}

struct Located {
  std::string executable;  // empty: none usable
  std::string tried;       // "<path> (<origin>): <why>; ..."
};

// Read at every compile, so that setting TILEJIT_NVRTC_WORKER takes effect at the next one.
Located locate_worker() {
  std::vector<Candidate> explicit_choice;
  const char* env = std::getenv(kNvrtcWorkerEnv);
  if (env != nullptr && env[0] != '\0') explicit_choice.push_back({env, "$TILEJIT_NVRTC_WORKER"});
  const std::vector<Candidate>& candidates =
      explicit_choice.empty() ? default_candidates() : explicit_choice;
  Located located;
  for (const Candidate& candidate : candidates) {
    const std::string why = unusable_reason(candidate.path);
    if (why.empty()) {
      located.executable = candidate.path;
      return located;
    }
    located.tried += fmt::format("{}{} ({}): {}", located.tried.empty() ? "" : "; ", candidate.path,
                                 candidate.origin, why);
  }
  if (located.tried.empty()) located.tried = "no location known";
  return located;
}

// --- Processes ---------------------------------------------------------------------------

std::string describe_status(std::optional<int> status) {
  if (!status) return "exit status unknown: reaped elsewhere";
  if (WIFEXITED(*status)) return fmt::format("exit status {}", WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) {
    const int signal = WTERMSIG(*status);
    return fmt::format("killed by signal {}: {}", signal, ::strsignal(signal));
  }
  return fmt::format("wait status {}", *status);
}

// Waits up to `grace` for `pid` to exit, then kills it, and returns its wait status. nullopt
// when the status is gone (SIGCHLD ignored, or the application reaped it).
std::optional<int> reap(pid_t pid, std::chrono::milliseconds grace) {
  int status = 0;
  const auto deadline = Clock::now() + grace;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, 0);
    if (done == pid) return status;
    if (errno != EINTR) return std::nullopt;
  }
}

class SpawnError : public Error {
 public:
  using Error::Error;
};

struct Worker {
  pid_t pid = -1;
  int fd = -1;  // our end of the socket pair (close-on-exec)
  std::string executable;
  Clock::time_point spawned;
  Clock::time_point idle_since;
  bool answered = false;  // has answered a request (its start-up is behind it)
};

// Our end of the socket pair must not land on 0-2: when the caller runs with stdin closed,
// the child's dup2 onto fd 0 would otherwise be a no-op that keeps close-on-exec.
int above_stdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  const int error = errno;
  ::close(fd);
  if (moved < 0) throw SpawnError(fmt::format("fcntl failed: {}", std::strerror(error)));
  return moved;
}

// Starts `executable` with one end of a new socket pair as its stdin, stdout on /dev/null,
// stderr shared with us, no other descriptors, default signal handling and an empty mask.
Worker spawn_worker(const std::string& executable) {
  // Before posix_spawn, which returns once the child has exec'd: the start-up the pool's
  // counters report includes the exec.
  const auto started = Clock::now();
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw SpawnError(fmt::format("socketpair failed: {}", std::strerror(errno)));
  }
  int ours = fds[0];
  int theirs = fds[1];
  try {
    ours = above_stdio(ours);
  } catch (...) {
    ::close(theirs);
    throw;
  }
  try {
    theirs = above_stdio(theirs);
  } catch (...) {
    ::close(ours);
    throw;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, theirs, STDIN_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Descriptors the application left inheritable (a pipe's write end, say) must not stay open
  // in a long-lived worker.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#endif
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  char* argv[] = {const_cast<char*>(executable.c_str()), nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, executable.c_str(), &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(theirs);
  if (error != 0) {
    ::close(ours);
    throw SpawnError(std::strerror(error));
  }
  return Worker{pid, ours, executable, started, Clock::now()};
}

// --- The pool ----------------------------------------------------------------------------

class Pool {
 public:
  // Never destroyed: a compile may still run on another thread while statics are destroyed at
  // exit. The workers see EOF when this process ends, and exit.
  static Pool& instance() {
    static Pool* const pool = new Pool;
    return *pool;
  }

  // A worker running `executable`: an idle one unless `fresh`, else a new one while fewer than
  // the cap are alive, else the next one given back. Throws SpawnError.
  Worker checkout(const std::string& executable, bool fresh) {
    std::vector<Worker> retired;
    std::optional<Worker> found;
    {
      std::unique_lock lock(mutex_);
      forget_inherited_workers();
      for (;;) {
        retire_unusable_idle(executable, retired);
        if (!fresh && !idle_.empty()) {
          found = std::move(idle_.back());
          idle_.pop_back();
          busy_.push_back(found->pid);
          break;
        }
        if (fresh && live_ >= cap_ && !idle_.empty()) {
          retired.push_back(std::move(idle_.back()));
          idle_.pop_back();
          --live_;
        }
        if (live_ < cap_) {
          ++live_;  // the slot of the worker spawned below
          break;
        }
        returned_.wait(lock);
      }
    }
    for (Worker& worker : retired) end(worker, std::chrono::milliseconds(0));
    if (found) return std::move(*found);
    try {
      Worker worker = spawn_worker(executable);
      std::lock_guard lock(mutex_);
      busy_.push_back(worker.pid);
      ++totals_.spawned;
      return worker;
    } catch (...) {
      std::lock_guard lock(mutex_);
      --live_;
      returned_.notify_one();
      throw;
    }
  }

  // `worker` answered a request: the round trip took `round_trip`, the worker `worker_ns`.
  void give_back(Worker worker, Clock::duration round_trip, uint64_t worker_ns) {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    ++totals_.answered;
    totals_.round_trip_ns += nanoseconds(round_trip);
    totals_.worker_ns += worker_ns;
    if (!worker.answered) {
      ++totals_.first_answers;
      totals_.first_answer_ns += nanoseconds(now - worker.spawned);
      totals_.first_worker_ns += worker_ns;
      worker.answered = true;
    }
    std::erase(busy_, worker.pid);
    worker.idle_since = now;
    idle_.push_back(std::move(worker));
    returned_.notify_one();
  }

  // The worker is dead or unusable: its slot is freed, it is killed after `grace` if still
  // alive, and reaped. Returns its wait status.
  std::optional<int> discard(Worker& worker, std::chrono::milliseconds grace) {
    {
      std::lock_guard lock(mutex_);
      std::erase(busy_, worker.pid);
      --live_;
      returned_.notify_one();
    }
    return end(worker, grace);
  }

  void count_retry() {
    std::lock_guard lock(mutex_);
    ++totals_.retried;
  }

  NvrtcWorkerStats stats() {
    std::lock_guard lock(mutex_);
    NvrtcWorkerStats stats = totals_;
    for (const Worker& worker : idle_) stats.idle_pids.push_back(worker.pid);
    stats.busy_pids.assign(busy_.begin(), busy_.end());
    return stats;
  }

 private:
  static uint64_t nanoseconds(Clock::duration duration) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count());
  }

  static std::optional<int> end(Worker& worker, std::chrono::milliseconds grace) {
    ::close(std::exchange(worker.fd, -1));
    return reap(worker.pid, grace);
  }

  // A child of fork() inherits the workers' sockets but not the workers (they are its
  // siblings): talking to them would interleave with the parent's requests.
  void forget_inherited_workers() {
    const pid_t self = ::getpid();
    if (self == owner_) return;
    for (Worker& worker : idle_) ::close(worker.fd);
    idle_.clear();
    busy_.clear();
    live_ = 0;
    owner_ = self;
  }

  // Moves out of idle_ the workers a compile must not use: another executable (the
  // environment changed), idle so long that the worker may be exiting on its own, or a socket
  // that is readable or hung up (an idle worker sends nothing; it exited or was killed).
  void retire_unusable_idle(const std::string& executable, std::vector<Worker>& retired) {
    std::vector<pollfd> fds;
    fds.reserve(idle_.size());
    for (const Worker& worker : idle_) fds.push_back({worker.fd, POLLIN, 0});
    if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) < 0) {
      for (pollfd& fd : fds) fd.revents = 0;  // EINTR or ENOMEM: rely on the retry instead
    }
    const auto now = Clock::now();
    // Into a new vector: moving idle_[i] onto itself would empty its executable string (a
    // self-move leaves a std::string unspecified), and the next check would retire a healthy
    // worker. That cost a respawn every second compile before.
    std::vector<Worker> usable;
    usable.reserve(idle_.size());
    for (size_t i = 0; i < idle_.size(); ++i) {
      if (idle_[i].executable != executable || now - idle_[i].idle_since >= kRetireIdleAfter ||
          fds[i].revents != 0) {
        retired.push_back(std::move(idle_[i]));
        --live_;
      } else {
        usable.push_back(std::move(idle_[i]));
      }
    }
    idle_ = std::move(usable);
  }

  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<Worker> idle_;
  std::vector<pid_t> busy_;
  int live_ = 0;  // idle, busy and being spawned
  const int cap_ = detail::usable_cores();
  pid_t owner_ = ::getpid();
  NvrtcWorkerStats totals_;  // the counters; its pid lists stay empty
};

// A checked-out worker that goes back to the pool, or is ended: never leaked by an exception.
class Lease {
 public:
  Lease(Pool& pool, Worker worker) : pool_(pool), worker_(std::move(worker)) {}
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (worker_) pool_.discard(*worker_, std::chrono::milliseconds(0));
  }
  int fd() const { return worker_->fd; }
  void give_back(Clock::duration round_trip, uint64_t worker_ns) {
    pool_.give_back(*std::exchange(worker_, std::nullopt), round_trip, worker_ns);
  }
  std::optional<int> discard(std::chrono::milliseconds grace) {
    std::optional<int> status = pool_.discard(*worker_, grace);
    worker_.reset();
    return status;
  }

 private:
  Pool& pool_;
  std::optional<Worker> worker_;
};

std::string current_directory() {
  std::error_code error;
  fs::path path = fs::current_path(error);
  return error ? std::string() : path.string();
}

}  // namespace

NvrtcOutput compile_cuda_in_worker(std::string_view source, const NvrtcOptions& options) {
  const Located located = locate_worker();
  if (located.executable.empty()) {
    warn_once(fmt::format(
        "no usable NVRTC worker executable (tried {}); NVRTC compiles run in this process, so "
        "par_compile's NVRTC compiles barely overlap",
        located.tried));
    return compile_cuda(source, options);
  }
  const std::string request =
      worker::encode_request({current_directory(), std::string(source), options});
  Pool& pool = Pool::instance();
  std::string death;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The retry goes to a new worker: an idle one may have died of the same cause (its own
    // idle exit) as the first.
    std::optional<Lease> lease;
    try {
      lease.emplace(pool, pool.checkout(located.executable, /*fresh=*/attempt > 0));
    } catch (const SpawnError& e) {
      warn_once(fmt::format(
          "cannot start the NVRTC worker {} ({}); NVRTC compiles run in this process, so "
          "par_compile's NVRTC compiles barely overlap",
          located.executable, e.what()));
      return compile_cuda(source, options);
    }
    worker::Frame frame;
    const auto sent = Clock::now();
    if (worker::write_frame(lease->fd(), request)) frame = worker::read_frame(lease->fd());
    if (frame.status == worker::Frame::Status::kComplete) {
      const auto round_trip = Clock::now() - sent;
      // A malformed response throws here, and the lease ends the worker that sent it.
      worker::Response response = worker::decode_response(frame.payload);
      lease->give_back(round_trip, response.worker_ns);
      if (response.error) std::rethrow_exception(response.error);
      return std::move(response.output);
    }
    if (frame.status == worker::Frame::Status::kForeign) {
      lease->discard(std::chrono::milliseconds(0));
      throw Error(fmt::format(
          "{} is not the NVRTC worker of this tilejit: it answered with protocol version {} "
          "(this tilejit speaks {}); point {} at this build's {}",
          located.executable, frame.version, worker::kProtocolVersion, kNvrtcWorkerEnv,
          kNvrtcWorkerName));
    }
    death = describe_status(lease->discard(kExitGrace));
    if (attempt == 0) pool.count_retry();
  }
  throw CompileError(
      fmt::format("the NVRTC worker process ({}) died ({}) compiling {}, twice; this process is "
                  "unaffected",
                  located.executable, death, options.source_name),
      "", nvrtc_options(nvrtc(), options), options.source_name);
}

NvrtcWorkerStats nvrtc_worker_stats() {
  return Pool::instance().stats();
}

}  // namespace tilejit::cuda

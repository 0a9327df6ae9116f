#include "toolchain/toolchain.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "tilejit/errors.h"
#include "toolchain/unique_fd.h"

extern char** environ;

namespace tilejit::detail {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string first_line(std::string_view text) {
  const size_t end = text.find('\n');
  return std::string(text.substr(0, end));
}

}  // namespace

std::string_view tilejit_version() {
  return TILEJIT_VERSION;
}

std::optional<std::filesystem::path> tilejit_module_path() {
  static const char anchor = 0;
  Dl_info info;
  link_map* map = nullptr;
  if (::dladdr1(&anchor, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 ||
      map == nullptr) {
    return std::nullopt;
  }
  std::error_code error;
  // The main program's link map has an empty name.
  std::filesystem::path module = map->l_name != nullptr && map->l_name[0] != '\0'
                                     ? std::filesystem::absolute(map->l_name, error)
                                     : std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return std::nullopt;
  return module;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  if (argv.empty()) throw Error("run_process: empty command line");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw Error(fmt::format("run_process: pipe failed: {}", std::strerror(errno)));
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);

  // The child leads its own process group so that a timeout kills the compiler's own
  // children (cc1, as, ld) too.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);

  pid_t pid = -1;
  const int spawn_error =
      ::posix_spawnp(&pid, c_argv[0], &actions, &attributes, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) {
    throw Error(fmt::format("cannot run '{}': {}", argv[0], std::strerror(spawn_error)));
  }
  // Only the child may hold the write end now, so EOF on the read end means it exited (or
  // closed its output).
  write_end.reset();

  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(remaining.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n > 0) {
      result.output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;  // EOF: the child closed its output
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  return result;
}

std::optional<std::filesystem::path> find_program(std::string_view name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    const std::string path(name);
    if (::access(path.c_str(), X_OK) == 0) return std::filesystem::path(path);
    return std::nullopt;
  }
  const char* path_env = std::getenv("PATH");
  std::string_view dirs = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty()) dir = ".";
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

HostCompiler HostCompiler::named(std::string_view compiler) {
  if (!find_program(compiler)) {
    throw NotAvailableError(fmt::format("host compiler '{}' not found on PATH", compiler));
  }
  HostCompiler result;
  result.c_compiler = std::string(compiler);
  result.cxx_compiler = std::string(compiler);
  const ProcessResult r = run_process({result.cxx_compiler, "--version"}, std::chrono::seconds(30));
  result.version = first_line(r.output);
  return result;
}

std::pair<std::string, std::string> HostCompiler::names() {
  const char* cc = std::getenv("CC");
  const char* cxx = std::getenv("CXX");
  return {(cc != nullptr && *cc != '\0') ? cc : "cc",
          (cxx != nullptr && *cxx != '\0') ? cxx : "c++"};
}

const HostCompiler& HostCompiler::detect() {
  // Detected once: the environment and PATH are not expected to change under a process, and
  // running `--version` on every compile would dominate the cost of a cache hit.
  static const HostCompiler compiler = [] {
    HostCompiler result;
    std::tie(result.c_compiler, result.cxx_compiler) = names();
    for (const std::string& program : {result.c_compiler, result.cxx_compiler}) {
      if (!find_program(program)) {
        throw NotAvailableError(fmt::format(
            "host compiler '{}' not found on PATH (set CC / CXX to choose one)", program));
      }
    }
    const ProcessResult r =
        run_process({result.cxx_compiler, "--version"}, std::chrono::seconds(30));
    result.version = first_line(r.output);
    return result;
  }();
  return compiler;
}

TempDir::TempDir(std::string_view prefix) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / fmt::format("{}-XXXXXX", prefix)).string();
  // mkdtemp creates the directory with mode 0700: nobody else can plant files in it.
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(fmt::format("cannot create a temporary directory in {}: {}", base.string(),
                            std::strerror(errno)));
  }
  path_ = pattern;
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  remove();
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open {}", path.string()));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("cannot read {}", path.string()));
  return std::move(contents).str();
}

void write_file(const std::filesystem::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(fmt::format("cannot create {}", path.string()));
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) throw Error(fmt::format("cannot write {}", path.string()));
}

std::mutex& dynamic_loader_mutex() {
  static std::mutex mutex;
  return mutex;
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace tilejit::detail

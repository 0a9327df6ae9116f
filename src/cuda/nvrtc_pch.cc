#include "cuda/nvrtc_pch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "tilejit/errors.h"
#include "toolchain/sha256.h"
#include "toolchain/toolchain.h"

namespace tilejit::cuda {
namespace {

namespace fs = std::filesystem;

// A directory younger than this may belong to a process that has not locked it yet.
constexpr auto kStaleAfter = std::chrono::seconds(5);
// PCHs of TileLang's headers are about 270 MB each: a process keeps this many, the least
// recently used going first.
constexpr size_t kMaxRecorded = 4;
// What NVRTC writes into the log when it loaded a PCH (--pch-messages, on by default).
constexpr std::string_view kUsedMessage = "using precompiled header file";

// What changes when anything writes to or replaces a file; ctime cannot be set back.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

std::optional<FileIdentity> identity_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
                      int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
}

std::string content_digest(const std::string& path) {
  try {
    return detail::sha256_hex(detail::read_file(path));
  } catch (const Error&) {
    return "missing";
  }
}

struct Recorded {
  std::string file;
  FileIdentity identity;
  std::vector<std::pair<std::string, std::string>> headers;  // path, content digest
  uint64_t last_use = 0;
};

void warn(const std::string& message) {
  std::fprintf(stderr, "tilejit: warning: NVRTC precompiled headers: %s\n", message.c_str());
}

// This process's PCH directory under one root, and the PCHs recorded in it. Every member is
// used under `mutex`.
class Store {
 public:
  std::mutex mutex;

  // The directory for new PCHs, created (and older dead ones removed) on first use; empty
  // when the root is not private to this user or cannot be written.
  const std::string& directory(const fs::path& root) {
    if (root != root_) open(root);
    return directory_;
  }

  const Recorded* find(const std::string& key) {
    auto it = recorded_.find(key);
    if (it == recorded_.end()) return nullptr;
    it->second.last_use = ++uses_;
    return &it->second;
  }
  void record(const std::string& key, Recorded recorded) {
    while (recorded_.size() >= kMaxRecorded) {
      auto oldest = std::min_element(recorded_.begin(), recorded_.end(), [](auto& a, auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      forget(oldest->first);
    }
    recorded.last_use = ++uses_;
    recorded_[key] = std::move(recorded);
  }
  void forget(const std::string& key) {
    auto it = recorded_.find(key);
    if (it == recorded_.end()) return;
    std::error_code ec;
    fs::remove(it->second.file, ec);
    recorded_.erase(it);
  }
  // A new heap has another address: no PCH written so far can be loaded any more.
  void forget_all() {
    while (!recorded_.empty()) forget(recorded_.begin()->first);
  }

  ~Store() { close(); }

 private:
  void open(const fs::path& root) {
    close();
    root_ = root;
    std::error_code ec;
    fs::create_directories(root, ec);
    ::chmod(root.c_str(), 0700);
    struct stat st {};
    if (::lstat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 0022) != 0) {
      warn(fmt::format("{} is not a directory private to this user; compiling without them",
                       root.string()));
      return;
    }
    std::string pattern = (root / fmt::format("{}-XXXXXX", ::getpid())).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      warn(fmt::format("cannot create a directory in {}; compiling without them", root.string()));
      return;
    }
    lock_fd_ = ::open(pattern.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      fs::remove_all(pattern, ec);
      warn(fmt::format("cannot lock {}; compiling without them", pattern));
      return;
    }
    directory_ = pattern;
    remove_dead_siblings();
  }

  // Directories of processes that are gone: their lock is free and they are not brand new.
  void remove_dead_siblings() const {
    std::error_code ec;
    const auto now = fs::file_time_type::clock::now();
    for (const auto& entry : fs::directory_iterator(root_, ec)) {
      if (entry.path() == directory_ || !entry.is_directory(ec) || entry.is_symlink(ec)) continue;
      if (now - entry.last_write_time(ec) < kStaleAfter) continue;
      const int fd = ::open(entry.path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) continue;
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0) fs::remove_all(entry.path(), ec);
      ::close(fd);
    }
  }

  void close() {
    recorded_.clear();
    if (!directory_.empty()) {
      std::error_code ec;
      fs::remove_all(directory_, ec);
      directory_.clear();
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

  fs::path root_;
  std::string directory_;
  int lock_fd_ = -1;
  std::map<std::string, Recorded> recorded_;
  uint64_t uses_ = 0;
};

Store& store() {
  static Store store;  // its destructor removes this process's PCHs at exit
  return store;
}

}  // namespace

std::string pch_directives(std::string_view source) {
  std::string directives;
  bool continued = false;  // the previous directive line ended with a backslash
  size_t start = 0;
  while (start < source.size()) {
    size_t next = source.find('\n', start);
    next = next == std::string_view::npos ? source.size() : next + 1;
    std::string_view line = source.substr(start, next - start);
    start = next;
    const size_t first = line.find_first_not_of(" \t\r\n");
    const std::string_view text = first == std::string_view::npos ? "" : line.substr(first);
    if (!continued) {
      if (text.empty() || text.starts_with("//")) continue;
      if (!text.starts_with('#')) break;
    }
    directives += line;
    if (!line.ends_with('\n')) directives += '\n';
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    continued = line.ends_with('\\');
  }
  return directives;
}

PchCompile::PchCompile(const NvrtcApi& api, std::string_view source, const NvrtcOptions& options,
                       const std::vector<std::string>& nvrtc_options) {
  if (options.pch_dir.empty() || api.nvrtcGetPCHCreateStatus == nullptr ||
      api.nvrtcGetPCHHeapSizeRequired == nullptr || api.nvrtcSetPCHHeapSize == nullptr) {
    return;
  }
  const std::string directives = pch_directives(source);
  if (directives.find("#include") == std::string::npos) return;

  detail::Sha256 digest;
  digest.field("format", "tilejit.nvrtc-pch/1");
  digest.field("nvrtc", api.version_string() + " " + api.library_path);
  for (const std::string& option : nvrtc_options) digest.field("option", option);
  digest.field("device_header", device_header_source());
  digest.field("directives", directives);
  key_ = digest.hex();

  Store& pchs = store();
  lock_ = std::unique_lock(pchs.mutex);
  const std::string& directory = pchs.directory(options.pch_dir);
  if (directory.empty()) {
    lock_.unlock();
    return;
  }
  if (const Recorded* recorded = pchs.find(key_)) {
    bool valid = identity_of(recorded->file) == recorded->identity;
    for (size_t i = 0; valid && i < recorded->headers.size(); ++i) {
      const auto& [path, contents] = recorded->headers[i];
      valid = content_digest(path) == contents;
    }
    if (valid) {
      file_ = recorded->file;
      option_ = "--use-pch=" + file_;
      return;
    }
    pchs.forget(key_);  // damaged, replaced, or a header changed: write it anew
  }
  file_ = (fs::path(directory) / (key_ + ".pch")).string();
  option_ = "--create-pch=" + file_;
  creating_ = true;
}

PchCompile::~PchCompile() {
  if (creating_ && !finished_) {
    std::error_code ec;
    fs::remove(file_, ec);
  }
}

std::string PchCompile::finish(const NvrtcApi& api, nvrtcProgram program, const std::string& log,
                               std::vector<std::string>* traced) {
  if (!lock_.owns_lock()) return {};
  finished_ = true;
  Store& pchs = store();
  if (!creating_) {
    if (log.find(kUsedMessage) == std::string::npos) {
      // NVRTC refused it (its log says why); the next compile writes a new one.
      pchs.forget(key_);
      return {};
    }
    const Recorded* recorded = pchs.find(key_);
    for (const auto& header : recorded->headers) traced->push_back(header.first);
    return "used " + file_;
  }
  const nvrtcResult status = api.nvrtcGetPCHCreateStatus(program);
  if (status == NVRTC_ERROR_PCH_CREATE_HEAP_EXHAUSTED) {
    size_t required = 0;
    api.nvrtcGetPCHHeapSizeRequired(program, &required);
    // Reallocating moves the heap, which retires every PCH this process wrote so far.
    if (required > 0 && api.nvrtcSetPCHHeapSize(required) == NVRTC_SUCCESS) pchs.forget_all();
    return {};
  }
  std::optional<FileIdentity> identity = identity_of(file_);
  if (status != NVRTC_SUCCESS || !identity) {
    std::error_code ec;
    fs::remove(file_, ec);
    return {};
  }
  Recorded recorded{file_, *identity, {}};
  for (const std::string& header : *traced) {
    recorded.headers.emplace_back(header, content_digest(header));
  }
  pchs.record(key_, std::move(recorded));
  return "created " + file_;
}

}  // namespace tilejit::cuda

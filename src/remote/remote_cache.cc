#include "remote/remote_cache.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cache/cache_stats.h"
#include "remote/remote_entry.h"

namespace tilejit::detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUrlEnv = "TILEJIT_REMOTE_CACHE";
constexpr const char* kSecretEnv = "TILEJIT_REMOTE_CACHE_SECRET";
constexpr size_t kMinSecretBytes = 16;

// Replaces a value only while it is still the one that failed our checks (SHA-1 as Redis's
// own redis.sha1hex computes it): a good entry published meanwhile by a peer stays.
constexpr const char* kReplaceScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or redis.sha1hex(v) == ARGV[2] then return redis.call('SET', KEYS[1], ARGV[1]) "
    "end return 0";
// Deletes the lease only while it is still ours: it may have expired and been taken by another.
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

void warn(const std::string& message) {
  const std::string line = "tilejit: warning: remote cache: " + message + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  {
    std::lock_guard lock(mutex);
    if (!seen.insert(message).second) return;
  }
  warn(message);
}

std::chrono::milliseconds env_ms(const char* name, std::chrono::milliseconds fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text, text + std::strlen(text), value);
  if (ec != std::errc() || *end != '\0' || value <= 0) {
    warn_once(fmt::format("{}='{}' is not a positive number of milliseconds; using {}", name, text,
                          fallback.count()));
    return fallback;
  }
  return std::chrono::milliseconds(value);
}

// The secret: the variable's value, or with "file:PATH" the contents of a file that only this
// user can read (one trailing newline dropped). Empty, with `*problem` set, when unusable.
std::string load_secret(const std::string& text, std::string* problem) {
  std::string secret = text;
  if (text.starts_with("file:")) {
    const std::string path = text.substr(5);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      *problem = fmt::format("cannot read the secret file '{}': {}", path, std::strerror(errno));
      if (fd >= 0) ::close(fd);
      return {};
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != ::geteuid()) {
      ::close(fd);
      *problem = fmt::format(
          "the secret file '{}' must be owned by this user with mode 0600 or "
          "0400 (it is {:04o})",
          path, st.st_mode & 07777);
      return {};
    }
    secret.clear();
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fd, chunk, sizeof chunk)) > 0) secret.append(chunk, static_cast<size_t>(n));
    ::close(fd);
    if (secret.ends_with('\n')) secret.pop_back();
  }
  if (secret.size() < kMinSecretBytes) {
    *problem = fmt::format("the secret is {} bytes; at least {} are needed", secret.size(),
                           kMinSecretBytes);
    return {};
  }
  return secret;
}

std::string sha1_hex(std::string_view bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) hex += fmt::format("{:02x}", byte);
  return hex;
}

std::string random_token() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}.{:016x}", ::getpid(), rng());
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace

RemoteCache* RemoteCache::from_url(const std::string& url) {
  std::string text = url;
  if (text.empty()) {
    const char* value = std::getenv(kUrlEnv);
    text = value == nullptr ? "" : value;
  }
  if (text.empty() || text == "off") return nullptr;
  const char* secret_text = std::getenv(kSecretEnv);
  const std::string secret_source = secret_text == nullptr ? "" : secret_text;

  static std::mutex mutex;
  static auto* tiers = new std::map<std::string, std::unique_ptr<RemoteCache>>;  // leaked
  const std::string id = text + '\0' + secret_source;
  std::lock_guard lock(mutex);
  if (auto it = tiers->find(id); it != tiers->end()) return it->second.get();
  RemoteCache* tier = nullptr;
  std::string problem;
  std::optional<RedisAddress> address = RedisAddress::parse(text, &problem);
  if (!address) {
    warn_once(fmt::format("{}: {}; the remote tier is off", kUrlEnv, problem));
  } else if (secret_source.empty()) {
    warn_once(
        fmt::format("{} is set but {} is not; without the cluster secret no remote value "
                    "can be checked, so the remote tier is off",
                    kUrlEnv, kSecretEnv));
  } else if (std::string secret = load_secret(secret_source, &problem); secret.empty()) {
    warn_once(fmt::format("{}: {}; the remote tier is off", kSecretEnv, problem));
  } else {
    Settings settings;
    settings.address = *address;
    settings.secret = std::move(secret);
    settings.timeout = env_ms("TILEJIT_REMOTE_CACHE_TIMEOUT_MS", settings.timeout);
    settings.backoff = env_ms("TILEJIT_REMOTE_CACHE_BACKOFF_MS", settings.backoff);
    settings.lease = env_ms("TILEJIT_REMOTE_CACHE_LEASE_MS", settings.lease);
    tier = new RemoteCache(std::move(settings));
  }
  (*tiers)[id].reset(tier);  // a tier that cannot be used is remembered as nullptr too
  return tier;
}

RemoteCache::RemoteCache(Settings settings) : settings_(std::move(settings)) {}

std::string RemoteCache::entry_name(const std::string& key) {
  return fmt::format("tilejit:entry:{}:{}", kRemoteEntryVersion, key);
}

std::string RemoteCache::lease_name(const std::string& key) {
  return fmt::format("tilejit:lease:{}", key);
}

bool RemoteCache::available() const {
  const int64_t off_until = off_until_ns_.load(std::memory_order_acquire);
  return off_until == 0 || now_ns() >= off_until;
}

RespReply RemoteCache::request(const std::vector<std::string_view>& args) {
  std::optional<RespConnection> connection;
  {
    std::lock_guard lock(pool_mutex_);
    if (!pool_.empty()) {
      connection.emplace(std::move(pool_.back()));
      pool_.pop_back();
    }
  }
  try {
    if (!connection) connection.emplace(settings_.address, settings_.timeout);
    RespReply reply = connection->command(args);
    // An error reply (out of memory under maxmemory, a read-only replica, a required password)
    // is the server refusing: the same back-off as a dead one.
    if (reply.kind == RespReply::Kind::kError)
      throw RespFailure{"the server refused: " + reply.text};
    std::lock_guard lock(pool_mutex_);
    pool_.push_back(std::move(*connection));
    return reply;
  } catch (const RespFailure& failure) {
    const int64_t was = off_until_ns_.exchange(
        now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(settings_.backoff).count(),
        std::memory_order_acq_rel);
    count_cache_event(CacheEvent::kRemoteFailure);
    if (was == 0 || now_ns() >= was) {  // once per outage, not once per request
      warn(fmt::format("{}: {}; compiling locally, retrying in {} ms", settings_.address.str(),
                       failure.what, settings_.backoff.count()));
    }
    throw;
  }
}

RemoteCache::Fetched RemoteCache::fetch(const std::string& key, bool* rejected_seen) {
  Fetched fetched;
  const std::string name = entry_name(key);
  const RespReply reply = request({"GET", name});
  if (reply.kind != RespReply::Kind::kBulk) return fetched;
  DecodedEntry decoded = decode_remote_entry(reply.text, key, settings_.secret);
  if (decoded.artifact) {
    fetched.artifact = std::move(decoded.artifact);
    return fetched;
  }
  fetched.rejected_digest = sha1_hex(reply.text);
  if (!*rejected_seen) {
    *rejected_seen = true;
    count_cache_event(CacheEvent::kRemoteRejected);
    warn_once(
        fmt::format("rejected the value of {} on {}: {}; it is not loaded, the kernel is "
                    "built here and the value replaced",
                    name, settings_.address.str(), decoded.problem));
  }
  return fetched;
}

RemoteCache::Claim RemoteCache::claim(const std::string& key) {
  Claim claim(this, key);
  if (!available()) return claim;
  bool rejected_seen = false;
  bool waited = false;
  // The found value, else the digest of a rejected one; true when the entry was found.
  auto look = [&] {
    Fetched fetched = fetch(key, &rejected_seen);
    if (!fetched.rejected_digest.empty()) claim.rejected_digest_ = fetched.rejected_digest;
    if (!fetched.artifact) return false;
    claim.artifact = std::move(fetched.artifact);
    return true;
  };
  try {
    if (look()) return claim;
    const std::string lease = lease_name(key);
    const std::string lease_ms = std::to_string(settings_.lease.count());
    const Clock::time_point give_up = Clock::now() + settings_.lease;
    auto pause = std::chrono::milliseconds(2);
    while (true) {
      const std::string token = random_token();
      const RespReply taken = request({"SET", lease, token, "NX", "PX", lease_ms});
      if (taken.kind == RespReply::Kind::kStatus) {
        claim.lease_token_ = token;
        // The holder before us may have published and released between our GET and our SET.
        if (look()) claim.release();
        return claim;
      }
      if (!waited) {
        waited = true;
        count_cache_event(CacheEvent::kLeaseWaited);
      }
      if (Clock::now() >= give_up) {
        warn_once(fmt::format("waited {} ms for another process to compile {}; compiling here",
                              settings_.lease.count(), key.substr(0, 16)));
        return claim;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
      if (look()) return claim;
    }
  } catch (const RespFailure&) {
    // request() has switched the tier off and warned; the caller builds locally.
    claim.lease_token_.clear();
    claim.artifact.reset();
  }
  return claim;
}

std::string RemoteCache::probe() {
  try {
    const RespReply reply = request({"PING"});
    return reply.kind == RespReply::Kind::kStatus ? "" : "unexpected reply to PING";
  } catch (const RespFailure& failure) {
    return failure.what;
  }
}

RemoteCache::Claim::Claim(Claim&& other) noexcept
    : artifact(std::move(other.artifact)),
      cache_(other.cache_),
      key_(std::move(other.key_)),
      lease_token_(std::exchange(other.lease_token_, {})),
      rejected_digest_(std::move(other.rejected_digest_)) {}

RemoteCache::Claim::~Claim() {
  release();
}

void RemoteCache::Claim::publish(const CompiledArtifact& built) {
  if (cache_->available()) {
    try {
      const std::string name = entry_name(key_);
      const std::string value = encode_remote_entry(key_, built, cache_->settings_.secret);
      if (rejected_digest_.empty()) {
        cache_->request({"SET", name, value, "NX"});
      } else {
        cache_->request({"EVAL", kReplaceScript, "1", name, value, rejected_digest_});
      }
    } catch (const RespFailure&) {
      // Backed off and warned; the kernel is built and stored locally all the same.
    }
  }
  release();
}

void RemoteCache::Claim::release() {
  if (lease_token_.empty()) return;
  const std::string token = std::exchange(lease_token_, {});
  if (!cache_->available()) return;  // the lease expires by itself
  try {
    cache_->request({"EVAL", kReleaseScript, "1", lease_name(key_), token});
  } catch (const RespFailure&) {
  }
}

}  // namespace tilejit::detail

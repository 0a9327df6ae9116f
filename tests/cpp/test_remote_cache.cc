// The remote cache tier against a real redis-server on loopback (started by the test): two
// processes share kernels, 8 processes x 20 compiles of 5 keys cost exactly 5 compiles
// (leases), every kind of bad value is rejected and rebuilt, and a server killed mid-run
// costs no compile.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>

#include "cache/cache_stats.h"
#include "cache_test_support.h"
#include "compile/compile.h"
#include "redis_server.h"
#include "remote/remote_cache.h"
#include "remote/remote_entry.h"

extern char** environ;

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::CacheEvent;
using detail::CompileSource;
using detail::RemoteCache;
using detail::RespReply;
using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::RedisServer;
using testing::ScopedCacheDir;

constexpr const char* kSecret = "test-cluster-secret-0123456789";

// Set in the children: first scale, number of keys, compiles, and where to report.
constexpr const char* kWorkerEnv = "TILEJIT_TEST_REMOTE_WORKER";
constexpr const char* kReportEnv = "TILEJIT_TEST_REMOTE_REPORT";

// Points the remote tier at `url` with the test secret, restoring the environment after.
class ScopedRemote {
 public:
  explicit ScopedRemote(const std::string& url, const std::string& secret = kSecret) {
    for (const char* name : kNames) {
      if (const char* old = std::getenv(name)) saved_.emplace_back(name, old);
    }
    ::setenv("TILEJIT_REMOTE_CACHE", url.c_str(), 1);
    ::setenv("TILEJIT_REMOTE_CACHE_SECRET", secret.c_str(), 1);
    ::setenv("TILEJIT_REMOTE_CACHE_BACKOFF_MS", "300", 1);
    ::setenv("TILEJIT_REMOTE_CACHE_TIMEOUT_MS", "2000", 1);
  }
  ~ScopedRemote() {
    for (const char* name : kNames) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  static constexpr const char* kNames[] = {"TILEJIT_REMOTE_CACHE", "TILEJIT_REMOTE_CACHE_SECRET",
                                           "TILEJIT_REMOTE_CACHE_BACKOFF_MS",
                                           "TILEJIT_REMOTE_CACHE_TIMEOUT_MS"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

// A compile as a fresh process would do it: nothing in memory, an empty disk cache.
detail::CompileOutcome compile_fresh(int scale) {
  ScopedCacheDir empty;
  return detail::compile_with_outcome(axpy_program(scale), {});
}

uint64_t count_of(CacheEvent event) {
  return detail::cache_event_counts()[static_cast<size_t>(event)];
}

// The children's body: compiles `compiles` times over `keys` scales from `first`, each
// compile through the disk cache (of its own) and the remote tier, checks every kernel, and
// reports how many it built and how many came from the remote tier.
TEST(RemoteWorker, DISABLED_Compiles) {
  const char* spec = std::getenv(kWorkerEnv);
  ASSERT_NE(spec, nullptr) << "run by the RemoteCache tests in child processes";
  int first = 0, keys = 0, compiles = 0, index = 0;
  ASSERT_EQ(std::sscanf(spec, "%d,%d,%d,%d", &first, &keys, &compiles, &index), 4) << spec;
  int built = 0, remote = 0;
  for (int i = 0; i < compiles; ++i) {
    const int scale = first + (index + i) % keys;
    detail::MemoryCache::global().clear();
    detail::CompileOutcome outcome = detail::compile_with_outcome(axpy_program(scale), {});
    built += outcome.source == CompileSource::kBuilt;
    remote += outcome.source == CompileSource::kRemoteCache;
    expect_axpy_correct(outcome.kernel, scale);
  }
  std::ofstream(std::getenv(kReportEnv)) << built << " " << remote;
}

pid_t spawn_worker(const std::string& spec, const fs::path& report, const fs::path& cache_dir) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> env_storage = {std::string(kWorkerEnv) + "=" + spec,
                                          std::string(kReportEnv) + "=" + report.string(),
                                          "TILELANG_CACHE_DIR=" + cache_dir.string()};
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=RemoteWorker.DISABLED_Compiles";
  std::string also = "--gtest_also_run_disabled_tests";
  char* argv[] = {const_cast<char*>(self.c_str()), filter.data(), also.data(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  return pid;
}

struct WorkerReport {
  int built = -1;
  int remote = -1;
};

// Runs one worker per spec, each with its own disk cache, and waits for all of them.
std::vector<WorkerReport> run_workers(const std::vector<std::string>& specs,
                                      const fs::path& scratch) {
  std::vector<pid_t> pids;
  for (size_t i = 0; i < specs.size(); ++i) {
    pids.push_back(spawn_worker(specs[i], scratch / fmt::format("report{}", i),
                                scratch / fmt::format("cache{}", i)));
  }
  std::vector<WorkerReport> reports(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    int status = 0;
    EXPECT_EQ(::waitpid(pids[i], &status, 0), pids[i]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker " << i << " failed";
    std::ifstream(scratch / fmt::format("report{}", i)) >> reports[i].built >> reports[i].remote;
    EXPECT_GE(reports[i].built, 0) << "worker " << i << " wrote no report";
  }
  return reports;
}

TEST(RemoteCache, TwoProcessesShareKernels) {
  RedisServer redis;
  ScopedRemote remote(redis.url());
  ScopedCacheDir scratch;
  const std::vector<WorkerReport> first = run_workers({"40,3,3,0"}, scratch.scratch() / "a");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].built, 3);
  EXPECT_EQ(first[0].remote, 0);
  // Another process, with an empty disk cache of its own, builds nothing.
  const std::vector<WorkerReport> second = run_workers({"40,3,3,0"}, scratch.scratch() / "b");
  EXPECT_EQ(second[0].built, 0);
  EXPECT_EQ(second[0].remote, 3);
}

TEST(RemoteCache, LeasesMakeOneCompilePerKey) {
  RedisServer redis;
  ScopedRemote remote(redis.url());
  ScopedCacheDir scratch;
  std::vector<std::string> specs;
  for (int p = 0; p < 8; ++p) specs.push_back(fmt::format("60,5,20,{}", p));
  const std::vector<WorkerReport> reports = run_workers(specs, scratch.scratch());
  int built = 0, fetched = 0;
  for (const WorkerReport& report : reports) {
    built += report.built;
    fetched += report.remote;
  }
  EXPECT_EQ(built, 5);  // one compile per key across 8 processes with separate disk caches
  // Each process got every key it did not build from the server once, then from its disk.
  EXPECT_EQ(built + fetched, 8 * 5);
}

// The offsets of the framing fields (remote_entry.h) in a value stored under `key`.
struct Fields {
  size_t magic = 0, version = 4, key = 12, metadata = 0, payload = 0, mac = 0;
};
Fields fields_of(const std::string& value, const std::string& key) {
  Fields f;
  uint32_t metadata_length = 0;
  const size_t metadata_length_at = 12 + key.size();
  std::memcpy(&metadata_length, value.data() + metadata_length_at, 4);  // little-endian host
  f.metadata = metadata_length_at + 4;
  f.payload = f.metadata + metadata_length + 8;
  f.mac = value.size() - detail::kRemoteEntryMacBytes;
  return f;
}

class RemoteValues : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(compile_fresh(kScale).source, CompileSource::kBuilt);
    ASSERT_EQ(compile_fresh(kScale).source, CompileSource::kRemoteCache);
    key_ = cache_key(axpy_program(kScale));
    good_ = stored(key_);
    ASSERT_FALSE(good_.empty());
  }

  std::string stored(const std::string& key) {
    const RespReply reply = connection_.command({"GET", RemoteCache::entry_name(key)});
    return reply.kind == RespReply::Kind::kBulk ? reply.text : "";
  }
  void put(const std::string& key, const std::string& value) {
    ASSERT_EQ(connection_.command({"SET", RemoteCache::entry_name(key), value}).text, "OK");
  }
  // With `value` stored, a fresh compile must build (not load it), give a correct kernel,
  // count one rejection, and leave a valid value that the next fresh compile loads.
  void expect_rejected(const std::string& key, int scale, const std::string& value,
                       const std::string& what) {
    put(key, value);
    const uint64_t rejected = count_of(CacheEvent::kRemoteRejected);
    detail::CompileOutcome outcome = compile_fresh(scale);
    EXPECT_EQ(outcome.source, CompileSource::kBuilt) << what;
    expect_axpy_correct(outcome.kernel, scale);
    EXPECT_EQ(count_of(CacheEvent::kRemoteRejected), rejected + 1) << what;
    EXPECT_TRUE(detail::decode_remote_entry(stored(key), key, kSecret).artifact) << what;
    EXPECT_EQ(compile_fresh(scale).source, CompileSource::kRemoteCache) << what;
  }

  static constexpr int kScale = 77;
  RedisServer redis_;
  ScopedRemote remote_{redis_.url()};
  detail::RespConnection connection_ = redis_.connect();
  std::string key_;
  std::string good_;
};

TEST_F(RemoteValues, EachCorruptedFieldIsRejected) {
  const Fields f = fields_of(good_, key_);
  const std::vector<std::pair<std::string, size_t>> flips = {
      {"magic", f.magic},       {"version", f.version},      {"key", f.key + 5},
      {"metadata", f.metadata}, {"payload", f.payload + 17}, {"payload end", f.mac - 1},
      {"mac", f.mac + 31}};
  ::testing::internal::CaptureStderr();
  for (const auto& [what, offset] : flips) {
    std::string bad = good_;
    bad[offset] = static_cast<char>(bad[offset] ^ 0x20);
    expect_rejected(key_, kScale, bad, what);
  }
  expect_rejected(key_, kScale, good_.substr(0, good_.size() - 1), "truncated");
  expect_rejected(key_, kScale, good_ + "x", "extended");
  expect_rejected(key_, kScale, "", "empty");
  // Each distinct problem is logged once.
  const std::string log = ::testing::internal::GetCapturedStderr();
  for (const char* problem : {"(bad magic)", "format version", "the HMAC does not match"}) {
    const size_t at = log.find(problem);
    EXPECT_NE(at, std::string::npos) << problem << " in " << log;
    EXPECT_EQ(at, log.rfind(problem)) << problem << " logged twice in " << log;
  }
}

TEST_F(RemoteValues, WrongSecretIsRejected) {
  const CompiledArtifact artifact = *detail::decode_remote_entry(good_, key_, kSecret).artifact;
  ::testing::internal::CaptureStderr();
  expect_rejected(key_, kScale,
                  detail::encode_remote_entry(key_, artifact, "another-secret-0123456789"),
                  "wrong secret");
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("written without this secret"),
            std::string::npos);
}

TEST_F(RemoteValues, ValidValueUnderAnotherKeyIsRejected) {
  // A signed entry for kScale, planted under the key of another Program.
  const int other_scale = kScale + 1;
  const std::string other_key = cache_key(axpy_program(other_scale));
  ::testing::internal::CaptureStderr();
  expect_rejected(other_key, other_scale, good_, "copied under another key");
  EXPECT_NE(
      ::testing::internal::GetCapturedStderr().find("it was written for key " + key_.substr(0, 16)),
      std::string::npos);
}

TEST(RemoteCache, ServerKilledAndRestarted) {
  RedisServer redis;
  ScopedRemote remote(redis.url());
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(compile_fresh(90).source, CompileSource::kBuilt);
  EXPECT_EQ(compile_fresh(90).source, CompileSource::kRemoteCache);
  redis.stop();
  const uint64_t failures = count_of(CacheEvent::kRemoteFailure);
  for (int scale : {90, 91, 92}) {  // no server: every compile builds, none fails
    detail::CompileOutcome outcome = compile_fresh(scale);
    EXPECT_EQ(outcome.source, CompileSource::kBuilt);
    expect_axpy_correct(outcome.kernel, scale);
  }
  // Each failure switches the tier off for the back-off interval: the lookup and the publish
  // of a compile fail at most once each (both, when the build outlasts the interval).
  EXPECT_GE(count_of(CacheEvent::kRemoteFailure), failures + 1);
  EXPECT_LE(count_of(CacheEvent::kRemoteFailure), failures + 6);
  redis.start();                                                // empty: nothing was persisted
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // past the 300 ms back-off
  EXPECT_EQ(compile_fresh(93).source, CompileSource::kBuilt);
  EXPECT_EQ(compile_fresh(93).source, CompileSource::kRemoteCache);  // the tier is back
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("compiling locally, retrying in 300 ms"), std::string::npos) << log;
}

TEST(RemoteCache, WithoutASecretThereIsNoTier) {
  RedisServer redis;
  ScopedRemote remote(redis.url(), "");
  ::unsetenv("TILEJIT_REMOTE_CACHE_SECRET");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RemoteCache::from_url(""), nullptr);
  EXPECT_EQ(compile_fresh(95).source, CompileSource::kBuilt);
  EXPECT_EQ(compile_fresh(95).source, CompileSource::kBuilt);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("TILEJIT_REMOTE_CACHE_SECRET is not"), std::string::npos) << log;
  EXPECT_EQ(log.find("TILEJIT_REMOTE_CACHE_SECRET is not"),
            log.rfind("TILEJIT_REMOTE_CACHE_SECRET is not"))
      << "warned more than once: " << log;
  ::setenv("TILEJIT_REMOTE_CACHE_SECRET", "short", 1);
  EXPECT_EQ(RemoteCache::from_url(""), nullptr);
}

TEST(RemoteCache, SecretFromAPrivateFile) {
  RedisServer redis;
  ScopedCacheDir scratch;
  const fs::path private_file = scratch.scratch() / "secret";
  std::ofstream(private_file) << kSecret << "\n";
  fs::permissions(private_file, fs::perms::owner_read | fs::perms::owner_write);
  {
    ScopedRemote remote(redis.url(), "file:" + private_file.string());
    RemoteCache* tier = RemoteCache::from_url("");
    ASSERT_NE(tier, nullptr);
    EXPECT_EQ(tier->settings().secret, kSecret);  // without the trailing newline
  }
  const fs::path shared_file = scratch.scratch() / "shared-secret";
  fs::copy_file(private_file, shared_file);
  fs::permissions(shared_file, fs::perms::owner_read | fs::perms::group_read);
  ScopedRemote remote(redis.url(), "file:" + shared_file.string());
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RemoteCache::from_url(""), nullptr);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("must be owned by this user with mode 0600 or 0400 (it is 0440)"),
            std::string::npos)
      << log;
}

TEST(RemoteCache, AddressesAreParsedOrRejected) {
  std::string problem;
  const auto full = detail::RedisAddress::parse("redis://cache.example:6380/3", &problem);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->host, "cache.example");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);
  const auto bare = detail::RedisAddress::parse("redis://10.0.0.1", &problem);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 6379);
  EXPECT_EQ(bare->db, 0);
  const auto with_password = detail::RedisAddress::parse("redis://:pw@h:7/1", &problem);
  ASSERT_TRUE(with_password);
  EXPECT_EQ(with_password->user, "");
  EXPECT_EQ(with_password->password, "pw");
  EXPECT_EQ(with_password->host, "h");
  EXPECT_EQ(with_password->str(), "redis://***@h:7/1");
  const auto with_user = detail::RedisAddress::parse("redis://alice:s3:cret@h", &problem);
  ASSERT_TRUE(with_user);
  EXPECT_EQ(with_user->user, "alice");
  EXPECT_EQ(with_user->password, "s3:cret");
  for (const char* bad : {"http://x:1", "redis://", "redis://h:0", "redis://h:99999",
                          "redis://h:12x", "redis://h:1/db", "redis://user@h:1", "redis://u:@h"}) {
    EXPECT_FALSE(detail::RedisAddress::parse(bad, &problem)) << bad;
    EXPECT_FALSE(problem.empty()) << bad;
  }
}

}  // namespace
}  // namespace tilejit

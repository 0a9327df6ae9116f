// `tilejit cache list|info|clear|verify|key|stats|pack|unpack`: inspect and maintain the kernel
// cache (docs/cache.md, docs/cluster.md). --dir overrides TILELANG_CACHE_DIR.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cache/cache_archive.h"
#include "cache/cache_stats.h"
#include "cache/disk_cache.h"
#include "cli.h"
#include "compile/compile.h"
#include "remote/remote_cache.h"
#include "tilejit/errors.h"
#include "tilejit/jit.h"

namespace {

using tilejit::detail::DiskCache;

std::string human_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < 1024ULL * 1024 * 1024)
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024 * 1024));
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
}

std::string age(int64_t last_used_ns) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t seconds = std::max<int64_t>(0, (now - last_used_ns) / 1000000000);
  if (seconds < 120) return fmt::format("{}s ago", seconds);
  if (seconds < 7200) return fmt::format("{}m ago", seconds / 60);
  if (seconds < 172800) return fmt::format("{}h ago", seconds / 3600);
  return fmt::format("{}d ago", seconds / 86400);
}

DiskCache cache_at(const std::string& dir) {
  return DiskCache(dir.empty() ? DiskCache::root_from_env() : std::filesystem::path(dir),
                   DiskCache::max_bytes_from_env());
}

const tilejit::cli::Registration kRegistration{
    "cache", [](CLI::App& app) {
      auto* cmd = app.add_subcommand("cache", "Inspect and maintain the kernel cache");
      cmd->require_subcommand(1);
      auto dir = std::make_shared<std::string>();
      cmd->add_option("--dir", *dir,
                      "Cache directory (default: TILELANG_CACHE_DIR, else ~/.cache/tilejit)");

      auto* list = cmd->add_subcommand("list", "One line per entry, most recently used first");
      list->callback([dir] {
        const auto entries = cache_at(*dir).list(false);
        if (entries.empty()) {
          fmt::print("no entries\n");
          return;
        }
        fmt::print("{:<16}  {:>10}  {:>9}  {:<8}  {}\n", "key", "size", "used", "backend",
                   "program");
        for (const auto& entry : entries) {
          fmt::print("{:<16}  {:>10}  {:>9}  {:<8}  {}{}\n", entry.key.substr(0, 16),
                     human_bytes(entry.bytes), age(entry.last_used_ns), entry.backend,
                     entry.program_name, entry.problem.empty() ? "" : "  [" + entry.problem + "]");
        }
      });

      auto* info =
          cmd->add_subcommand("info", "Where the cache is, whether it is on, how big it is");
      info->callback([dir] {
        const DiskCache cache = cache_at(*dir);
        const auto entries = cache.list(false);
        uint64_t total = 0;
        for (const auto& entry : entries) total += entry.bytes;
        const bool disabled = tilejit::detail::env_flag("TILELANG_DISABLE_CACHE");
        fmt::print("directory:  {}/{}\n", cache.root().string(), DiskCache::kLayoutVersion);
        fmt::print("enabled:    {}\n", disabled ? "no (TILELANG_DISABLE_CACHE)" : "yes");
        fmt::print("entries:    {}\n", entries.size());
        fmt::print("size:       {}\n", human_bytes(total));
        fmt::print("size cap:   {}\n", cache.max_bytes() == 0
                                           ? std::string("none (TILELANG_CACHE_MAX_BYTES)")
                                           : human_bytes(cache.max_bytes()));
      });

      auto* clear = cmd->add_subcommand("clear", "Remove every entry");
      clear->callback([dir] {
        const DiskCache cache = cache_at(*dir);
        fmt::print("removed {} entries from {}\n", cache.clear(), cache.root().string());
      });

      auto* verify = cmd->add_subcommand(
          "verify", "Check every entry's hashes and permissions (exit 1 on a problem)");
      auto remove_broken = std::make_shared<bool>(false);
      verify->add_flag("--remove-broken", *remove_broken, "Remove the entries that fail");
      verify->callback([dir, remove_broken] {
        const DiskCache cache = cache_at(*dir);
        size_t bad = 0;
        const auto entries = cache.list(true);
        for (const auto& entry : entries) {
          if (entry.problem.empty()) continue;
          ++bad;
          fmt::print("{}: {}\n", entry.key, entry.problem);
          if (*remove_broken) cache.remove(entry.key);
        }
        fmt::print("{} entries checked, {} with problems{}\n", entries.size(), bad,
                   bad > 0 && *remove_broken ? " (removed)" : "");
        if (bad > 0 && !*remove_broken)
          throw tilejit::Error(fmt::format("cache verify: {} broken entries", bad));
      });

      auto* key = cmd->add_subcommand("key", "Print the cache key of a Program JSON file");
      auto program_path = std::make_shared<std::string>();
      auto options = std::make_shared<tilejit::CompileOptions>();
      key->add_option("program", *program_path, "Program JSON file")->required();
      tilejit::cli::add_compile_options(key, *options);
      key->callback([program_path, options] {
        fmt::print("{}\n", tilejit::cache_key(tilejit::Program::load(*program_path), *options));
      });

      auto* stats = cmd->add_subcommand(
          "stats", "Hit and miss counts recorded by finished processes; the remote tier's state");
      auto reset = std::make_shared<bool>(false);
      stats->add_flag("--reset", *reset, "Set the recorded counts back to zero");
      stats->callback([dir, reset] {
        const DiskCache cache = cache_at(*dir);
        if (*reset) {
          tilejit::detail::reset_recorded_cache_stats(cache.root());
          fmt::print("counts reset\n");
          return;
        }
        const auto recorded = tilejit::detail::recorded_cache_stats(cache.root());
        for (size_t i = 0; i < tilejit::detail::kCacheEventCount; ++i) {
          const std::string name =
              tilejit::detail::cache_event_name(static_cast<tilejit::detail::CacheEvent>(i));
          const auto it = recorded.find(name);
          fmt::print("{:<16} {}\n", name + ":", it == recorded.end() ? 0 : it->second);
        }
        const char* url = std::getenv("TILEJIT_REMOTE_CACHE");
        if (url == nullptr || *url == '\0') {
          fmt::print("{:<16} off (TILEJIT_REMOTE_CACHE is not set)\n", "remote:");
        } else if (tilejit::detail::RemoteCache* remote =
                       tilejit::detail::RemoteCache::from_url("")) {
          const std::string problem = remote->probe();
          fmt::print("{:<16} {} ({})\n", "remote:", remote->settings().address.str(),
                     problem.empty() ? "answers" : problem);
        } else {
          fmt::print("{:<16} off (see the warning above)\n", "remote:");
        }
      });

      auto* pack = cmd->add_subcommand(
          "pack", "Write verified entries (all, or those of the given Programs) to one archive");
      auto archive_path = std::make_shared<std::string>();
      auto programs = std::make_shared<std::vector<std::string>>();
      auto pack_options = std::make_shared<tilejit::CompileOptions>();
      pack->add_option("file", *archive_path, "Archive to write")->required();
      pack->add_option("programs", *programs, "Program JSON files (default: every entry)");
      pack->add_option("--target", pack_options->target, "Target of the Programs' entries");
      pack->add_option("--backend", pack_options->execution_backend, "Execution backend");
      pack->callback([dir, archive_path, programs, pack_options] {
        std::vector<std::string> keys;
        for (const std::string& program : *programs)
          keys.push_back(tilejit::cache_key(tilejit::Program::load(program), *pack_options));
        const DiskCache cache = cache_at(*dir);
        const std::string archive = tilejit::detail::pack_cache_entries(cache, keys);
        // Written beside the destination and renamed: a reader never sees half an archive.
        const std::string staged = *archive_path + ".partial";
        {
          std::ofstream out(staged, std::ios::binary | std::ios::trunc);
          out.write(archive.data(), static_cast<std::streamsize>(archive.size()));
          if (!out.flush())
            throw tilejit::Error(fmt::format("cache pack: cannot write '{}'", staged));
        }
        std::filesystem::rename(staged, *archive_path);
        const size_t count = keys.empty() ? cache.list(false).size() : keys.size();
        fmt::print("packed {} entries ({}) into {}\n", count, human_bytes(archive.size()),
                   *archive_path);
      });

      auto* unpack = cmd->add_subcommand(
          "unpack", "Check an archive from `cache pack`, then add its entries to the cache");
      auto unpack_path = std::make_shared<std::string>();
      unpack->add_option("file", *unpack_path, "Archive to read")->required();
      unpack->callback([dir, unpack_path] {
        std::ifstream in(*unpack_path, std::ios::binary);
        if (!in) throw tilejit::Error(fmt::format("cache unpack: cannot read '{}'", *unpack_path));
        const std::string archive((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
        const DiskCache cache = cache_at(*dir);
        const auto keys = tilejit::detail::unpack_cache_entries(cache, archive);
        fmt::print("unpacked {} entries into {}\n", keys.size(), cache.root().string());
      });
    }};

}  // namespace

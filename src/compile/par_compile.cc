// par_compile(): a pool of compile threads. Each compile() releases every lock before it
// builds, so N workers run N compilers at once.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "tilejit/errors.h"
#include "tilejit/jit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace detail {
namespace {

void write_stderr(const std::string& text) {
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace

std::vector<Kernel> par_compile_tasks(size_t count,
                                      const std::function<CompileReport(size_t)>& task,
                                      const std::function<std::string(size_t)>& describe,
                                      int num_workers, bool ignore_error) {
  std::vector<Kernel> results(count);
  std::vector<std::exception_ptr> errors(count);
  if (count == 0) return results;
  const size_t workers =
      std::min(count, static_cast<size_t>(num_workers > 0 ? num_workers : usable_cores()));
  const bool show_progress = ::isatty(STDERR_FILENO) == 1;

  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<size_t> hits{0};
  std::mutex progress_mutex;
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        CompileReport report = task(i);
        results[i] = std::move(report.kernel);
        if (report.cache_hit) hits.fetch_add(1);
      } catch (...) {
        errors[i] = std::current_exception();
      }
      const size_t finished = done.fetch_add(1) + 1;
      if (show_progress) {
        std::lock_guard lock(progress_mutex);
        write_stderr(fmt::format("\r{}/{} compiled, cache hits {}{}", finished, count, hits.load(),
                                 finished == count ? "\n" : ""));
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();  // the calling thread is one of the workers
  for (std::thread& thread : threads) thread.join();

  for (size_t i = 0; i < count; ++i) {
    if (!errors[i]) continue;
    if (!ignore_error) std::rethrow_exception(errors[i]);  // the first in input order
    try {
      std::rethrow_exception(errors[i]);
    } catch (const std::exception& e) {
      write_stderr(
          fmt::format("tilejit: par_compile: {} failed (ignored): {}\n", describe(i), e.what()));
    } catch (...) {
      write_stderr(fmt::format("tilejit: par_compile: {} failed (ignored)\n", describe(i)));
    }
  }
  return results;
}

}  // namespace detail

std::vector<Kernel> par_compile(std::span<const Program> programs, const CompileOptions& options,
                                int num_workers, bool ignore_error) {
  return detail::par_compile_tasks(
      programs.size(), [&](size_t i) { return detail::par_compile_one(programs[i], options); },
      [&](size_t i) { return fmt::format("Program {} '{}'", i, programs[i].name); }, num_workers,
      ignore_error);
}

}  // namespace tilejit

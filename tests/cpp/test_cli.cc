// The `tilejit` program, run as a subprocess: exit codes (0 ok, 1 user error with a one-line
// message), the subcommands, and `run --check` on every CPU example.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "private_cache.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;

detail::ProcessResult tilejit(std::vector<std::string> args) {
  args.insert(args.begin(), TILEJIT_TOOL_PATH);
  return detail::run_process(args, std::chrono::seconds(120));
}

std::string example(const char* name) {
  return (fs::path(TILEJIT_EXAMPLES_DIR) / (std::string(name) + ".json")).string();
}

void expect_contains(std::string_view text, std::string_view fragment) {
  EXPECT_NE(text.find(fragment), std::string_view::npos)
      << "output: " << text << "\nlacks: " << fragment;
}

// A user error: exit status 1 and exactly one line, naming what is wrong.
void expect_user_error(const detail::ProcessResult& r, std::string_view fragment) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("tilejit: error: ", 0), 0u) << r.output;
  ASSERT_FALSE(r.output.empty());
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "more than one line: " << r.output;
  expect_contains(r.output, fragment);
}

// A one-function C program writing `body` over out[0..n).
std::string write_program(const detail::TempDir& dir, const std::string& name,
                          const std::string& body) {
  const std::string json = R"({
  "format": "tilejit.program/1",
  "name": ")" + name + R"(",
  "language": "c",
  "source": "void )" + name +
                           R"((const float* x, float* out, int n) { )" + body + R"( }\n",
  "params": [
    {"name": "x", "dtype": "float32", "shape": ["n"]},
    {"name": "out", "dtype": "float32", "shape": ["n"]}
  ],
  "launches": [{"kernel": ")" +
                           name + R"("}],
  "out_idx": [1]
})";
  const fs::path path = dir.path() / (name + ".json");
  detail::write_file(path, json);
  return path.string();
}

TEST(Cli, InfoListsToolchains) {
  const auto r = tilejit({"info"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "tilejit 0.");
  expect_contains(r.output, "host compiler:");
  expect_contains(r.output, "nvcc:");
  expect_contains(r.output, "nvrtc:");
}

TEST(Cli, CompileDescribesAndShowsSources) {
  auto r = tilejit({"compile", example("vector_add")});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "backend:  cpu");
  expect_contains(r.output, "C: float32[n]  (output)");
  r = tilejit({"compile", example("vector_add"), "--show", "device"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "void vector_add(const float* A");
  r = tilejit({"compile", example("vector_add"), "--show", "host"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "call_packed");
  r = tilejit({"compile", example("two_pass"), "--out-idx", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "Y: float32[n]  (output)");
  EXPECT_EQ(r.output.find("T: float32[n]  (output)"), std::string::npos) << r.output;
}

TEST(Cli, RunCheckPassesOnEveryCpuExample) {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(TILEJIT_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".json") continue;
    ++seen;
    const auto r =
        tilejit({"run", entry.path().string(), "--check", "--default-size", "131", "--seed", "7"});
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.output;
    expect_contains(r.output, "check: every output element written, no NaN");
    expect_contains(r.output, "time: median");
  }
  EXPECT_GE(seen, 4);
}

TEST(Cli, RunPrintsChecksumsThatFollowTheData) {
  const auto a =
      tilejit({"run", example("vector_add"), "--set", "n=100", "--seed", "1", "--repeat", "1"});
  const auto b =
      tilejit({"run", example("vector_add"), "--set", "n=100", "--seed", "1", "--repeat", "1"});
  const auto c =
      tilejit({"run", example("vector_add"), "--set", "n=100", "--seed", "2", "--repeat", "1"});
  ASSERT_EQ(a.exit_code, 0) << a.output;
  expect_contains(a.output, "C: float32[100] sum=");
  const auto checksum = [](const std::string& out) { return out.substr(0, out.find("time:")); };
  EXPECT_EQ(checksum(a.output), checksum(b.output));
  EXPECT_NE(checksum(a.output), checksum(c.output));
}

TEST(Cli, CheckCatchesUnwrittenAndNaNOutputs) {
  detail::TempDir dir("tilejit-cli-test");
  auto r = tilejit(
      {"run", write_program(dir, "half_written", "for (int i = 0; i < n / 2; ++i) out[i] = x[i];"),
       "--set", "n=10", "--check"});
  expect_user_error(r, "'out' has 5 unwritten element(s), the first at flat index 5");
  r = tilejit({"run",
               write_program(dir, "makes_nan",
                             "for (int i = 0; i < n; ++i) out[i] = (x[i] - x[i]) / 0.0f;"),
               "--set", "n=10", "--check"});
  expect_user_error(r, "NaN");
  r = tilejit({"run",
               write_program(dir, "all_written", "for (int i = 0; i < n; ++i) out[i] = 2 * x[i];"),
               "--set", "n=10", "--check"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Cli, UserErrorsExitOneWithOneLine) {
  detail::TempDir dir("tilejit-cli-test");
  expect_user_error(tilejit({"frobnicate"}), "subcommand");
  expect_user_error(tilejit({"compile", (dir.path() / "missing.json").string()}), "missing.json");
  const fs::path malformed = dir.path() / "malformed.json";
  detail::write_file(malformed, "{\"format\": \"tilejit.program/1\", \"name\": ");
  expect_user_error(tilejit({"compile", malformed.string()}), "");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "m=3"}), "'m'");
  expect_user_error(tilejit({"run", example("vector_add")}), "--set n=");
  expect_user_error(tilejit({"compile", example("vector_add"), "--backend", "no_such_backend"}),
                    "no_such_backend");
}

// A compile error shows the compiler's diagnostic, not only the summary line, and where the
// whole log is. It used to end at "the host compiler (cc) failed on broken.c:".
TEST(Cli, CompileErrorShowsTheCompilersDiagnosticAndSavesTheLog) {
  detail::TempDir dir("tilejit-cli-test");
  const std::string program = write_program(dir, "broken", "out[0] = undeclared_name;");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"compile", program},
        std::vector<std::string>{"run", program, "--set", "n=4"}}) {
    const auto r = tilejit(args);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("tilejit: error: broken: the host compiler", 0), 0u) << r.output;
    // The compiler's own line: file, line, and the identifier it cannot find.
    expect_contains(r.output, "\n  ");
    expect_contains(r.output, "undeclared_name");
    expect_contains(r.output, "error");
    const std::string marker = "tilejit: full compiler log: ";
    const size_t at = r.output.find(marker);
    ASSERT_NE(at, std::string::npos) << r.output;
    const size_t end = r.output.find('\n', at);
    const fs::path log = r.output.substr(at + marker.size(), end - at - marker.size());
    ASSERT_TRUE(fs::exists(log)) << log;
    expect_contains(detail::read_file(log), "undeclared_name");
    fs::remove(log);
  }
}

// A 50,000-term shape expression: exit 1 with the depth limit, not a crash (it was exit 139).
TEST(Cli, LongFlatShapeExpressionIsAUserError) {
  detail::TempDir dir("tilejit-cli-test");
  std::string shape = "n";
  for (int i = 0; i < 25000; ++i) shape += " + n - n";
  std::string json = detail::read_file(example("vector_add"));
  const std::string first = "\"n\"";
  const size_t at = json.rfind(first);  // C's shape, the last param
  ASSERT_NE(at, std::string::npos);
  json.replace(at, first.size(), "\"" + shape + "\"");
  const fs::path path = dir.path() / "deep.json";
  detail::write_file(path, json);
  expect_user_error(tilejit({"compile", path.string(), "--backend", "cpu"}),
                    "nested deeper than 1000 levels");
}

// --set parses integers exactly: no trip through a double, no hex, no exponent.
TEST(Cli, SetParsesIntegersExactly) {
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n=1e3"}),
                    "'n' takes an integer");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n=0x10"}),
                    "'n' takes an integer");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n=12.0"}),
                    "'n' takes an integer");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n=+5"}),
                    "'n' takes an integer");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n="}), "'n' takes an integer");
  expect_user_error(tilejit({"run", example("vector_add"), "--set", "n=9223372036854775808"}),
                    "'9223372036854775808' does not fit in a 64-bit signed integer");
  // INT64_MAX is read exactly (through a double it became INT64_MIN); the size is then too
  // large to allocate, and the message shows the exact value.
  const auto r = tilejit({"run", example("vector_add"), "--set", "n=9223372036854775807"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_contains(r.output, "9223372036854775807");
  EXPECT_EQ(r.output.find("-9223372036854775808"), std::string::npos) << r.output;
  // 2^53 + 1 is not a double: its last digit survives.
  const auto odd = tilejit({"run", example("vector_add"), "--set", "n=-9007199254740993"});
  EXPECT_EQ(odd.exit_code, 1) << odd.output;
  expect_contains(odd.output, "-9007199254740993");
}

// The seed's option meanings (docs/seed-compat.md) reach the CLI through CompileOptions.
TEST(Cli, SeedBackendNamesTargetHostAndHostCompiler) {
  auto r =
      tilejit({"compile", example("vector_add"), "--backend", "cython", "--target-host", "llvm"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r.output, "backend:  cpu");
  r = tilejit({"run", example("vector_add"), "--set", "n=19", "--check", "--host-compiler", "cc"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_user_error(tilejit({"compile", example("vector_add"), "--target-host", "gcc"}),
                    "--host-compiler");
  expect_user_error(tilejit({"compile", example("vector_add"), "--backend", "cutedsl"}),
                    "CuTe DSL");
  const std::string plain = tilejit({"cache", "key", example("vector_add")}).output;
  EXPECT_EQ(tilejit({"cache", "key", example("vector_add"), "--backend", "tvm_ffi"}).output, plain);
  EXPECT_NE(tilejit({"cache", "key", example("vector_add"), "--host-compiler", "cc"}).output,
            plain);
}

TEST(Cli, HelpAndVersionExitZero) {
  EXPECT_EQ(tilejit({"--help"}).exit_code, 0);
  const auto r = tilejit({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  expect_contains(r.output, "tilejit 0.");
}

}  // namespace
}  // namespace tilejit

// The compilers' dependency output, reduced to the Program's own headers.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "backend/dependencies.h"
#include "tilejit/errors.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::headers_under;
using detail::parse_make_dependencies;

TEST(Dependencies, ParsesGccAndNvccMakeRules) {
  // GCC: "target: a b \" lines; nvcc: "target : a \" with one prerequisite per line.
  EXPECT_EQ(
      parse_make_dependencies("lib.so: k.c /usr/include/stdc-predef.h inc/a.h \\\n"
                              " inc/sub/b.h\n"),
      (std::vector<std::string>{"k.c", "/usr/include/stdc-predef.h", "inc/a.h", "inc/sub/b.h"}));
  EXPECT_EQ(parse_make_dependencies("libkernel.so : host.cu \\\n    /x/a.h \\\n    /x/b.h\n"),
            (std::vector<std::string>{"host.cu", "/x/a.h", "/x/b.h"}));
  // Escaped spaces and '#', and make's "$$", belong to the path; -MP's empty rules are not
  // prerequisites.
  EXPECT_EQ(parse_make_dependencies("t.o: /my\\ dir/a\\#1.h cost$$.h\n\n/my\\ dir/a\\#1.h:\n"),
            (std::vector<std::string>{"/my dir/a#1.h", "cost$.h"}));
  EXPECT_THROW((void)parse_make_dependencies("no rule here"), Error);
}

TEST(Dependencies, KeepsOnlyHeadersUnderTheUserDirectoriesNormalized) {
  const fs::path cwd = fs::current_path();
  const std::vector<fs::path> dirs = {"/work/include", cwd / "rel"};
  std::vector<std::string> expected = {(cwd / "rel" / "c.h").string(), "/work/include/a.h",
                                       "/work/include/b.h"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(headers_under({"/usr/include/stdio.h", "/work/include/b.h", "/work/include/x/../a.h",
                           "rel/c.h", "/work/includeX/d.h", "/work/include/b.h"},
                          dirs),
            expected);
}

}  // namespace
}  // namespace tilejit

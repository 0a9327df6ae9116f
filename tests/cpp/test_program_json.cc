#include <gtest/gtest.h>

#include <cstring>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
const fs::path kPrograms = fs::path(TILEJIT_TEST_DATA_DIR) / "programs";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A Program that uses every field with a non-default value somewhere.
Program rich_program() {
  TmaDescriptor tiled;
  tiled.name = "A_desc";
  tiled.buffer = "A";
  tiled.rank = 2;
  tiled.box_dims = {64, 128};
  tiled.element_strides = {1, 2};
  tiled.interleave = "none";
  tiled.swizzle = "128b_atom_32b";
  tiled.l2_promotion = "256b";
  tiled.oob_fill = "nan_request_zero_fma";

  TmaDescriptor tiled_explicit;
  tiled_explicit.name = "S_desc";
  tiled_explicit.buffer = "S";
  tiled_explicit.rank = 3;
  tiled_explicit.global_dims = {"K", 16, "ceildiv(M, 2)"};
  tiled_explicit.global_strides = {"ld * 2", "ld * 32"};
  tiled_explicit.box_dims = {256, 1, 8};
  tiled_explicit.interleave = "32b";

  TmaDescriptor im2col;
  im2col.name = "X_desc";
  im2col.buffer = "X";
  im2col.kind = TmaDescriptor::Kind::kIm2col;
  im2col.rank = 5;
  im2col.lower_corner = {-1, -2, -3};
  im2col.upper_corner = {1, 2, 3};
  im2col.channels_per_pixel = 32;
  im2col.pixels_per_column = 256;
  im2col.swizzle = "64b";

  L2Window window;
  window.param = "B";
  window.num_bytes = Expr::parse("min(K * N * 2, 1048576)");
  window.hit_ratio = 0.375;
  window.hit_property = "streaming";
  window.miss_property = "normal";

  return ProgramBuilder("rich")
      .source("extern \"C\" __global__ void k(...) {}\n\"quotes\" \\ and \t tabs, ünïcode",
              Language::kCuda)
      .tensor("A", "float8_e4m3", {"M", "K"})
      .tensor("B", "bfloat16x2", {"K", "N"}, std::vector<Expr>{"N", 1})
      .tensor("S", "float4_e2m1", {"M", "K", 16}, std::vector<Expr>{"ld * 16", "ld", 1})
      .tensor("X", "int8", {2, 3, 4, 5, 6})
      .tensor("Z", "float32", {})  // 0-d tensor, distinct from a scalar
      .scalar("ld", "int64")
      .scalar("alpha", "float64")
      .scalar("flag", "bool")
      .scalar("ptr", "handle")
      .launch(Launch("k")
                  .with_grid({"ceildiv(N, 128)", "ceildiv(M, 64) * 2", 3})
                  .with_block({128, 2})
                  .with_dynamic_smem("ld * 1024 + 512")
                  .with_cluster({2, 1, 2})
                  .with_cooperative()
                  .with_pdl()
                  .with_args({"A_desc", "B", "M", "ld", "alpha"})
                  .with_l2_window(window)
                  .with_l2_window(L2Window{"A", Expr(4096)}))
      .launch(Launch("k2").with_grid({-1 * Expr::var("M") + 2 * Expr::var("K")}).with_args({}))
      .tma(tiled)
      .tma(tiled_explicit)
      .tma(im2col)
      .include_dir("/opt/include")
      .include_dir("rel/include")
      .define("TILE", "128")
      .define("ALPHA")
      .out_idx({-5, 1})
      .compile_flag("-O3")
      .compile_flag("--use_fast_math")
      .build();
}

TEST(ProgramJson, RichProgramRoundTripsAndPrintsCanonically) {
  Program p = rich_program();
  std::string json = p.to_json();
  Program q = Program::from_json(json);
  EXPECT_EQ(q, p);
  EXPECT_EQ(q.to_json(), json);
  // Indentation is presentation only.
  EXPECT_EQ(Program::from_json(p.to_json(-1)), p);
  EXPECT_EQ(Program::from_json(p.to_json(0)), p);

  // Spot-check the representation the format promises: constants as integers, expressions
  // as canonical strings, 0-d tensors keep "shape": [], scalars have no "shape".
  auto doc = nlohmann::json::parse(json);
  EXPECT_EQ(doc["format"], "tilejit.program/1");
  EXPECT_EQ(doc["params"][1]["strides"][1], 1);
  EXPECT_EQ(doc["params"][1]["strides"][0], "N");
  EXPECT_TRUE(doc["params"][4]["shape"].is_array());
  EXPECT_TRUE(doc["params"][4]["shape"].empty());
  EXPECT_FALSE(doc["params"][5].contains("shape"));
  EXPECT_EQ(doc["launches"][0]["dynamic_smem"], "ld * 1024 + 512");
  EXPECT_EQ(doc["launches"][1]["grid"][0], "-1 * M + 2 * K");
  EXPECT_TRUE(doc["launches"][1]["args"].is_array());
  EXPECT_FALSE(doc["launches"][1].contains("cluster"));
}

TEST(ProgramJson, EveryFieldChangeChangesTheJson) {
  const Program base = rich_program();
  const std::string base_json = base.to_json();
  std::vector<std::function<void(Program&)>> edits = {
      [](Program& p) { p.name = "other"; },
      [](Program& p) { p.language = Language::kHip; },
      [](Program& p) { p.source += " "; },
      [](Program& p) { p.params[0].dtype = DataType::parse("float8_e5m2"); },
      [](Program& p) { p.params[0].shape[1] = Expr::parse("K + 1"); },
      [](Program& p) { p.params[1].strides.reset(); },
      [](Program& p) { p.launches[0].grid[2] = Expr(4); },
      [](Program& p) { p.launches[0].block[2] = Expr(2); },
      [](Program& p) { p.launches[0].dynamic_smem = Expr(0); },
      [](Program& p) {
        p.launches[0].cluster = {1, 1, 1};
      },
      [](Program& p) { p.launches[0].cooperative = false; },
      [](Program& p) { p.launches[0].pdl = false; },
      [](Program& p) { p.launches[1].args.reset(); },
      [](Program& p) { p.launches[1].signature = "float* C, float alpha, int M, int N"; },
      [](Program& p) { p.params[0].dtype = DataType::parse("complex128"); },
      [](Program& p) { p.launches[1].kernel = "ns::scale<float, 4>"; },
      [](Program& p) { p.launches[0].l2_windows[0].hit_ratio = 0.5; },
      [](Program& p) { p.launches[0].l2_windows[0].hit_property = "persisting"; },
      [](Program& p) { p.launches[0].l2_windows[0].miss_property = "streaming"; },
      [](Program& p) { p.tma_descriptors[0].box_dims[0] = 32; },
      [](Program& p) { p.tma_descriptors[0].element_strides.clear(); },
      [](Program& p) { p.tma_descriptors[0].swizzle = "none"; },
      [](Program& p) { p.tma_descriptors[0].l2_promotion = "none"; },
      [](Program& p) { p.tma_descriptors[0].oob_fill = "none"; },
      [](Program& p) { p.tma_descriptors[1].interleave = "none"; },
      [](Program& p) { p.tma_descriptors[1].global_strides[0] = Expr::parse("ld * 4"); },
      [](Program& p) { p.tma_descriptors[2].lower_corner[0] = 0; },
      [](Program& p) { p.tma_descriptors[2].channels_per_pixel = 16; },
      [](Program& p) { p.tma_descriptors[2].pixels_per_column = 128; },
      [](Program& p) { p.include_dirs.pop_back(); },
      [](Program& p) { p.defines["TILE"] = "64"; },
      [](Program& p) { p.out_idx = {1}; },
      [](Program& p) { p.compile_flags.clear(); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    SCOPED_TRACE("edit " + std::to_string(i));
    Program changed = base;
    edits[i](changed);
    ASSERT_NE(changed, base);
    std::string json = changed.to_json();
    EXPECT_NE(json, base_json);
    EXPECT_EQ(Program::from_json(json), changed);
  }
}

TEST(ProgramJson, GoldenFilesLoadRoundTripAndMatchTheirCanonicalForm) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kPrograms)) {
    std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".json" || file.starts_with("canonical_")) continue;
    SCOPED_TRACE(file);
    Program p = Program::load(entry.path());
    std::string json = p.to_json();
    EXPECT_EQ(Program::from_json(json), p);
    fs::path canonical = kPrograms / ("canonical_" + file);
    ASSERT_TRUE(fs::exists(canonical)) << "every golden input has its canonical print";
    EXPECT_EQ(json + "\n", read_file(canonical));
    EXPECT_EQ(Program::load(canonical), p);
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

TEST(ProgramJson, GoldenTmaL2ProgramHasTheDocumentedContent) {
  Program p = Program::load(kPrograms / "gemm_tma_l2.json");
  ASSERT_EQ(p.launches.size(), 2u);
  EXPECT_EQ(p.launches[0].cluster, (std::array<uint32_t, 3>{2, 1, 1}));
  EXPECT_EQ(p.launches[0].grid[1], Expr::parse("ceildiv(M, 128)"));
  EXPECT_EQ(p.launches[0].grid[2], Expr(1));
  EXPECT_EQ(p.launches[0].l2_windows.at(0).hit_ratio, 0.6);
  EXPECT_EQ(p.launches[0].l2_windows.at(0).miss_property, "streaming");
  EXPECT_TRUE(p.launches[1].pdl);
  ASSERT_EQ(p.tma_descriptors.size(), 2u);
  EXPECT_EQ(p.tma_descriptors[1].global_dims, (std::vector<Expr>{"N", "K"}));
  EXPECT_EQ(p.tma_descriptors[0].interleave, "none");
  // "source" given as an array of lines: each line ends with a newline.
  EXPECT_TRUE(p.source.starts_with("#include <tilejit/device.h>\n\nextern \"C\""));
  EXPECT_TRUE(p.source.ends_with("}\n"));
  EXPECT_EQ(p.shape_variables(), (std::vector<std::string>{"M", "K", "N"}));
}

TEST(ProgramJson, DocumentedExampleIsTheGoldenFile) {
  std::string doc =
      read_file(fs::path(TILEJIT_TEST_DATA_DIR) / ".." / ".." / "docs" / "program-format.md");
  size_t start = doc.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  size_t end = doc.find("```", start);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(Program::from_json(doc.substr(start, end - start)),
            Program::load(kPrograms / "gemm_tma_l2.json"));
}

// A minimal valid document; each malformed case below edits one thing in it.
nlohmann::json minimal() {
  return nlohmann::json::parse(R"({
    "format": "tilejit.program/1", "name": "p", "language": "cuda", "source": "",
    "params": [{"name": "A", "dtype": "float32", "shape": ["n", 4]},
               {"name": "B", "dtype": "float32", "shape": ["n", 4]},
               {"name": "k", "dtype": "int32"}],
    "launches": [{"kernel": "kern", "grid": ["n"], "block": [128],
                  "l2_windows": [{"param": "A", "num_bytes": 1024}]}],
    "tma_descriptors": [{"name": "A_desc", "buffer": "A", "rank": 2, "box_dims": [4, 8]}]
  })");
}

TEST(ProgramJson, MinimalDocumentIsValid) {
  EXPECT_NO_THROW(Program::from_json(minimal().dump()));
}

TEST(ProgramJson, MalformedDocumentsNameTheJsonPath) {
  using J = nlohmann::json;
  struct Case {
    std::string what;
    std::function<void(J&)> edit;
    std::string expected;  // must appear in the message
  };
  const std::vector<Case> cases = {
      {"missing format", [](J& j) { j.erase("format"); }, "format: missing required key"},
      {"wrong format", [](J& j) { j["format"] = "tilejit.program/2"; },
       "format: 'tilejit.program/2'"},
      {"unknown top key", [](J& j) { j["sauce"] = ""; }, "sauce: unknown key"},
      {"name not a string", [](J& j) { j["name"] = 3; }, "name: expected a string"},
      {"bad language", [](J& j) { j["language"] = "fortran"; },
       "language: unknown language 'fortran'"},
      {"source not text", [](J& j) { j["source"] = 1; }, "source: expected a string or an array"},
      {"source line not text",
       [](J& j) {
         j["source"] = J::array({"a", 2});
       },
       "source[1]: expected a string"},
      {"params not array", [](J& j) { j["params"] = J::object(); }, "params: expected an array"},
      {"param not object", [](J& j) { j["params"][1] = "B"; }, "params[1]: expected a JSON object"},
      {"param unknown key", [](J& j) { j["params"][0]["shpe"] = J::array(); },
       "params[0].shpe: unknown key"},
      {"param no name", [](J& j) { j["params"][2].erase("name"); },
       "params[2].name: missing required key"},
      {"bad dtype", [](J& j) { j["params"][1]["dtype"] = "float33"; },
       "params[1].dtype: unknown dtype 'float33'"},
      {"float dim", [](J& j) { j["params"][1]["shape"][1] = 4.5; },
       "params[1].shape[1]: expected an integer or an expression string"},
      {"bad dim expr", [](J& j) { j["params"][1]["shape"][0] = "n +"; },
       "params[1].shape[0]: invalid expression 'n +' at column 4"},
      {"huge dim", [](J& j) { j["params"][1]["shape"][1] = 18446744073709551615ull; },
       "params[1].shape[1]"},
      {"scalar strides", [](J& j) { j["params"][2]["strides"] = J::array({1}); },
       "params[2].strides: a scalar"},
      {"stride type",
       [](J& j) {
         j["params"][0]["strides"] = J::array({true, 1});
       },
       "params[0].strides[0]: expected an integer or an expression string"},
      {"launch unknown key", [](J& j) { j["launches"][0]["gird"] = J::array({1}); },
       "launches[0].gird: unknown key"},
      {"launch no kernel", [](J& j) { j["launches"][0].erase("kernel"); },
       "launches[0].kernel: missing required key"},
      {"grid too long",
       [](J& j) {
         j["launches"][0]["grid"] = J::array({1, 2, 3, 4});
       },
       "launches[0].grid: expected an array of 1 to 3"},
      {"grid empty", [](J& j) { j["launches"][0]["grid"] = J::array(); },
       "launches[0].grid: expected an array of 1 to 3"},
      {"block expr", [](J& j) { j["launches"][0]["block"][0] = "(("; },
       "launches[0].block[0]: invalid expression"},
      {"smem type", [](J& j) { j["launches"][0]["dynamic_smem"] = J::array(); },
       "launches[0].dynamic_smem: expected an integer"},
      {"cluster zero",
       [](J& j) {
         j["launches"][0]["cluster"] = J::array({2, 0, 1});
       },
       "launches[0].cluster[1]: 0 is out of range"},
      {"cluster type", [](J& j) { j["launches"][0]["cluster"] = 2; },
       "launches[0].cluster: expected an array"},
      {"pdl type", [](J& j) { j["launches"][0]["pdl"] = "yes"; },
       "launches[0].pdl: expected true or false"},
      {"args type",
       [](J& j) {
         j["launches"][0]["args"] = J::array({"A", 3});
       },
       "launches[0].args[1]: expected a string"},
      {"l2 unknown key", [](J& j) { j["launches"][0]["l2_windows"][0]["ratio"] = 1; },
       "launches[0].l2_windows[0].ratio: unknown key"},
      {"l2 no bytes", [](J& j) { j["launches"][0]["l2_windows"][0].erase("num_bytes"); },
       "launches[0].l2_windows[0].num_bytes: missing required key"},
      {"l2 ratio type", [](J& j) { j["launches"][0]["l2_windows"][0]["hit_ratio"] = "1"; },
       "launches[0].l2_windows[0].hit_ratio: expected a number"},
      {"tma unknown key", [](J& j) { j["tma_descriptors"][0]["boxdims"] = 1; },
       "tma_descriptors[0].boxdims: unknown key"},
      {"tma kind", [](J& j) { j["tma_descriptors"][0]["kind"] = "tiles"; },
       "tma_descriptors[0].kind: 'tiles'"},
      {"tma rank range", [](J& j) { j["tma_descriptors"][0]["rank"] = 6; },
       "tma_descriptors[0].rank: 6 is out of range"},
      {"tma no rank", [](J& j) { j["tma_descriptors"][0].erase("rank"); },
       "tma_descriptors[0].rank: missing required key"},
      {"tma box negative", [](J& j) { j["tma_descriptors"][0]["box_dims"][1] = -8; },
       "tma_descriptors[0].box_dims[1]: -8 is out of range"},
      {"tma corner type", [](J& j) { j["tma_descriptors"][0]["lower_corner"] = J::array({"a"}); },
       "tma_descriptors[0].lower_corner[0]: expected an integer"},
      {"defines type",
       [](J& j) {
         j["defines"] = J::object({{"X", 1}});
       },
       "defines.X: expected a string"},
      {"out_idx type", [](J& j) { j["out_idx"] = J::array({"1"}); },
       "out_idx[0]: expected an integer"},
      {"flags type", [](J& j) { j["compile_flags"] = "-O3"; }, "compile_flags: expected an array"},
      {"top not object", [](J& j) { j = J::array(); }, "expected a JSON object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    J doc = minimal();
    c.edit(doc);
    try {
      Program::from_json(doc.dump());
      ADD_FAILURE() << "accepted: " << doc.dump();
    } catch (const ProgramError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
  }
}

TEST(ProgramJson, InvalidJsonTextIsAProgramError) {
  for (std::string text : {"", "{", "{\"format\": }", "[1, 2", "{\"a\": 1} trailing", "nul"}) {
    SCOPED_TRACE(text);
    try {
      Program::from_json(text);
      ADD_FAILURE() << "accepted";
    } catch (const ProgramError& e) {
      EXPECT_NE(std::string(e.what()).find("invalid JSON"), std::string::npos) << e.what();
    }
  }
}

TEST(ProgramJson, DuplicateKeysAreRefusedAtAnyDepth) {
  std::string doc = minimal().dump();
  // A duplicate at the top level, inside a param, and inside a launch's L2 window.
  for (auto [from, to, key] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"\"name\":\"p\"", "\"name\":\"p\",\"name\":\"q\"", "name"},
           {"\"dtype\":\"int32\"", "\"dtype\":\"int32\",\"dtype\":\"int64\"", "dtype"},
           {"\"num_bytes\":1024", "\"num_bytes\":1024,\"num_bytes\":2048", "num_bytes"}}) {
    SCOPED_TRACE(key);
    std::string edited = doc;
    size_t at = edited.find(from);
    ASSERT_NE(at, std::string::npos) << doc;
    edited.replace(at, from.size(), to);
    try {
      Program::from_json(edited);
      ADD_FAILURE() << "accepted " << edited;
    } catch (const ProgramError& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + key + "\" appears twice"), std::string::npos)
          << e.what();
    }
  }
  // The same key in sibling objects is fine.
  EXPECT_NO_THROW(Program::from_json(doc));
}

// Random edits of a valid document: each is read back as a Program or refused with a
// ProgramError, never another exception or a crash; what is read back round-trips.
TEST(ProgramJson, RandomlyMutatedDocumentsAreReadOrRefusedCleanly) {
  using J = nlohmann::json;
  const J original = J::parse(read_file(kPrograms / "gemm_tma_l2.json"));
  std::mt19937 rng(12345);
  const std::vector<J> replacements = {J(),         J(true),
                                       J(0),        J(-1),
                                       J(7),        J(1.5),
                                       J("x"),      J("M * 2"),
                                       J("(("),     J("float32"),
                                       J::array(),  J::array({1, 2, 3, 4}),
                                       J::object(), J(int64_t{1} << 40),
                                       J("tiled")};
  int accepted = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    J doc = original;
    for (int edit = 0; edit < 1 + static_cast<int>(rng() % 3); ++edit) {
      // Walk to a random node and replace it (or, in an object, drop one of its keys).
      J* node = &doc;
      while ((node->is_object() || node->is_array()) && !node->empty() && rng() % 3 != 0) {
        auto it = node->begin();
        std::advance(it, static_cast<long>(rng() % node->size()));
        node = &*it;
      }
      if (node->is_object() && !node->empty() && rng() % 2 == 0) {
        node->erase(node->begin());
      } else {
        *node = replacements[rng() % replacements.size()];
      }
    }
    try {
      Program p = Program::from_json(doc.dump());
      ASSERT_EQ(Program::from_json(p.to_json()), p) << doc.dump();
      ++accepted;
    } catch (const ProgramError&) {
      ++refused;
    }
  }
  EXPECT_GT(accepted, 50);
  EXPECT_GT(refused, 1000);
}

TEST(ProgramJson, LoadNamesTheFile) {
  fs::path missing = kPrograms / "does_not_exist.json";
  try {
    Program::load(missing);
    FAIL();
  } catch (const ProgramError& e) {
    EXPECT_NE(std::string(e.what()).find("does_not_exist.json"), std::string::npos) << e.what();
  }
  fs::path bad =
      fs::temp_directory_path() / ("tilejit_test_bad_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(bad);
    auto doc = minimal();
    doc["params"][0]["dtype"] = "complex32";
    out << doc.dump();
  }
  try {
    Program::load(bad);
    ADD_FAILURE();
  } catch (const ProgramError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(bad.filename().string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("params[0].dtype"), std::string::npos) << msg;
  }
  fs::remove(bad);
}

// Found by fuzz_program_json: a number beyond double's range made the JSON library throw
// out_of_range, which escaped as a foreign exception (exit 2 in the CLI).
TEST(ProgramJson, NumberOutOfRangeIsAProgramError) {
  for (const char* json :
       {R"({"format": 555554e5555})", R"({"format": "tilejit.program/1", "params": [1e400]})"}) {
    try {
      Program::from_json(json);
      ADD_FAILURE() << json;
    } catch (const ProgramError& e) {
      EXPECT_NE(std::string(e.what()).find("invalid JSON"), std::string::npos) << e.what();
    }
  }
}

TEST(ProgramJson, NonUtf8SourceIsAProgramErrorWhenPrinted) {
  Program p = rich_program();
  p.source = std::string("bad \xff\xfe byte");
  EXPECT_THROW(p.to_json(), ProgramError);
}

// ---------------------------------------------------------------------------------------------
// Program::validate, through the builder and the reader (which both call it).

void expect_invalid(const std::function<void(Program&)>& edit,
                    const std::vector<std::string>& expected) {
  Program p = Program::from_json(minimal().dump());
  edit(p);
  try {
    p.validate();
    ADD_FAILURE() << "accepted:\n" << p.to_json();
  } catch (const ProgramError& e) {
    for (const std::string& word : expected) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  }
  // The reader validates too.
  EXPECT_THROW(Program::from_json(p.to_json()), ProgramError);
}

// docs/program-format.md promises that every message starts with the JSON path of the
// offending value; validation messages used to start with "parameter 'C' shape[0]" or
// "program 'vadd' has no launches".
TEST(ProgramValidate, MessagesStartWithTheJsonPath) {
  const std::vector<std::pair<std::function<void(Program&)>, std::string>> cases = {
      {[](Program& p) { p.params[1].shape[0] = Expr(-4); }, "params[1].shape[0]"},
      {[](Program& p) { p.params[0].strides = std::vector<Expr>{1}; }, "params[0].strides"},
      {[](Program& p) { p.params[0].shape[1] = Expr::parse("ceildiv(w, 2)"); },
       "params[0].shape[1]"},
      {[](Program& p) { p.params[1].name = "n"; }, "params[1]"},
      {[](Program& p) { p.launches.clear(); }, "launches:"},
      {[](Program& p) { p.launches[0].grid[1] = Expr::var("q"); }, "launches[0].grid[1]"},
      {[](Program& p) { p.launches[0].block[0] = Expr(-32); }, "launches[0].block[0]"},
      {[](Program& p) {
         p.launches[0].cluster = {1, 0, 1};
       },
       "launches[0].cluster[1]"},
      {[](Program& p) { p.launches[0].dynamic_smem = Expr(-1); }, "launches[0].dynamic_smem"},
      {[](Program& p) {
         p.launches[0].args = std::vector<std::string>{"A", "nope"};
       },
       "launches[0].args"},
      {[](Program& p) { p.launches[0].l2_windows[0].hit_ratio = 1.5; },
       "launches[0].l2_windows[0].hit_ratio"},
      {[](Program& p) { p.launches[0].l2_windows[0].num_bytes = Expr(-5); },
       "launches[0].l2_windows[0].num_bytes"},
      {[](Program& p) { p.out_idx = {3}; }, "out_idx[0]"},
      {[](Program& p) {
         p.out_idx = {1, -2};
       },
       "out_idx[1]"},
      {[](Program& p) { p.tma_descriptors[0].rank = 3; }, "tma_descriptors[0]"},
  };
  for (const auto& [edit, path] : cases) {
    Program p = Program::from_json(minimal().dump());
    edit(p);
    try {
      p.validate();
      ADD_FAILURE() << "accepted: " << path;
    } catch (const ProgramError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
    }
  }
}

// A NUL (or another control character) in a name is shown escaped: it used to end the
// message where it stood.
TEST(ProgramValidate, ControlCharactersInNamesAreEscapedInTheMessage) {
  auto doc = minimal();
  doc["launches"][0]["kernel"] = std::string("vec\0add\n", 8);
  try {
    Program::from_json(doc.dump());
    ADD_FAILURE();
  } catch (const ProgramError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(std::strlen(e.what()), msg.size()) << "a NUL inside the message";
    EXPECT_NE(msg.find("'vec\\x00add\\x0a'"), std::string::npos) << msg;
    // A CUDA kernel may carry a C++ name (ns::k, k<float>), but never a control character.
    EXPECT_NE(msg.find("expected a C++ name"), std::string::npos) << msg;
  }
  doc = minimal();
  doc["params"][0]["name"] = std::string("A\0B", 3);
  try {
    Program::from_json(doc.dump());
    ADD_FAILURE();
  } catch (const ProgramError& e) {
    EXPECT_NE(std::string(e.what()).find("'A\\x00B'"), std::string::npos) << e.what();
  }
}

TEST(ProgramValidate, RejectsEachInconsistencyNamingIt) {
  expect_invalid([](Program& p) { p.name.clear(); }, {"name"});
  expect_invalid([](Program& p) { p.params[1].name = "A"; }, {"'A'", "twice"});
  expect_invalid([](Program& p) { p.params[1].name = "my-param"; }, {"'my-param'", "C identifier"});
  expect_invalid([](Program& p) { p.params[1].name = ""; }, {"params[1]"});
  expect_invalid([](Program& p) { p.launches.clear(); }, {"no launches"});
  expect_invalid([](Program& p) { p.launches[0].kernel = "2k"; }, {"'2k'"});
  expect_invalid([](Program& p) { p.launches[0].grid[1] = Expr::var("q"); },
                 {"grid.y", "'q'", "kern"});
  expect_invalid([](Program& p) { p.launches[0].block[2] = Expr::parse("n * zz"); },
                 {"block.z", "'zz'"});
  expect_invalid([](Program& p) { p.launches[0].dynamic_smem = Expr::var("smem"); },
                 {"dynamic_smem", "'smem'"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].num_bytes = Expr::var("nb"); },
                 {"num_bytes", "'nb'"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].param = "k"; },
                 {"l2_windows[0]", "'k'", "tensor parameter"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].hit_ratio = 0.0; },
                 {"hit_ratio", "0 < hit_ratio <= 1"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].hit_ratio = 1.5; }, {"hit_ratio"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].hit_property = "sticky"; },
                 {"hit_property", "'sticky'"});
  expect_invalid([](Program& p) { p.launches[0].cluster = {1, 0, 1}; }, {"cluster.y", ">= 1"});
  expect_invalid(
      [](Program& p) {
        p.launches[0].args = std::vector<std::string>{"A", "nope"};
      },
      {"'nope'"});
  expect_invalid([](Program& p) { p.out_idx = {3}; }, {"out_idx 3", "out of range"});
  expect_invalid([](Program& p) { p.out_idx = {-4}; }, {"out_idx -4"});
  expect_invalid([](Program& p) { p.out_idx = {2}; }, {"scalar parameter 'k'"});
  expect_invalid([](Program& p) { p.out_idx = {1, -2}; }, {"'B' twice"});
  expect_invalid([](Program& p) { p.params[0].strides = std::vector<Expr>{1}; },
                 {"'A'", "strides"});
  expect_invalid([](Program& p) { p.params[0].shape[1] = Expr::parse("ceildiv(w, 2)"); },
                 {"'w'", "shape[1]"});
  expect_invalid([](Program& p) { p.params[1].name = "n"; }, {"'n'", "shape/stride variable"});
  expect_invalid([](Program& p) { p.defines["1BAD"] = "1"; }, {"'1BAD'"});
  expect_invalid([](Program& p) { p.launches[0].grid[2] = Expr(0); }, {"grid.z", ">= 1"});
  expect_invalid([](Program& p) { p.launches[0].block[0] = Expr(-32); }, {"block.x", "-32"});
  expect_invalid([](Program& p) { p.launches[0].dynamic_smem = Expr(-1); }, {"dynamic_smem"});
  expect_invalid([](Program& p) { p.launches[0].l2_windows[0].num_bytes = Expr(-5); },
                 {"num_bytes"});
  expect_invalid([](Program& p) { p.params[0].shape[1] = Expr(-4); },
                 {"params[0].shape[1] of parameter 'A'", "-4"});
  // TMA descriptors.
  expect_invalid([](Program& p) { p.tma_descriptors[0].buffer = "Q"; }, {"A_desc", "'Q'"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].buffer = "k"; }, {"A_desc", "tensor"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].rank = 3; }, {"A_desc", "rank 3"});
  expect_invalid(
      [](Program& p) {
        p.tma_descriptors[0].box_dims = {4, 257};
      },
      {"box_dims[1]", "1..256"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].box_dims = {4, 0}; }, {"box_dims[1]"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].box_dims = {4}; }, {"box_dims"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].global_dims = {"n"}; }, {"global_dims"});
  expect_invalid(
      [](Program& p) {
        p.tma_descriptors[0].global_dims = {"n", "v"};
      },
      {"global_dims[1]", "'v'"});
  expect_invalid(
      [](Program& p) {
        p.tma_descriptors[0].global_strides = {16, 32};
      },
      {"global_strides", "rank - 1"});
  expect_invalid(
      [](Program& p) {
        p.tma_descriptors[0].element_strides = {1, 9};
      },
      {"element_strides[1]"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].swizzle = "256b"; }, {"swizzle", "'256b'"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].interleave = "8b"; }, {"interleave"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].l2_promotion = "512b"; }, {"l2_promotion"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].oob_fill = "zero"; }, {"oob_fill"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].name = "A"; }, {"distinct"});
  expect_invalid([](Program& p) { p.tma_descriptors.push_back(p.tma_descriptors[0]); },
                 {"'A_desc'", "twice"});
  expect_invalid([](Program& p) { p.tma_descriptors[0].lower_corner = {0}; }, {"im2col"});
  auto make_im2col = [](Program& p, uint32_t rank, std::vector<int32_t> lower) {
    p.params[0].shape.resize(rank, Expr(8));
    TmaDescriptor& d = p.tma_descriptors[0];
    d.kind = TmaDescriptor::Kind::kIm2col;
    d.rank = rank;
    d.box_dims.clear();
    d.lower_corner = std::move(lower);
    d.upper_corner.assign(rank - 2, 0);
    d.channels_per_pixel = 8;
    d.pixels_per_column = 32;
  };
  // Corner ranges shrink with the rank: [-32768, 32767], [-128, 127], [-16, 15].
  expect_invalid([&](Program& p) { make_im2col(p, 3, {32768}); },
                 {"lower_corner[0] is 32768", "-32768..32767"});
  expect_invalid(
      [&](Program& p) {
        make_im2col(p, 4, {0, -129});
      },
      {"lower_corner[1] is -129", "-128..127"});
  expect_invalid([&](Program& p) { make_im2col(p, 5, {0, 16, 0}); }, {"-16..15"});
  expect_invalid(
      [&](Program& p) {
        make_im2col(p, 4, {1, 1});
        p.tma_descriptors[0].pixels_per_column = 1025;
      },
      {"pixels_per_column 1025"});
  {
    Program ok = Program::from_json(minimal().dump());
    make_im2col(ok, 5, {-16, 15, 0});
    EXPECT_NO_THROW(ok.validate());
    make_im2col(ok, 3, {-32768});
    EXPECT_NO_THROW(ok.validate());
  }
  expect_invalid(
      [](Program& p) {
        p.tma_descriptors[0].kind = TmaDescriptor::Kind::kIm2col;  // rank 2 < 3
      },
      {"rank 2", "im2col"});
}

TEST(ProgramValidate, AcceptsWhatTheFormatAllows) {
  // Metal programs may have no launches; integer scalars act as symbols.
  EXPECT_NO_THROW(Program::load(kPrograms / "metal_passthrough.json"));
  Program p = Program::from_json(minimal().dump());
  p.launches[0].grid[1] = Expr::parse("ceildiv(k, 4)");
  p.launches[0].args = std::vector<std::string>{"A_desc", "B", "n", "k"};
  p.out_idx = {-2, 0};
  EXPECT_NO_THROW(p.validate());
}

TEST(ProgramModel, ShapeVariablesFindParamAndLanguages) {
  Program p = rich_program();
  EXPECT_EQ(p.shape_variables(), (std::vector<std::string>{"M", "K", "N", "ld"}));
  ASSERT_NE(p.find_param("ld"), nullptr);
  EXPECT_TRUE(p.find_param("ld")->is_scalar());
  EXPECT_EQ(p.find_param("nope"), nullptr);
  for (Language l : {Language::kCuda, Language::kC, Language::kHip, Language::kMetal}) {
    EXPECT_EQ(parse_language(to_string(l)), l);
  }
  EXPECT_THROW(parse_language("CUDA"), ProgramError);
  EXPECT_THROW(Launch("k").with_grid({}), ProgramError);
  EXPECT_THROW(Launch("k").with_block({1, 2, 3, 4}), ProgramError);
  Launch l = Launch("k").with_grid({"n"});
  EXPECT_EQ(l.grid[1], Expr(1));
  EXPECT_EQ(l.grid[2], Expr(1));
  EXPECT_THROW(ProgramBuilder("p").tensor("A", "float", {1}), ProgramError);
}

}  // namespace
}  // namespace tilejit

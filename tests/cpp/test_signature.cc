#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ir/signature.h"
#include "tilejit/errors.h"
#include "tilejit/program.h"

namespace tilejit::detail {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProgramError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> names_of(const std::vector<KernelDeclaration>& decls) {
  std::vector<std::string> out;
  for (const KernelDeclaration& d : decls) out.push_back(d.name);
  return out;
}

const char* kTrickySource = R"SRC(
#include <cuda_fp16.h>
#define DECLARE(name) __global__ void name(float* x)
#define MULTI_LINE_MACRO \
  __global__ void macro_kernel(int a) {}
// __global__ void in_line_comment(int x) {}
/* __global__ void in_block_comment(int x) {}
   extern "C" __global__ void also_commented(float* y); */
static const char* kText = "__global__ void in_string(int z) { \" } ";
static const char kBrace = '{';
static const char kQuote = '"';
static const char* kRaw = R"raw(__global__ void in_raw_string() { )raw";
struct Helper {
  __device__ void method(int) {}
  static __global__ void member_kernel(int);
};
int table[3] = {1, 2, 3};
__device__ int device_function(int a) { return a + 1; }

#if 0
__global__ void disabled(int x) {}
#  ifdef NESTED
__global__ void disabled_nested(int x) {}
#  else
__global__ void disabled_else(int x) {}
#  endif
__global__ void disabled_after_nested(int x) {}
#endif
#if 0  // a comment
__global__ void disabled_two(int x) {}
#else
__global__ void enabled_else(int x) {}
#endif
#if 01
#endif

template <typename T, int N = sizeof(T)>
__global__ void templated(T* out) { out[0] = T(N); }

__global__ void forward(const float*, float*, int);

extern "C" {
__global__ void __launch_bounds__(256, 2)
first(const float* __restrict__ A,
      float *__restrict__ B,
      int n)
{
  if (n > 0) { B[0] = A[0]; }
}

__global__ void second(const __grid_constant__ CUtensorMap desc, long long m,
                       unsigned int flags, double scale, __half h, bool on, int64_t big) {}
}

namespace inner {
__global__ __launch_bounds__(128) void third(float values[], const int count) {}
}

extern "C" __global__ void forward(const float* in, float* out, int n) {
  /* a } in a comment */ const char* s = "}";
}
)SRC";

TEST(Signature, FindsEveryKernelAndOnlyKernels) {
  EXPECT_EQ(names_of(parse_kernel_declarations(kTrickySource, true)),
            (std::vector<std::string>{"enabled_else", "templated", "forward", "first", "second",
                                      "third", "forward"}));
}

// The last parse is kept per thread (declarations.cc): a different source, the same source
// edited in place, or the other require_global must each be parsed afresh.
TEST(Signature, EachSourceGetsItsOwnDeclarations) {
  std::string source =
      "extern \"C\" __global__ void k(float* x, int n) {}\nvoid host_fn(int a) {}\n";
  const std::vector<std::string> tricky = names_of(parse_kernel_declarations(kTrickySource, true));
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(names_of(parse_kernel_declarations(source, true)), std::vector<std::string>{"k"});
    EXPECT_EQ(names_of(parse_kernel_declarations(source, false)),
              (std::vector<std::string>{"k", "host_fn"}));
    EXPECT_EQ(names_of(parse_kernel_declarations(kTrickySource, true)), tricky);
  }
  source.replace(source.find("void k("), 7, "void q(");  // same buffer, new text
  std::vector<KernelDeclaration> edited = parse_kernel_declarations(source, true);
  ASSERT_EQ(names_of(edited), std::vector<std::string>{"q"});
  EXPECT_EQ(edited[0].params.size(), 2u);
  EXPECT_EQ(edited[0].params[1].c_type, "int");
}

TEST(Signature, NormalizesParameterTypesAndNames) {
  KernelDeclaration first = parse_kernel_declaration(kTrickySource, "first");
  ASSERT_EQ(first.params.size(), 3u);
  EXPECT_EQ(first.params[0].c_type, "const float*");
  EXPECT_EQ(first.params[0].name, "A");
  EXPECT_EQ(first.params[1].c_type, "float*");
  EXPECT_EQ(first.params[1].name, "B");
  EXPECT_EQ(first.params[2].c_type, "int");
  EXPECT_EQ(first.params[2].name, "n");
  EXPECT_TRUE(first.is_definition);

  KernelDeclaration second = parse_kernel_declaration(kTrickySource, "second");
  std::vector<std::pair<std::string, std::string>> expected = {{"const CUtensorMap", "desc"},
                                                               {"long long", "m"},
                                                               {"unsigned int", "flags"},
                                                               {"double", "scale"},
                                                               {"__half", "h"},
                                                               {"bool", "on"},
                                                               {"int64_t", "big"}};
  ASSERT_EQ(second.params.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(second.params[i].c_type, expected[i].first);
    EXPECT_EQ(second.params[i].name, expected[i].second);
  }

  KernelDeclaration third = parse_kernel_declaration(kTrickySource, "third");
  ASSERT_EQ(third.params.size(), 2u);
  EXPECT_EQ(third.params[0].c_type, "float*");
  EXPECT_EQ(third.params[0].name, "values");
  EXPECT_EQ(third.params[1].c_type, "const int");
  EXPECT_EQ(third.params[1].name, "count");
}

TEST(Signature, PrefersTheDefinitionOverAnUnnamedForwardDeclaration) {
  std::vector<KernelDeclaration> all = parse_kernel_declarations(kTrickySource, true);
  ASSERT_FALSE(all[2].is_definition);
  EXPECT_EQ(all[2].params[0].name, "");
  EXPECT_EQ(all[2].params[0].c_type, "const float*");
  KernelDeclaration forward = parse_kernel_declaration(kTrickySource, "forward");
  EXPECT_TRUE(forward.is_definition);
  ASSERT_EQ(forward.params.size(), 3u);
  EXPECT_EQ(forward.params[1].name, "out");
}

TEST(Signature, TemplatesNamedWithoutArgumentsNameTheFix) {
  std::string msg = error_of([] { parse_kernel_declaration(kTrickySource, "templated"); });
  EXPECT_NE(msg.find("'templated' is a template"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"templated<float>\""), std::string::npos) << msg;
  msg = error_of([] { parse_kernel_declaration(kTrickySource, "first<float>"); });
  EXPECT_NE(msg.find("'first' is not a template"), std::string::npos) << msg;
  msg = error_of([] { parse_kernel_declaration(kTrickySource, "templated<float, 4, 5>"); });
  EXPECT_NE(msg.find("gives 3 template arguments"), std::string::npos) << msg;
}

TEST(Signature, TemplateInstantiationsSubstituteTheirArguments) {
  KernelDeclaration d = parse_kernel_declaration(kTrickySource, "templated<float, 4>");
  EXPECT_TRUE(d.is_template);
  EXPECT_EQ(d.template_params, (std::vector<std::string>{"T", "N"}));
  ASSERT_EQ(d.params.size(), 1u);
  EXPECT_EQ(d.params[0].c_type, "float*");
  EXPECT_EQ(d.params[0].name, "out");
  // A type parameter's name inside a longer word is left alone; nested template arguments.
  const char* source =
      "template <typename Tp, class U = int, int BLOCK>\n"
      "__global__ void k(const Tp* __restrict__ in, U* Tpx, U n) {}\n";
  d = parse_kernel_declaration(source, "k< unsigned long long , pair<int, float> >");
  ASSERT_EQ(d.params.size(), 3u);
  EXPECT_EQ(d.params[0].c_type, "const unsigned long long*");
  EXPECT_EQ(d.params[1].c_type, "pair<int, float>*");
  EXPECT_EQ(d.params[1].name, "Tpx");
  EXPECT_EQ(d.params[2].c_type, "pair<int, float>");
}

TEST(Signature, RecordsCLinkage) {
  std::map<std::string, bool> linkage;
  for (const KernelDeclaration& d : parse_kernel_declarations(kTrickySource, true)) {
    linkage[d.name + (d.is_definition ? "" : "/declaration")] = d.c_linkage;
  }
  EXPECT_FALSE(linkage.at("enabled_else"));
  EXPECT_FALSE(linkage.at("templated"));
  EXPECT_FALSE(linkage.at("forward/declaration"));
  EXPECT_TRUE(linkage.at("first"));    // inside extern "C" { ... }
  EXPECT_TRUE(linkage.at("second"));   // the same block
  EXPECT_FALSE(linkage.at("third"));   // after the block closed, in a namespace
  EXPECT_TRUE(linkage.at("forward"));  // extern "C" on the definition
}

TEST(Signature, KernelNames) {
  std::optional<KernelName> n = parse_kernel_name("ns::inner::tile<float, 128>");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->base, "tile");
  EXPECT_EQ(n->qualifiers, (std::vector<std::string>{"ns", "inner"}));
  EXPECT_EQ(n->template_args, (std::vector<std::string>{"float", "128"}));
  EXPECT_TRUE(n->is_template_id);
  n = parse_kernel_name("plain");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->is_template_id);
  EXPECT_TRUE(parse_kernel_name("::k<>"));
  for (const char* bad : {"", "1k", "k<", "k<int", "k<int>>", "k<int>x", "a::", "a b", "k<\"s\">",
                          "k<1;2>", "k<'c'>", "k<{}>", "k<a,,b>", "k<%d>", "k<\\n>"}) {
    EXPECT_FALSE(parse_kernel_name(bad)) << bad;
  }
}

TEST(Signature, MissingKernelListsTheKernelsFound) {
  for (std::string missing :
       {"in_line_comment", "in_block_comment", "also_commented", "in_string", "in_raw_string",
        "macro_kernel", "device_function", "method", "member_kernel"}) {
    SCOPED_TRACE(missing);
    std::string msg = error_of([&] { parse_kernel_declaration(kTrickySource, missing); });
    EXPECT_NE(msg.find("kernel '" + missing + "' is not declared"), std::string::npos) << msg;
    EXPECT_NE(msg.find("enabled_else, templated, forward, first, second, third"), std::string::npos)
        << msg;
  }
  std::string msg = error_of([] { parse_kernel_declaration("int x;", "k"); });
  EXPECT_NE(msg.find("declares none"), std::string::npos) << msg;
}

TEST(Signature, CFunctionsNeedNoGlobal) {
  const char* c_source =
      "#include <stdint.h>\n"
      "static inline int clamp(int v) { return v < 0 ? 0 : v; }\n"
      "void scale(const float* restrict x, float* restrict y, float a, int64_t n);\n"
      "void scale(const float* restrict x, float* restrict y, float a, int64_t n) {\n"
      "  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];\n"
      "}\n"
      "int nothing(void) { return 0; }\n";
  EXPECT_EQ(names_of(parse_kernel_declarations(c_source, false)),
            (std::vector<std::string>{"clamp", "scale", "scale", "nothing"}));
  EXPECT_TRUE(parse_kernel_declarations(c_source, true).empty());
  KernelDeclaration scale = parse_kernel_declaration(c_source, "scale", false);
  ASSERT_EQ(scale.params.size(), 4u);
  EXPECT_EQ(scale.params[0].c_type, "const float*");
  EXPECT_EQ(scale.params[3].c_type, "int64_t");
  EXPECT_TRUE(parse_kernel_declaration(c_source, "nothing", false).params.empty());
}

// Random declarations, written with random spacing, comments and line breaks, parse back to
// the types and names they were generated from.
TEST(Signature, RandomDeclarationsParseBack) {
  struct TypeSpelling {
    std::vector<std::string> tokens;
    std::string normalized;
  };
  const std::vector<TypeSpelling> types = {
      {{"const", "float", "*", "__restrict__"}, "const float*"},
      {{"float", "*"}, "float*"},
      {{"half", "*", "__restrict__"}, "half*"},
      {{"int"}, "int"},
      {{"unsigned", "long", "long"}, "unsigned long long"},
      {{"const", "__grid_constant__", "CUtensorMap"}, "const CUtensorMap"},
      {{"__grid_constant__", "const", "CUtensorMap"}, "const CUtensorMap"},
      {{"int64_t"}, "int64_t"},
      {{"double"}, "double"},
      {{"const", "int", "*", "const"}, "const int* const"},
      {{"uint8_t", "*", "*"}, "uint8_t**"},
  };
  const std::vector<std::string> gaps = {" ", "  ", "\n", "\t", " /* c, ) */ ", " // x ( ,\n"};
  std::mt19937 rng(7);
  auto gap = [&] { return gaps[rng() % gaps.size()]; };
  for (int trial = 0; trial < 300; ++trial) {
    int count = static_cast<int>(rng() % 7);
    std::vector<std::pair<std::string, std::string>> expected;  // (type, name)
    std::string text = "extern \"C\"" + gap() + "__global__" + gap();
    if (rng() % 2 != 0) text += "__launch_bounds__(" + gap() + "128," + gap() + "1)" + gap();
    text += "void" + gap() + "kernel_" + std::to_string(trial) + gap() + "(";
    for (int i = 0; i < count; ++i) {
      const TypeSpelling& t = types[rng() % types.size()];
      std::string name = "p" + std::to_string(i) + "_" + std::to_string(rng() % 1000);
      if (i > 0) text += "," + gap();
      for (const std::string& tok : t.tokens) text += tok + gap();
      text += name + gap();
      expected.emplace_back(t.normalized, name);
    }
    text += ")" + gap() + "{" + gap() + "}\n";
    SCOPED_TRACE(text);
    KernelDeclaration d = parse_kernel_declaration(text, "kernel_" + std::to_string(trial));
    ASSERT_EQ(d.params.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(d.params[i].c_type, expected[i].first);
      EXPECT_EQ(d.params[i].name, expected[i].second);
    }
  }
}

// Truncations and random byte edits of a real source never crash the parser; whatever it
// finds is a well-formed declaration.
TEST(Signature, DamagedSourcesNeverCrash) {
  const std::string source = kTrickySource;
  std::mt19937 rng(3);
  for (size_t cut = 0; cut <= source.size(); cut += 7) {
    for (const KernelDeclaration& d : parse_kernel_declarations(source.substr(0, cut), true)) {
      EXPECT_FALSE(d.name.empty());
    }
  }
  const std::string noise = "{}()[]<>;,\"'/*#\\\n=:";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string damaged = source;
    for (int edit = 0; edit < 4; ++edit) {
      damaged[rng() % damaged.size()] = noise[rng() % noise.size()];
    }
    for (const KernelDeclaration& d : parse_kernel_declarations(damaged, rng() % 2 == 0)) {
      EXPECT_FALSE(d.name.empty());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// resolve_kernel_args and symbol_dtype

Program gemm_program() {
  TmaDescriptor desc;
  desc.name = "A_desc";
  desc.buffer = "A";
  desc.rank = 2;
  desc.box_dims = {64, 64};
  return ProgramBuilder("gemm")
      .source(R"(
extern "C" __global__ void __launch_bounds__(128)
mm(const __grid_constant__ CUtensorMap A_desc, const half* __restrict__ B,
   float* __restrict__ C, float alpha, int M, long long N, int K, int* counter) {}
extern "C" __global__ void epilogue(float* C, int M, int N) {}
extern "C" __global__ void wrong_types(int C, float* M) {}
extern "C" __global__ void unnamed(float*, int) {}
extern "C" __global__ void unknown_name(float* C, int Q) {}
)")
      .tensor("A", "float16", {"M", "K"})
      .tensor("B", "float16", {"K", "N"})
      .tensor("C", "float32", {"M", "N"})
      .scalar("alpha", "float32")
      .scalar("counter", "handle")
      .tma(desc)
      .launch(Launch("mm").with_grid({"ceildiv(N, 64)", "ceildiv(M, 64)"}).with_block({128}))
      .build();
}

TEST(ResolveKernelArgs, MatchesParamsSymbolsAndDescriptors) {
  Program p = gemm_program();
  std::vector<KernelArg> args = resolve_kernel_args(p, p.launches[0]);
  struct Want {
    KernelArg::Source source;
    int index;
    std::string name, c_type;
    KernelArg::Kind kind;
    uint32_t bytes;
  };
  using S = KernelArg::Source;
  using K = KernelArg::Kind;
  const std::vector<Want> want = {
      {S::kTmaDescriptor, 0, "A_desc", "const CUtensorMap", K::kTmaDescriptor, 64},
      {S::kParam, 1, "B", "const half*", K::kPointer, 8},
      {S::kParam, 2, "C", "float*", K::kPointer, 8},
      {S::kParam, 3, "alpha", "float", K::kFloat, 4},
      {S::kSymbol, -1, "M", "int", K::kInt, 4},
      {S::kSymbol, -1, "N", "long long", K::kInt, 8},
      {S::kSymbol, -1, "K", "int", K::kInt, 4},
      {S::kParam, 4, "counter", "int*", K::kPointer, 8},
  };
  ASSERT_EQ(args.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(args[i].source, want[i].source);
    EXPECT_EQ(args[i].index, want[i].index);
    EXPECT_EQ(args[i].name, want[i].name);
    EXPECT_EQ(args[i].c_type, want[i].c_type);
    EXPECT_EQ(args[i].kind, want[i].kind);
    EXPECT_EQ(args[i].bytes, want[i].bytes);
  }
}

TEST(ResolveKernelArgs, LaunchArgsOverrideTheDeclaredNames) {
  Program p = gemm_program();
  Launch l = Launch("unnamed").with_args({"C", "K"});
  std::vector<KernelArg> args = resolve_kernel_args(p, l);
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0].index, 2);
  EXPECT_EQ(args[1].source, KernelArg::Source::kSymbol);
  EXPECT_EQ(args[1].name, "K");

  std::string msg = error_of([&] { resolve_kernel_args(p, Launch("unnamed")); });
  EXPECT_NE(msg.find("'unnamed'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unnamed: expected a name"), std::string::npos) << msg;

  msg = error_of([&] { resolve_kernel_args(p, Launch("unnamed").with_args({"C"})); });
  EXPECT_NE(msg.find("lists 1 args but the kernel declares 2"), std::string::npos) << msg;
}

TEST(ResolveKernelArgs, UnknownNamesAndMismatchedTypesAreProgramErrors) {
  Program p = gemm_program();
  std::string msg = error_of([&] { resolve_kernel_args(p, Launch("unknown_name")); });
  EXPECT_NE(msg.find("kernel 'unknown_name' parameter 'Q'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("available: A, B, C, alpha, counter, M, K, N, A_desc"), std::string::npos)
      << msg;

  msg = error_of([&] { resolve_kernel_args(p, Launch("wrong_types")); });
  EXPECT_NE(msg.find("parameter 'C' is declared 'int'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a pointer"), std::string::npos) << msg;
  // `int C` may receive the symbol K, but `float* M` cannot receive the symbol M.
  msg = error_of([&] { resolve_kernel_args(p, Launch("wrong_types").with_args({"K", "M"})); });
  EXPECT_NE(msg.find("parameter 'M' is declared 'float*'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("an integer type"), std::string::npos) << msg;
  msg = error_of([&] { resolve_kernel_args(p, Launch("wrong_types").with_args({"alpha", "C"})); });
  EXPECT_NE(msg.find("parameter 'alpha'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("floating-point"), std::string::npos) << msg;
  msg = error_of([&] {
    resolve_kernel_args(p, Launch("epilogue").with_args({"A_desc", "M", "N"}));
  });
  EXPECT_NE(msg.find("parameter 'A_desc'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUtensorMap"), std::string::npos) << msg;

  msg = error_of([&] { resolve_kernel_args(p, Launch("absent")); });
  EXPECT_NE(msg.find("kernel 'absent' is not declared"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mm, epilogue, wrong_types, unnamed, unknown_name"), std::string::npos) << msg;
}

TEST(ResolveKernelArgs, UnsupportedParameterTypeNamesIt) {
  Program p = gemm_program();
  p.source = "extern \"C\" __global__ void epilogue(float* C, float2 M, int N) {}";
  std::string msg = error_of([&] { resolve_kernel_args(p, Launch("epilogue")); });
  EXPECT_NE(msg.find("parameter 'M' has the type 'float2'"), std::string::npos) << msg;
}

// Found by fuzz_signature: a number at the very start of the source made the lexer read the
// byte before it (ASan: heap-buffer-overflow; scripts/asan.sh runs this test).
TEST(Signature, ANumberAtTheStartOfTheSourceIsLexedInBounds) {
  const std::string source = std::string("3\nvoid f0(int n, float* x);\n");
  const auto found = parse_kernel_declarations(std::string_view(source), false);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "f0");
  EXPECT_TRUE(parse_kernel_declarations("3", false).empty());
}

TEST(SymbolDtype, FollowsTheReceivingKernelsAndDetectsConflicts) {
  Program p = gemm_program();
  EXPECT_EQ(symbol_dtype(p, "M").str(), "int32");
  EXPECT_EQ(symbol_dtype(p, "N").str(), "int64");
  EXPECT_EQ(symbol_dtype(p, "alpha").str(), "float32");  // a scalar param keeps its dtype

  p.launches.push_back(Launch("epilogue").with_grid({"M"}));
  // epilogue takes N as int while mm takes long long.
  std::string msg = error_of([&] { symbol_dtype(p, "N"); });
  EXPECT_NE(msg.find("symbol 'N'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'mm'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'epilogue'"), std::string::npos) << msg;
  EXPECT_EQ(symbol_dtype(p, "M").str(), "int32");

  // A symbol no kernel receives is int64.
  Program q = gemm_program();
  q.launches[0] = Launch("epilogue");
  EXPECT_EQ(symbol_dtype(q, "K").str(), "int64");
  EXPECT_EQ(symbol_dtype(q, "N").str(), "int32");
}

// ---------------------------------------------------------------------------------------------
// Kernels users bring: templates, C++ linkage, macros

const char* kUserKernels = R"(
#define DECLARE_SCALE(name) extern "C" __global__ void name(float* x, float a, int n)
DECLARE_SCALE(scale_by_macro) { int i = threadIdx.x; if (i < n) x[i] *= a; }
template <typename T>
__global__ void my_sqrt(T* x, int n) { int i = threadIdx.x; if (i < n) x[i] = sqrt(x[i]); }
__global__ void cxx_linkage(float* x, int n) {}
namespace ns { __global__ void in_namespace(float* x, int n) {} }
extern "C" __global__ void c_linkage(float* x, int n) {}
)";

Program user_program(Launch launch) {
  return ProgramBuilder("user")
      .source(kUserKernels)
      .tensor("x", "float32", {"n"})
      .scalar("a", "float32")
      .launch(std::move(launch.with_grid({1}).with_block({"n"})))
      .build();
}

TEST(UserKernels, TemplateInstantiationResolvesItsArguments) {
  Program p = user_program(Launch("my_sqrt<float>"));
  std::vector<KernelArg> args = resolve_kernel_args(p, p.launches[0]);
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0].c_type, "float*");
  EXPECT_EQ(args[0].kind, KernelArg::Kind::kPointer);
  EXPECT_EQ(args[1].name, "n");
  EXPECT_EQ(args[1].kind, KernelArg::Kind::kInt);
  EXPECT_TRUE(needs_lowered_name(p, p.launches[0]));
}

TEST(UserKernels, OnlyCLinkageKernelsSkipTheLoweredName) {
  EXPECT_FALSE(needs_lowered_name(user_program(Launch("c_linkage")), Launch("c_linkage")));
  EXPECT_TRUE(needs_lowered_name(user_program(Launch("cxx_linkage")), Launch("cxx_linkage")));
  EXPECT_TRUE(
      needs_lowered_name(user_program(Launch("ns::in_namespace")), Launch("ns::in_namespace")));
}

TEST(UserKernels, MacroKernelsNeedAnExplicitSignature) {
  std::string msg = error_of([] {
    Program p = user_program(Launch("scale_by_macro"));
    resolve_kernel_args(p, p.launches[0]);
  });
  EXPECT_NE(msg.find("kernel 'scale_by_macro' is not declared"), std::string::npos) << msg;
  Program p = user_program(
      Launch("scale_by_macro").with_signature("float* __restrict__ x, float a, int n"));
  std::vector<KernelArg> args = resolve_kernel_args(p, p.launches[0]);
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(args[0].c_type, "float*");
  EXPECT_EQ(args[1].kind, KernelArg::Kind::kFloat);
  EXPECT_EQ(args[2].source, KernelArg::Source::kSymbol);
  // Its linkage is not in the source's view, so NVRTC is asked for the name it compiled.
  EXPECT_TRUE(needs_lowered_name(p, p.launches[0]));

  for (const char* bad : {"float* x) {", "float* x); void g(int", "float* x, (int n"}) {
    msg = error_of([&] {
      Program q = user_program(Launch("scale_by_macro").with_signature(bad));
      resolve_kernel_args(q, q.launches[0]);
    });
    EXPECT_NE(msg.find("expected a C parameter list"), std::string::npos) << bad << ": " << msg;
  }
  EXPECT_NE(msg.find("expected a C parameter list"), std::string::npos) << msg;
}

TEST(UserKernels, AMacroInvocationWithoutASemicolonHidesNoKernel) {
  const char* source =
      "#define DEFINE(name, expr) __global__ void name(float* x) { x[0] = expr; }\n"
      "DEFINE(one, 1.0f)\n"
      "DEFINE(two, 2.0f)\n"
      "extern \"C\" __global__ void next(int n) {}\n";
  EXPECT_EQ(names_of(parse_kernel_declarations(source, true)), (std::vector<std::string>{"next"}));
}

TEST(UserKernels, KernelNamesAreCheckedByLanguage) {
  std::string msg = error_of([] { user_program(Launch("my_sqrt<\"x\">")); });
  EXPECT_NE(msg.find("expected a C++ name"), std::string::npos) << msg;
  msg = error_of([] {
    ProgramBuilder("c")
        .source("void k(float* x) {}", Language::kC)
        .tensor("x", "float32", {4})
        .launch(Launch("ns::k"))
        .build();
  });
  EXPECT_NE(msg.find("expected a C identifier"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tilejit::detail

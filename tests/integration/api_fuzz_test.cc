// Seeded random bad input against the real binary: valid requests for every endpoint with
// fields dropped, added, retyped and set to extreme values, and bodies cut or corrupted.
// Every answer must be a 2xx or a 4xx with an error code and message (never a 5xx, never a
// dropped connection), and whatever the fuzzing left on disk must not stop a restart after
// SIGKILL. The first bug it found: a cache threshold accepted as a double (1e-300) became
// the float 0 and then failed its own check at restore, so the server would not start.
#include <cstdlib>
#include <random>

#include <gtest/gtest.h>

#include "integration/server_process.h"
#include "test_util.h"

namespace contextd {
namespace {

struct Template {
  const char* method;
  const char* path;  // "{n}" takes a random name
  const char* body;  // empty: no body
};

// Requests that succeed as written: the fuzzer's mutations start from valid input.
const Template kTemplates[] = {
    {"PUT", "/v1/collections/{n}",
     R"({"embedder":"glove","distance":"cosine","chunking":{"max_tokens":200,"overlap":20},"analyzer":"standard",
        "index":{"M":8,"ef_construction":64,"quantization":"int8"},
        "cache":{"enabled":true,"threshold":0.9,"verify_fraction":0.1,
                 "tiers":{"hot":{"max_mb":1,"ttl_s":10},"warm":{"max_mb":2},"cold":{"ttl_s":5}}},
        "sharding":{"max_shard_chunks":16,"clear_margin":0.1,"probe_margin":0.1,"min_probe":2,
                    "max_probe_fraction":0.3}})"},
    {"PUT", "/v1/collections/{n}", R"({"embedder":"none","dim":4,"distance":"l2"})"},
    {"POST", "/v1/collections/g/documents",
     R"({"documents":[{"id":"d1","title":"T","text":"Proteins fold. Cells divide.","metadata":{"year":2021,
        "tags":["a","b"]},"refs":["doc3"]}]})"},
    {"POST", "/v1/collections/v/documents", R"({"documents":[{"id":"d1","text":"t","vector":[0.1,0.2,0.3,0.4]}]})"},
    {"POST", "/v1/collections/g/query",
     R"({"query":"cells protein","k":10,"ef":50,"depth":40,"mode":"hybrid","fusion":"weighted","alpha":0.3,
        "mmr":{"lambda":0.5},"group_by":"document","bm25":{"k1":1.2,"b":0.75,"title_boost":2},"cache":"default",
        "shards":"route","routing":{"clear_margin":0.1,"probe_margin":0.05,"min_probe":1,"max_probe_fraction":0.5},
        "strategy":"auto","expand_refs":true,
        "filter":{"$and":[{"year":{"$gte":2000}},{"tags":{"$in":["a","x"]}},{"$or":[{"year":{"$ne":1}}]}]}})"},
    {"POST", "/v1/collections/v/query", R"({"vector":[1,0,0,0],"k":3,"mode":"vector","filter":{"year":{"$lt":3000}}})"},
    {"POST", "/v1/context",
     R"({"collection":"g","query":"what do cells do","max_tokens":300,"max_ms":50,"mode":"hybrid",
        "candidates":30,"strategy":"moderate","expand_refs":true,"session_id":"s1"})"},
    {"POST", "/v1/sessions/{n}/turns", R"({"role":"user","content":"hi there","ttl_s":60})"},
    {"GET", "/v1/sessions/{n}", ""},
    {"GET", "/v1/collections/g/documents/{n}", ""},
    {"DELETE", "/v1/collections/g/documents/{n}", ""},
    {"PUT", "/v1/cache/{n}", R"({"embedder":"glove","threshold":0.9,"ttl_s":60})"},
    {"POST", "/v1/cache/ns/store", R"({"prompt":"what is x","response":{"a":1},"scope":{"model":"m"},"ttl_s":5})"},
    {"POST", "/v1/cache/ns/lookup", R"({"prompt":"what is x","scope":{"model":"m"},"threshold":0.8})"},
    {"DELETE", "/v1/cache/ns/entries", R"({"scope":{"model":"m"}})"},
    {"POST", "/v1/embeddings", R"({"input":["hello","world"],"model":"glove"})"},
    {"POST", "/embed", R"({"inputs":["hello"],"normalize":true,"truncate":false,"truncation_direction":"Right"})"},
    {"POST", "/v1/embeddings",
     R"({"input":[[15339,1917],[15339]],"model":"glove","encoding_format":"base64","dimensions":100,"user":"u"})"},
    {"POST", "/tokenize", R"({"inputs":["hello world","tea"],"add_special_tokens":false})"},
    {"GET", "/v1/models/{n}", ""},
    {"GET", "/info", ""},
    {"DELETE", "/v1/cache/{n}/entries?all=true", ""},
    // Governance (the server runs with --auth; every request carries the admin key).
    {"POST", "/v1/admin/tenants", R"({"id":"t1","limits":{"rpm":100000,"tpm":1000000,"max_inflight":4}})"},
    {"PATCH", "/v1/admin/tenants/{n}", R"({"limits":{"rpm":100000}})"},
    {"POST", "/v1/admin/tenants/{n}/keys",
     R"({"role":"writer","user_id":"u1","collections":{"g*":"rw","kb":"r"},"limits":{"rpm":10},"priority":"batch",)"
     R"("expires_at":"2030-01-01T00:00:00Z"})"},
    {"GET", "/v1/admin/tenants/{n}/keys", ""},
    {"DELETE", "/v1/admin/tenants/{n}", ""},
    {"GET", "/v1/cluster", ""},
};

constexpr char kFuzzAdminKey[] = "fuzz-admin-key-0123456789";

const char* const kNames[] = {
    "g",
    "v",
    "ns",
    "s1",
    "doc3",
    "",
    "x%20y",
    "%00",
    "..",
    "a/b",
    "new",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  Json Weird() {
    static const char* const kWeird[] = {"null",
                                         "true",
                                         "false",
                                         "0",
                                         "-1",
                                         "1e308",
                                         "-1e308",
                                         "1e-300",
                                         "9223372036854775807",
                                         "-9223372036854775809",
                                         "18446744073709551616",
                                         "0.5",
                                         "2147483648",
                                         "\"\"",
                                         "\"x\"",
                                         "\"\\u0000\"",
                                         "\"\\u0001\"",
                                         "\"$eq\"",
                                         "\"\\u00ff\\u4e2d\"",
                                         "[]",
                                         "{}",
                                         "[null]",
                                         "{\"$foo\":1}",
                                         "{\"$gt\":[]}",
                                         "{\"$and\":{}}",
                                         "{\"$or\":[1]}",
                                         "[[[[[]]]]]",
                                         "\"../../etc\"",
                                         "\"a/b\"",
                                         "\" \""};
    return *ParseJson(kWeird[Pick(std::size(kWeird))]);
  }

  // Each member or item is mutated with probability `p`; the value itself is replaced
  // outright with probability 0.15.
  void Mutate(Json* v, double p) {
    if (Chance(0.15)) {
      *v = Weird();
      return;
    }
    if (v->is_object()) {
      auto& members = v->as_object();
      if (!members.empty() && Chance(0.3)) members.erase(members.begin() + static_cast<long>(Pick(members.size())));
      if (Chance(0.2)) {
        static const char* const kKeys[] = {"$eq", "$in", "extra", "id", "k", "vector", "text", "filter", "$and"};
        (*v)[kKeys[Pick(std::size(kKeys))]] = Weird();
      }
      for (auto& [k, m] : members) {
        if (Chance(p)) Mutate(&m, p);
      }
    } else if (v->is_array()) {
      auto& items = v->as_array();
      if (Chance(0.2)) {
        const size_t times = std::array<size_t, 3>{0, 2, 50}[Pick(3)];
        Json::Array grown;
        for (size_t t = 0; t < times; ++t) grown.insert(grown.end(), items.begin(), items.end());
        items = std::move(grown);
      }
      for (auto& item : items) {
        if (Chance(p)) Mutate(&item, p);
      }
    } else if (v->is_number()) {
      static const double kNumbers[] = {0, -1, 1e6, 1e12, -1e12, 1e-300, 3.7, 1e4, 2147483648.0, -2147483648.0};
      *v = Json(kNumbers[Pick(std::size(kNumbers))]);
    } else if (v->is_string()) {
      const std::string s = v->as_string();
      const std::string options[] = {"", s + s + s + s, s.substr(0, 1), "\xc3\xbf\xe4\xb8\xad", "$eq", s + "\x01"};
      *v = Json(options[Pick(std::size(options))]);
    }
  }

  // Cuts or corrupts the serialized body at one place.
  std::string Corrupt(const std::string& text) {
    static const char* const kInserts[] = {"", "{", "]", "\"", "\\u", "\xff", "1e999", "nul"};
    const size_t at = Pick(text.size() + 1);
    return text.substr(0, at) + kInserts[Pick(std::size(kInserts))] + (at < text.size() ? text.substr(at + 1) : "");
  }

 private:
  std::mt19937 rng_;
};

TEST(ApiFuzzTest, RandomBadRequestsGetA4xxAndTheServerStillRestarts) {
  TempDir dir;
  ServerProcess server(dir.path() + "/data", {"--auth"}, {{"CONTEXTD_ADMIN_KEY", kFuzzAdminKey}});
  server.Start();
  auto client = server.Client();
  const HttpHeaders admin = {{"Authorization", std::string("Bearer ") + kFuzzAdminKey}};
  const auto Call = [&admin](HttpClient& c, const std::string& method, const std::string& target,
                             const std::string& body = "") -> std::pair<int, Json> {
    auto r = c.Request(method, target, body, admin);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {0, Json()};
    auto j = ParseJson(r->body);
    return {r->status, j.ok() ? *j : Json(r->body)};
  };
  for (const Template& t : kTemplates) {
    ASSERT_TRUE(ParseJson(t.body).ok() || std::string(t.body).empty()) << "template not JSON: " << t.body;
  }
  // Seed: a sharded text collection with enough chunks to split, a vector collection, a cache.
  std::string g = kTemplates[0].body;
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/g", g).first, 201);
  ASSERT_EQ(Call(*client, "PUT", "/v1/collections/v", kTemplates[1].body).first, 201);
  ASSERT_EQ(Call(*client, "PUT", "/v1/cache/ns", "{}").first, 200);
  ASSERT_EQ(Call(*client, "POST", "/v1/admin/tenants", R"({"id":"ns"})").first, 201);
  ASSERT_EQ(Call(*client, "POST", "/v1/sessions/s1/turns", R"({"role":"user","content":"tell me about cells"})").first,
            200);
  static const char* const kWords[] = {"cells", "protein", "gene",  "fold", "divide", "tumour", "immune", "virus",
                                       "drug",  "dose",    "trial", "mice", "brain",  "blood",  "heart",  "bone"};
  Json docs = Json::MakeObject();
  Json& list = docs["documents"];
  list = Json::MakeArray();
  for (int i = 0; i < 80; ++i) {
    Json d = Json::MakeObject();
    d["id"] = "doc" + std::to_string(i);
    std::string text;
    for (int w = 0; w < 12; ++w)
      text += std::string(kWords[(i * 7 + w * (i % 5 + 1)) % 16]) + (w % 6 == 5 ? ". " : " ");
    d["text"] = text;
    d["metadata"] = *ParseJson(R"({"year":)" + std::to_string(1990 + i % 30) + "}");
    list.as_array().push_back(std::move(d));
  }
  ASSERT_EQ(Call(*client, "POST", "/v1/collections/g/documents", docs.Dump()).first, 200);

  // Fixed, so a failure reproduces (this one stored the 1e-300 threshold that once stopped
  // the restart); CONTEXTD_FUZZ_SEED explores others by hand.
  const char* seed = std::getenv("CONTEXTD_FUZZ_SEED");
  Mutator mutator(seed != nullptr ? static_cast<uint32_t>(std::stoul(seed)) : 1u);
  // Rounds, each ended by SIGKILL and a restart: what one round leaves on disk must not
  // stop the next start.
  constexpr int kRounds = 4, kRequests = 800;
  for (int round = 0; round < kRounds; ++round) {
    int client_errors = 0;
    for (int i = 0; i < kRequests; ++i) {
      const Template& t = kTemplates[mutator.Pick(std::size(kTemplates))];
      std::string path = t.path;
      if (size_t at = path.find("{n}"); at != std::string::npos)
        path.replace(at, 3,
                     mutator.Chance(0.2) ? "new" + std::to_string(round * kRequests + i)
                                         : kNames[mutator.Pick(std::size(kNames))]);
      std::string body;
      if (*t.body != '\0') {
        Json j = *ParseJson(t.body);
        // Light mutations mostly keep a request valid and reach the deep paths; heavy ones
        // break it in several places at once.
        if (mutator.Chance(0.3)) {
          if (mutator.Chance(0.5)) mutator.Mutate(&j, 0.08);
        } else {
          mutator.Mutate(&j, 0.5);
        }
        body = j.Dump();
        if (mutator.Chance(0.1)) body = mutator.Corrupt(body);
      }
      auto r = client->Request(t.method, path, body, admin);
      ASSERT_TRUE(r.ok()) << "no answer (the server died?) to " << t.method << " " << path << " " << body << ": "
                          << r.status().ToString();
      ASSERT_LT(r->status, 500) << t.method << " " << path << " " << body << " -> " << r->body;
      if (r->status >= 400) {
        ++client_errors;
        auto err = ParseJson(r->body);
        ASSERT_TRUE(err.ok() && err->Find("error") != nullptr) << r->body;
        const Json* code = err->Find("error")->Find("code");
        const Json* message = err->Find("error")->Find("message");
        ASSERT_TRUE(code != nullptr && code->is_string() && message != nullptr && !message->as_string().empty())
            << t.method << " " << path << " " << body << " -> " << r->body;
      }
    }
    // The mutations are mostly fatal, but not all: both kinds were exercised.
    EXPECT_GT(client_errors, kRequests / 2);
    EXPECT_LT(client_errors, kRequests);

    // Tenants and keys the fuzzing made are all there after the restart.
    const std::string tenants = Call(*client, "GET", "/v1/admin/tenants").second.Dump();
    server.Kill(SIGKILL);
    server.Start();
    client = server.Client();
    EXPECT_EQ(Call(*client, "GET", "/readyz").first, 200);
    auto [status, reply] = Call(*client, "POST", "/v1/collections/g/query", R"({"query":"cells protein","k":3})");
    ASSERT_EQ(status, 200) << reply.Dump();
    EXPECT_EQ(reply.Find("results")->as_array().size(), 3u);
    EXPECT_EQ(Call(*client, "GET", "/v1/cache/ns").first, 200);
    EXPECT_EQ(Call(*client, "GET", "/v1/admin/tenants").second.Dump(), tenants) << "tenants changed across a restart";
  }
}

}  // namespace
}  // namespace contextd

// `contextd model pull` against a local hub: a real HTTP server (src/net) with the Hugging
// Face layout (GET /{repo}/resolve/{revision}/{file}), ETag / X-Linked-Etag checksums and
// Range requests, serving the tiny BERT fixture. Fresh pull, resume of a partial file,
// checksum mismatch, a second pull that fetches nothing, missing files.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "encoder/model_hub.h"
#include "encoder/sentence_encoder.h"
#include "net/http_server.h"

namespace contextd {
namespace {

namespace fs = std::filesystem;
const std::string kTiny = std::string(CONTEXTD_FIXTURES_DIR) + "/tiny-bert";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FakeHub {
 public:
  FakeHub() {
    for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "modules.json",
                          "sentence_bert_config.json", "1_Pooling/config.json"}) {
      files_[f] = kTiny + "/" + f;
    }
    HttpServerOptions o;
    o.port = 0;
    o.io_threads = 1;
    server_ = std::make_unique<HttpServer>(o, [this](HttpRequest req, Responder respond) { respond(Handle(req)); });
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::atomic<uint64_t> body_bytes{0};
  std::atomic<int> range_requests{0};
  std::string wrong_sha256;  // when set, sent instead of the weights' real SHA-256

 private:
  HttpResponse Handle(const HttpRequest& req) {
    HttpResponse res;
    res.content_type = "application/octet-stream";
    const std::string prefix = "/org/tiny/resolve/main/";
    auto it = req.path.rfind(prefix, 0) == 0 ? files_.find(req.path.substr(prefix.size())) : files_.end();
    if (it == files_.end()) {
      res.status = 404;
      res.body = "Entry not found";
      return res;
    }
    const std::string content = Slurp(it->second);
    if (it->first == "model.safetensors") {
      // LFS files: the SHA-256 rides in X-Linked-Etag; the ETag is something else.
      res.headers.emplace_back("X-Linked-Etag",
                               "\"" + (wrong_sha256.empty() ? Sha256File(it->second) : wrong_sha256) + "\"");
      res.headers.emplace_back("ETag", "\"lfs-object\"");
    } else {
      res.headers.emplace_back("ETag", "\"" + GitBlobSha1File(it->second) + "\"");
    }
    size_t from = 0;
    for (const auto& [k, v] : req.headers) {
      if ((k == "Range" || k == "range") && v.rfind("bytes=", 0) == 0) from = std::stoull(v.substr(6));
    }
    if (from > 0) {
      ++range_requests;
      res.status = 206;
      res.headers.emplace_back("Content-Range", "bytes " + std::to_string(from) + "-" +
                                                    std::to_string(content.size() - 1) + "/" +
                                                    std::to_string(content.size()));
    }
    if (req.method != "HEAD") {
      res.body = content.substr(std::min(from, content.size()));
      body_bytes += res.body.size();
    }
    return res;
  }
  std::map<std::string, std::string> files_;
  std::unique_ptr<HttpServer> server_;
};

TEST(ModelHubTest, DigestsMatchKnownValues) {
  const std::string path = ::testing::TempDir() + "/digest.txt";
  std::ofstream(path) << "abc";
  EXPECT_EQ(Sha256File(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::ofstream(path, std::ios::trunc) << "hello world\n";
  EXPECT_EQ(GitBlobSha1File(path), "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");  // git hash-object
}

class ModelPullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    models_ = ::testing::TempDir() + "/pull-models-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(models_);
    options_.endpoint = hub_.url();
  }
  FakeHub hub_;
  std::string models_;
  PullOptions options_;
};

TEST_F(ModelPullTest, PullsAModelThatLoadsAndASecondPullFetchesNothing) {
  auto r = PullModel("org/tiny", models_, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->fetched.size(), 7u);  // tokenizer.json, special_tokens_map.json... are absent: skipped
  EXPECT_EQ(Sha256File(models_ + "/org/tiny/model.safetensors"), Sha256File(kTiny + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(models_ + "/org/tiny/model.safetensors.part"));
  auto enc = SentenceEncoder::Load(models_ + "/org/tiny", {});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ((*enc)->dim(), 64);

  const uint64_t before = hub_.body_bytes;
  auto again = PullModel("org/tiny", models_, options_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->fetched.empty());
  EXPECT_EQ(again->verified.size(), 7u);
  EXPECT_EQ(hub_.body_bytes.load(), before) << "verified files are not downloaded again";
}

TEST_F(ModelPullTest, ResumesAPartialDownloadWithARangeRequest) {
  const std::string weights = Slurp(kTiny + "/model.safetensors");
  fs::create_directories(models_ + "/org/tiny");
  const size_t half = weights.size() / 2;
  std::ofstream(models_ + "/org/tiny/model.safetensors.part", std::ios::binary) << weights.substr(0, half);
  auto r = PullModel("org/tiny", models_, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(hub_.range_requests.load(), 1);
  EXPECT_EQ(Slurp(models_ + "/org/tiny/model.safetensors"), weights);
  EXPECT_LT(r->bytes, weights.size()) << "only the missing half came over the network (plus the small files)";
}

TEST_F(ModelPullTest, AChecksumMismatchFailsAndLeavesNoFile) {
  hub_.wrong_sha256 = std::string(64, 'a');
  auto r = PullModel("org/tiny", models_, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "checksum_mismatch");
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(models_ + "/org/tiny/model.safetensors"));
  EXPECT_FALSE(fs::exists(models_ + "/org/tiny/model.safetensors.part"));
}

TEST_F(ModelPullTest, MissingRepositoryAndBadNamesAreClear) {
  auto r = PullModel("org/absent", models_, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("org/absent has no config.json"), std::string::npos) << r.status().message();
  for (const char* bad : {"noslash", "a/b/c", "../x", "/abs"}) {
    auto b = PullModel(bad, models_, options_);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  options_.endpoint = "http://127.0.0.1:1";  // nothing listens
  auto down = PullModel("org/tiny", models_, options_);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace contextd

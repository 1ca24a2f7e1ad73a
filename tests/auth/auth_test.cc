// API keys (made, presented, rotated, revoked, expired), key requests and collection
// grants.
#include "auth/auth.h"

#include <gtest/gtest.h>

namespace contextd {
namespace {

Json J(const std::string& s) { return *ParseJson(s); }

TEST(AuthTest, AKeyAuthenticatesUntilRotatedRevokedOrExpired) {
  AuthRegistry reg;
  reg.PutTenant({"acme", {}});
  KeyRecord k = *ParseKeyRequest(J(R"({"role":"writer","user_id":"u42","expires_at":"2030-01-01T00:00:00Z"})"));
  k.tenant = "acme";
  const std::string key = MakeKey(&k);
  EXPECT_EQ(key.rfind("ctxd_" + k.id + "_", 0), 0u);
  EXPECT_EQ(k.secret_sha256.size(), 64u);
  EXPECT_EQ(key.find(k.secret_sha256), std::string::npos) << "only the hash is kept";
  reg.PutKey(k);

  const int64_t now = 1764800000000;  // 2025-12
  auto who = reg.Authenticate(key, now);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ((*who)->tenant, "acme");
  EXPECT_EQ((*who)->role, Role::kWriter);
  EXPECT_EQ((*who)->user_id, "u42");
  EXPECT_TRUE(reg.Authenticate(key, now).ok()) << "a second time, from the verified cache";

  std::string wrong = key;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(reg.Authenticate(wrong, now).status().reason(), "invalid_api_key");
  EXPECT_EQ(reg.Authenticate("sk-not-ours", now).status().reason(), "invalid_api_key");
  EXPECT_EQ(reg.Authenticate(key, 1893456000000 + 1).status().reason(), "expired_api_key");

  KeyRecord rotated = k;
  const std::string fresh = RotateKey(&rotated);
  EXPECT_EQ(rotated.id, k.id);
  reg.PutKey(rotated);
  EXPECT_FALSE(reg.Authenticate(key, now).ok()) << "the old secret works no more";
  EXPECT_TRUE(reg.Authenticate(fresh, now).ok());

  reg.DeleteTenant("acme");  // takes its keys with it
  EXPECT_FALSE(reg.Authenticate(fresh, now).ok());
}

TEST(AuthTest, RecordsRoundTripAndBadRequestsAreRefused) {
  KeyRecord k = *ParseKeyRequest(
      J(R"({"role":"reader","collections":{"docs*":"rw","kb":"r"},"limits":{"rpm":60},"priority":"batch"})"));
  k.tenant = "t";
  MakeKey(&k);
  auto back = KeyRecord::FromJson(k.ToJson(/*with_hash=*/true));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->collections, k.collections);
  EXPECT_EQ(back->limits.rpm, 60);
  EXPECT_EQ(back->priority, "batch");
  EXPECT_EQ(back->secret_sha256, k.secret_sha256);
  EXPECT_FALSE(k.ToJson(false).Find("secret_sha256"));

  for (const char* bad : {R"({"role":"owner"})", R"({"collections":{"a*b*":"r"}})", R"({"collections":{"a":"w"}})",
                          R"({"limits":{"rpm":-1}})", R"({"limits":{"qps":1}})", R"({"expires_at":"tomorrow"})",
                          R"({"priority":"urgent"})", R"({"color":"red"})"}) {
    EXPECT_FALSE(ParseKeyRequest(J(bad)).ok()) << bad;
  }
  EXPECT_FALSE(ValidateTenantId("a/b").ok());
  EXPECT_FALSE(ValidateTenantId("").ok());
}

TEST(AuthTest, CollectionGrantsMatchPatternsAndAccess) {
  KeyRecord k;
  EXPECT_TRUE(k.AllowsCollection("anything", true)) << "no grants: the role decides";
  k.collections = {{"docs*", "rw"}, {"*-kb", "r"}, {"notes", "r"}};
  EXPECT_TRUE(k.AllowsCollection("docs-2024", true));
  EXPECT_TRUE(k.AllowsCollection("team-kb", false));
  EXPECT_FALSE(k.AllowsCollection("team-kb", true));
  EXPECT_TRUE(k.AllowsCollection("notes", false));
  EXPECT_FALSE(k.AllowsCollection("notes2", false));
  EXPECT_FALSE(k.AllowsCollection("secret", false));
}

}  // namespace
}  // namespace contextd

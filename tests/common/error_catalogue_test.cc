// The error catalogue is the sources' truth: every reason a Status helper is given in src/
// is listed, every listed reason is used, and each listed HTTP status fits the Status code
// it is raised with.
#include "common/error_catalogue.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace contextd {
namespace {

// The HTTP statuses a reason raised with each helper may be answered with.
const std::map<std::string, std::set<int>> kAllowed = {
    {"InvalidArgument", {400, 401, 403, 405, 406, 414, 415, 431}},
    {"Unauthenticated", {401}},
    {"NotFound", {404}},
    {"AlreadyExists", {409}},
    {"FailedPrecondition", {409}},
    {"ResourceExhausted", {402, 413, 429}},
    {"Unavailable", {503, 507}},
    {"DeadlineExceeded", {504}},
    {"Internal", {500}},
};

// (helper, reason) for every call `Helper(..., "reason")` in the sources.
std::vector<std::pair<std::string, std::string>> ReasonsInSources() {
  std::vector<std::pair<std::string, std::string>> out;
  const std::regex helper(
      R"(\b(InvalidArgument|Unauthenticated|NotFound|AlreadyExists|FailedPrecondition|ResourceExhausted|Unavailable|DeadlineExceeded|Internal)\s*\()");
  const std::regex last_arg(R"re(,\s*"([a-z][a-z0-9_]*)"\s*$)re");
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(CONTEXTD_SOURCE_DIR) + "/src")) {
    const std::string path = entry.path().string();
    if (!entry.is_regular_file() ||
        (path.size() < 3 || (path.substr(path.size() - 3) != ".cc" && path.substr(path.size() - 2) != ".h")))
      continue;
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    for (std::sregex_iterator it(s.begin(), s.end(), helper), end; it != end; ++it) {
      // The call's arguments, to the matching parenthesis (strings skipped).
      size_t j = static_cast<size_t>(it->position() + it->length());
      const size_t start = j;
      int depth = 1;
      while (j < s.size() && depth > 0) {
        if (s[j] == '"') {
          for (++j; j < s.size() && s[j] != '"'; ++j)
            if (s[j] == '\\') ++j;
        } else if (s[j] == '(') {
          ++depth;
        } else if (s[j] == ')') {
          --depth;
        }
        ++j;
      }
      const std::string args = s.substr(start, j - start - 1);
      std::smatch m;
      if (std::regex_search(args, m, last_arg)) out.emplace_back((*it)[1], m[1]);
    }
  }
  return out;
}

TEST(ErrorCatalogueTest, SortedAndUnique) {
  auto all = ErrorCatalogue();
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].code, all[i].code) << all[i].code;
  for (const auto& r : all) {
    EXPECT_EQ(FindErrorReason(r.code), &r);
    EXPECT_FALSE(r.meaning.empty()) << r.code;
  }
  EXPECT_EQ(FindErrorReason("no_such_reason"), nullptr);
}

TEST(ErrorCatalogueTest, EveryReasonInTheSourcesIsListedWithAFittingStatus) {
  const auto used = ReasonsInSources();
  ASSERT_GT(used.size(), 100u) << "the scan found too little; is CONTEXTD_SOURCE_DIR right?";
  std::set<std::string> seen;
  for (const auto& [helper, reason] : used) {
    seen.insert(reason);
    const ErrorReason* r = FindErrorReason(reason);
    ASSERT_NE(r, nullptr) << helper << "(..., \"" << reason << "\") is not in common/error_catalogue.cc";
    EXPECT_TRUE(kAllowed.at(helper).count(r->http_status))
        << reason << " is raised as " << helper << " but listed as HTTP " << r->http_status;
  }
  // The Status helpers' defaults and reasons set outside a helper call.
  for (const char* implicit :
       {"invalid_argument", "not_found", "already_exists", "failed_precondition", "resource_exhausted", "unavailable",
        "deadline_exceeded", "internal", "budget_exceeded", "bad_request"}) {
    seen.insert(implicit);
  }
  for (const auto& r : ErrorCatalogue()) {
    EXPECT_TRUE(seen.count(std::string(r.code))) << r.code << " is listed but never raised";
  }
}

}  // namespace
}  // namespace contextd

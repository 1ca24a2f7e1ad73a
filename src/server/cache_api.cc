// The LLM response cache endpoints, /v1/cache/{namespace}: settings, store, lookup and
// deletes (cache/llm_cache.h does the work).
#include "cache/llm_cache.h"
#include "server/api.h"
#include "server/request_codec.h"

namespace contextd {
namespace {

Json FeedbackJson(const CacheFeedbackState& s) {
  Json j = Json::MakeObject();
  j["observations"] = static_cast<int64_t>(s.observations);
  j["wrong"] = static_cast<int64_t>(s.wrong);
  j["min_confidence"] = s.min_confidence;  // in force now
  if (s.learned_min_confidence) {
    // Above 1: no threshold keeps the error rate within the namespace's bound.
    j["learned_min_confidence"] = *s.learned_min_confidence;
    j["support"] = static_cast<int64_t>(s.support);
    j["error_bound"] = s.error_bound;
  } else {
    j["learned_min_confidence"] = Json();
  }
  return j;
}

}  // namespace

StatusOr<Api::Reply> Api::CacheConfigure(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, /*allow_empty=*/true));
  CTX_ASSIGN_OR_RETURN(CacheSettingsUpdate update, ParseCacheSettings(body));
  Reply r;
  CTX_ASSIGN_OR_RETURN(CacheSettings settings, backends_.llm_cache->CacheConfigure(p[0], update, ctx));
  r.json = settings.ToJson();
  return r;
}

StatusOr<Api::Reply> Api::CacheDescribe(const Params& p, const HttpRequest&, RequestContext& ctx) {
  Reply r;
  CTX_ASSIGN_OR_RETURN(CacheNamespaceInfo info, backends_.llm_cache->CacheDescribe(p[0], ctx));
  r.json = info.settings.ToJson();
  r.json["name"] = p[0];
  r.json["entries"] = static_cast<int64_t>(info.entries);
  r.json["scopes"] = static_cast<int64_t>(info.scopes);
  r.json["dim"] = info.dim;
  r.json["feedback"] = FeedbackJson(info.feedback);
  return r;
}

StatusOr<Api::Reply> Api::CacheStore(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(CacheStoreRequest request, ParseCacheStore(body));
  CTX_ASSIGN_OR_RETURN(std::string id, backends_.llm_cache->CacheStore(p[0], request, ctx));
  Reply r;
  r.json = Json::MakeObject();
  r.json["id"] = id;
  return r;
}

StatusOr<Api::Reply> Api::CacheLookup(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(CacheLookupRequest request, ParseCacheLookup(body));
  CTX_ASSIGN_OR_RETURN(contextd::CacheLookup found, backends_.llm_cache->CacheLookup(p[0], request, ctx));
  Reply r;
  r.json = Json::MakeObject();
  r.json["hit"] = found.hit;
  if (found.hit) {
    r.json["id"] = found.id;
    r.json["response"] = std::move(found.response);
    r.json["similarity"] = found.similarity;
    r.json["exact"] = found.exact;
  }
  // Why a semantic hit was served, or why the nearest prompts were not; and each prompt
  // considered, so a client can tell the cache whether one would have been right
  // (POST /v1/cache/{ns}/feedback).
  if (found.verification) r.json["verification"] = found.verification->ToJson();
  if (!found.candidates.empty()) {
    Json candidates = Json::MakeArray();
    for (const auto& c : found.candidates) {
      Json j = Json::MakeObject();
      j["id"] = c.id;
      j["similarity"] = c.similarity;
      j["confidence"] = c.verification.confidence;
      j["passed"] = c.verification.passed;
      candidates.push_back(std::move(j));
    }
    r.json["candidates"] = std::move(candidates);
  }
  return r;
}

StatusOr<Api::Reply> Api::CacheFeedback(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  CTX_ASSIGN_OR_RETURN(CacheFeedbackRequest request, ParseCacheFeedback(body));
  CTX_ASSIGN_OR_RETURN(CacheFeedbackResult result, backends_.llm_cache->CacheFeedback(p[0], request, ctx));
  Reply r;
  r.json = Json::MakeObject();
  r.json["id"] = result.observed.id;
  r.json["correct"] = result.observed.correct;
  r.json["similarity"] = result.observed.similarity;
  r.json["confidence"] = result.observed.confidence;
  // The entry is not served at or below this confidence (0: no such floor).
  if (result.state.entry_floor) r.json["entry_min_confidence"] = *result.state.entry_floor;
  r.json["namespace"] = FeedbackJson(result.state);
  return r;
}

StatusOr<Api::Reply> Api::CacheDeleteByScope(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  // ?scope.model=gpt-4&scope.user=42: entries whose scope has all of these. Deleting every
  // entry takes an explicit ?all=true, so a forgotten filter cannot wipe a namespace.
  std::map<std::string, std::string> fields;
  bool all = false;
  CTX_ASSIGN_OR_RETURN(auto params, ParseQueryString(req.query));
  for (auto& [key, value] : params) {
    if (key == "all") {
      if (value != "true" && value != "false") return InvalidArgument("'all' must be true or false", "invalid_value");
      all = value == "true";
      continue;
    }
    if (key.rfind("scope.", 0) != 0 || key.size() == 6)
      return InvalidArgument("query parameter '" + key + "' is not a scope field (scope.NAME=value)", "invalid_value");
    fields[key.substr(6)] = std::move(value);
  }
  if (fields.empty() && !all) {
    return InvalidArgument("no scope filter given: deleting every entry of '" + p[0] +
                               "' needs ?all=true (or filter with scope.NAME=value)",
                           "missing_filter");
  }
  if (!fields.empty() && all)
    return InvalidArgument("give either scope filters or all=true, not both", "invalid_value");
  CTX_ASSIGN_OR_RETURN(size_t deleted, backends_.llm_cache->CacheDelete(p[0], fields, ctx));
  Reply r;
  r.json = Json::MakeObject();
  r.json["deleted"] = static_cast<int64_t>(deleted);
  return r;
}

StatusOr<Api::Reply> Api::CacheDeleteEntry(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(backends_.llm_cache->CacheDeleteEntry(p[0], p[1], ctx));
  Reply r;
  r.json = Json::MakeObject();
  r.json["deleted"] = 1;
  return r;
}

}  // namespace contextd

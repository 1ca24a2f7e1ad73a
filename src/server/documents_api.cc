// Reading documents back: one by id, many by id, and every one page by page in id order
// (an export), and deleting one. Upserts are in api.cc, with the write path's admission.
#include <cstdlib>

#include "server/api.h"
#include "server/request_codec.h"
#include "server/response_codec.h"

namespace contextd {
namespace {

constexpr size_t kMaxPageDocuments = 1000;
constexpr size_t kMaxIdsPerGet = 1000;

Json DocumentsJson(std::vector<StoredDocument> docs) {
  Json out = Json::MakeArray();
  for (auto& d : docs) out.push_back(StoredDocumentJson(std::move(d)));
  return out;
}

}  // namespace

StatusOr<Api::Reply> Api::GetDocument(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  Reply r;
  CTX_ASSIGN_OR_RETURN(StoredDocument doc, c->GetDocument(p[1]));
  r.json = StoredDocumentJson(std::move(doc));
  return r;
}

StatusOr<Api::Reply> Api::DeleteDocument(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  CTX_RETURN_IF_ERROR(c->DeleteDocument(ctx, p[1]));
  Reply r;
  r.json["deleted"] = p[1];
  r.json["usage"] = UsageJson(ctx.usage);
  return r;
}

StatusOr<Api::Reply> Api::GetDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, /*allow_empty=*/false));
  const Json* ids = body.Find("ids");
  if (ids == nullptr) return InvalidArgument("'ids' is required: a list of document ids", "missing_field");
  if (!ids->is_array()) return InvalidArgument("'ids' must be a list of document ids", "invalid_type");
  if (ids->as_array().size() > kMaxIdsPerGet) {
    return InvalidArgument("'ids' may hold at most " + std::to_string(kMaxIdsPerGet) + " ids, got " +
                               std::to_string(ids->as_array().size()),
                           "out_of_range");
  }
  std::vector<std::string> wanted;
  for (const Json& id : ids->as_array()) {
    if (!id.is_string() || id.as_string().empty()) {
      return InvalidArgument("every entry of 'ids' must be a non-empty string", "invalid_type");
    }
    wanted.push_back(id.as_string());
  }
  std::vector<std::string> missing;
  CTX_ASSIGN_OR_RETURN(auto found, c->GetDocuments(wanted, &missing));
  Reply r;
  r.json = Json::MakeObject();
  r.json["documents"] = DocumentsJson(std::move(found));
  Json gone = Json::MakeArray();
  for (auto& id : missing) gone.push_back(std::move(id));
  r.json["missing"] = std::move(gone);
  return r;
}

StatusOr<Api::Reply> Api::ListDocuments(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(auto c, backends_.collections->Find(ctx.tenant, p[0]));
  DocumentListRequest list;
  CTX_ASSIGN_OR_RETURN(auto params, ParseQueryString(req.query));
  for (auto& [key, value] : params) {
    if (key == "limit") {
      char* end = nullptr;
      const long long n = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > static_cast<long long>(kMaxPageDocuments)) {
        return InvalidArgument(
            "'limit' must be a whole number from 1 to " + std::to_string(kMaxPageDocuments) + ", got '" + value + "'",
            "out_of_range");
      }
      list.limit = static_cast<size_t>(n);
    } else if (key == "after") {
      list.after = std::move(value);
    } else if (key == "filter") {
      auto spec = ParseJson(value);
      if (!spec.ok()) {
        return InvalidArgument("'filter' must be a JSON filter object (URL-encoded): " + spec.status().message(),
                               "invalid_filter");
      }
      CTX_ASSIGN_OR_RETURN(list.filter, Filter::Parse(*spec));
    } else {
      return InvalidArgument("unknown query parameter '" + key + "' (limit, after and filter are)", "invalid_value");
    }
  }
  CTX_ASSIGN_OR_RETURN(DocumentPage page, c->ListDocuments(ctx, list));
  Reply r;
  r.json = Json::MakeObject();
  r.json["documents"] = DocumentsJson(std::move(page.documents));
  r.json["next"] = page.next.empty() ? Json() : Json(page.next);
  r.json["scanned"] = static_cast<int64_t>(page.scanned);
  return r;
}

}  // namespace contextd

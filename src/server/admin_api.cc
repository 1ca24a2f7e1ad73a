// Governance endpoints, /v1/admin: tenants (the admin key's) and their API keys (the admin
// key's, or an admin-role key's of the same tenant). Every change is a mutation through
// the update log (GovernanceService::PutTenant, PutKey, ...), so every node sees it.
#include "auth/auth.h"
#include "server/api.h"

namespace contextd {
namespace {

Status TenantNotFound(const std::string& id) { return NotFound("tenant '" + id + "' not found", "tenant_not_found"); }

Json TenantJson(const ApiBackends& b, const TenantRecord& t) {
  Json j = t.ToJson();
  j["keys"] = static_cast<int64_t>(b.governance->auth().Keys(t.id).size());
  j["collections"] = static_cast<int64_t>(b.collections->List(t.id).size());
  return j;
}

}  // namespace

StatusOr<Api::Reply> Api::AdminCreateTenant(const Params&, const HttpRequest& req, RequestContext& ctx) {
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  for (const auto& [k, v] : body.as_object()) {
    if (k != "id" && k != "limits" && k != "user_limits")
      return InvalidArgument("unknown field '" + k + "'; expected id, limits, user_limits", "unknown_field");
  }
  CTX_ASSIGN_OR_RETURN(TenantRecord t, TenantRecord::FromJson(body));
  if (backends_.governance->auth().Tenant(t.id) || t.id == kDefaultTenant) {
    return AlreadyExists("tenant '" + t.id + "' already exists", "tenant_exists");
  }
  CTX_RETURN_IF_ERROR(backends_.governance->PutTenant(t, ctx));
  Reply r;
  r.status = 201;
  r.json = TenantJson(backends_, t);
  return r;
}

StatusOr<Api::Reply> Api::AdminListTenants(const Params&, const HttpRequest&, RequestContext&) {
  Reply r;
  Json list = Json::MakeArray();
  for (const auto& t : backends_.governance->auth().Tenants()) list.push_back(TenantJson(backends_, t));
  r.json["tenants"] = std::move(list);
  return r;
}

StatusOr<Api::Reply> Api::AdminGetTenant(const Params& p, const HttpRequest&, RequestContext&) {
  auto t = backends_.governance->auth().Tenant(p[0]);
  if (!t) return TenantNotFound(p[0]);
  Reply r;
  r.json = TenantJson(backends_, *t);
  return r;
}

StatusOr<Api::Reply> Api::AdminPatchTenant(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  auto t = backends_.governance->auth().Tenant(p[0]);
  if (!t) return TenantNotFound(p[0]);
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, false));
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  for (const auto& [k, v] : body.as_object()) {
    if (k == "limits") {
      CTX_ASSIGN_OR_RETURN(t->limits, ParseLimits(v, t->limits));
    } else if (k == "user_limits") {
      CTX_ASSIGN_OR_RETURN(t->user_limits, ParseLimits(v, t->user_limits));
    } else {
      return InvalidArgument("unknown field '" + k + "'; expected limits, user_limits", "unknown_field");
    }
  }
  CTX_RETURN_IF_ERROR(backends_.governance->PutTenant(*t, ctx));
  Reply r;
  r.json = TenantJson(backends_, *t);
  return r;
}

StatusOr<Api::Reply> Api::AdminDeleteTenant(const Params& p, const HttpRequest&, RequestContext& ctx) {
  CTX_RETURN_IF_ERROR(backends_.governance->DeleteTenant(p[0], ctx));
  Reply r;
  r.json["deleted"] = true;
  return r;
}

StatusOr<Api::Reply> Api::AdminCreateKey(const Params& p, const HttpRequest& req, RequestContext& ctx) {
  if (p[0] != kDefaultTenant && !backends_.governance->auth().Tenant(p[0])) return TenantNotFound(p[0]);
  CTX_ASSIGN_OR_RETURN(Json body, ParseBody(req, /*allow_empty=*/true));
  if (body.is_null()) body = Json::MakeObject();
  CTX_ASSIGN_OR_RETURN(KeyRecord k, ParseKeyRequest(body));
  k.tenant = p[0];
  const std::string key = MakeKey(&k);
  CTX_RETURN_IF_ERROR(backends_.governance->PutKey(k, ctx));
  Reply r;
  r.status = 201;
  r.json = k.ToJson(/*with_hash=*/false);
  r.json["key"] = key;  // shown this once; only its hash is kept
  return r;
}

StatusOr<Api::Reply> Api::AdminListKeys(const Params& p, const HttpRequest&, RequestContext&) {
  if (p[0] != kDefaultTenant && !backends_.governance->auth().Tenant(p[0])) return TenantNotFound(p[0]);
  Reply r;
  Json list = Json::MakeArray();
  for (const auto& k : backends_.governance->auth().Keys(p[0])) list.push_back(k.ToJson(/*with_hash=*/false));
  r.json["keys"] = std::move(list);
  return r;
}

StatusOr<Api::Reply> Api::AdminRotateKey(const Params& p, const HttpRequest&, RequestContext& ctx) {
  auto k = backends_.governance->auth().Key(p[1]);
  if (!k || k->tenant != p[0])
    return NotFound("API key '" + p[1] + "' not found in tenant '" + p[0] + "'", "key_not_found");
  const std::string key = RotateKey(&*k);
  CTX_RETURN_IF_ERROR(backends_.governance->PutKey(*k, ctx));
  Reply r;
  r.json = k->ToJson(/*with_hash=*/false);
  r.json["key"] = key;
  return r;
}

StatusOr<Api::Reply> Api::AdminDeleteKey(const Params& p, const HttpRequest&, RequestContext& ctx) {
  auto k = backends_.governance->auth().Key(p[1]);
  if (!k || k->tenant != p[0])
    return NotFound("API key '" + p[1] + "' not found in tenant '" + p[0] + "'", "key_not_found");
  CTX_RETURN_IF_ERROR(backends_.governance->DeleteKey(p[1], ctx));
  Reply r;
  r.json["deleted"] = true;
  return r;
}

}  // namespace contextd

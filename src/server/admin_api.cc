// Admin endpoints, /v1/admin: tenants (the admin key's) and their API keys (the admin
// key's, or an admin-role key's of the same tenant), every change a mutation through the
// update log (GovernanceService::PutTenant, PutKey, ...), so every node sees it; and the
// replica's digest and checkpoint (a new replica's seed).
#include "auth/auth.h"
#include "server/api.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/dir_archive.h"
#include "usage/usage_wire.h"

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
    if (k != "id" && k != "limits" && k != "user_limits" && k != "budget")
      return InvalidArgument("unknown field '" + k + "'; expected id, limits, user_limits, budget", "unknown_field");
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

// What this node holds, as digests a replica check compares across nodes (bench/chaos.sh):
// equal digests at the same applied sequence mean the same documents, chunks and keyword
// statistics, and the same shard layout with the same chunks in each shard. "settled" is
// false when writes were applied while the digests were taken.
StatusOr<Api::Reply> Api::AdminDigest(const Params&, const HttpRequest&, RequestContext&) {
  const uint64_t before = backends_.replica->applied_sequence();
  CTX_ASSIGN_OR_RETURN(ReplicaState::Digests digests, backends_.replica->Digest());
  const uint64_t after = backends_.replica->applied_sequence();
  const auto hex = [](uint64_t v) {
    char buf[17];
    snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  Reply r;
  r.json["applied_sequence"] = static_cast<int64_t>(after);
  r.json["settled"] = before == after;
  Json list = Json::MakeArray();
  for (const auto& [key, value] : digests) {
    const CollectionDigest& d = value.second;
    Json c = Json::MakeObject();
    c["tenant"] = key.first;
    c["name"] = key.second;
    c["id"] = static_cast<int64_t>(value.first);
    c["documents"] = static_cast<int64_t>(d.document_count);
    c["chunks"] = static_cast<int64_t>(d.chunk_count);
    c["unindexed_chunks"] = static_cast<int64_t>(d.unindexed_chunks);
    c["digest"] = hex(d.documents) + hex(d.chunks) + hex(d.keywords) + hex(d.layout);
    Json shards = Json::MakeArray();
    for (const auto& [id, shard] : d.shards) {
      Json s = Json::MakeObject();
      s["id"] = static_cast<int64_t>(id);
      s["chunks"] = static_cast<int64_t>(shard.chunks);
      s["digest"] = hex(shard.digest);
      shards.push_back(std::move(s));
    }
    c["shards"] = std::move(shards);
    list.push_back(std::move(c));
  }
  r.json["collections"] = std::move(list);
  return r;
}

// A seed for a new replica: this node's databases at one applied sequence, as one archive
// (common/dir_archive.h), streamed at the reader's pace. A stream cut short lacks the
// archive's end line, which the reader checks.
StatusOr<Api::Reply> Api::AdminCheckpoint(const Params&, const HttpRequest&, RequestContext&) {
  CTX_ASSIGN_OR_RETURN(ReplicaState::CheckpointInfo cp, backends_.replica->Checkpoint());
  Reply r;
  r.content_type = "application/octet-stream";
  r.channel = std::make_shared<HttpBodyChannel>();
  r.produce = [dir = cp.dir, channel = r.channel] {
    constexpr size_t kQueuedBytes = 4 << 20;
    constexpr std::chrono::seconds kStalled(60);  // a reader idle this long is given up on
    const Status st = WriteDirArchive(dir, [&](std::string_view piece) {
      return channel->WaitForRoom(kQueuedBytes, kStalled) && channel->Write(std::string(piece));
    });
    if (!st.ok()) spdlog::warn("checkpoint stream stopped: {}", st.message());
    channel->Close();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  spdlog::info("checkpoint at sequence {} streaming to a new replica", cp.sequence);
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
    } else if (k == "budget") {
      CTX_ASSIGN_OR_RETURN(t->budget, ParseBudget(v, t->budget));
    } else {
      return InvalidArgument("unknown field '" + k + "'; expected limits, user_limits, budget", "unknown_field");
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

namespace contextd {

// GET /v1/usage?group_by=tenant,model&from=..&to=..&granularity=hour|day[&tenant=..]: the
// ledger's totals. The admin key sees every tenant (or the one named); a tenant's admin key
// its tenant; any other key its own usage.
StatusOr<Api::Reply> Api::GetUsage(const Params&, const HttpRequest& req, RequestContext& ctx) {
  if (options_.usage == nullptr) {
    return FailedPrecondition("usage is recorded with --auth or a price table (config \"prices\")", "usage_disabled");
  }
  UsageQuery q;
  const int64_t now = clock_->WallMillis();
  q.to_ms = now;
  q.from_ms = now - 24 * 3600'000LL;
  CTX_ASSIGN_OR_RETURN(auto params, ParseQueryString(req.query));
  std::string tenant;
  std::string scope = "cluster";  // in cluster mode, every node's usage; "node": this one's
  for (const auto& [k, v] : params) {
    if (k == "from" || k == "to") {
      int64_t* at = k == "from" ? &q.from_ms : &q.to_ms;
      char* end = nullptr;
      const long long ms = std::strtoll(v.c_str(), &end, 10);
      if (!v.empty() && *end == '\0') {
        *at = ms;
      } else {
        CTX_ASSIGN_OR_RETURN(*at, ParseRfc3339(v, "'" + k + "'"));
      }
    } else if (k == "granularity") {
      if (v != "hour" && v != "day") return InvalidArgument("'granularity' must be hour or day", "invalid_value");
      q.granularity_ms = v == "day" ? 24 * 3600'000LL : 3600'000LL;
    } else if (k == "group_by") {
      size_t start = 0;
      while (start <= v.size()) {
        const size_t comma = std::min(v.find(',', start), v.size());
        const std::string dim = v.substr(start, comma - start);
        const auto& known = UsageLedger::Dimensions();
        if (std::find(known.begin(), known.end(), dim) == known.end()) {
          return InvalidArgument(
              "cannot group usage by '" + dim + "'; use tenant, key, user, collection, model, operation",
              "invalid_value");
        }
        q.group_by.push_back(dim);
        start = comma + 1;
      }
    } else if (k == "tenant") {
      tenant = v;
    } else if (k == "scope") {
      if (v != "cluster" && v != "node") return InvalidArgument("'scope' must be cluster or node", "invalid_value");
      scope = v;
    } else {
      return InvalidArgument(
          "unknown query parameter '" + k + "'; expected group_by, from, to, granularity, tenant, scope",
          "unknown_field");
    }
  }
  if (q.from_ms >= q.to_ms) return InvalidArgument("'from' must be before 'to'", "invalid_value");
  if (ctx.principal == "admin" || !options_.auth_enabled) {
    q.tenant = tenant;
  } else {
    q.tenant = ctx.tenant;
    if (!tenant.empty() && tenant != ctx.tenant) return NotFound("no tenant '" + tenant + "'", "tenant_not_found");
    bool tenant_admin = false;
    for (const KeyRecord& k : backends_.governance->auth().Keys(ctx.tenant)) {
      if (k.id == ctx.principal) tenant_admin = k.role == Role::kAdmin;
    }
    if (!tenant_admin) q.key = ctx.principal;
  }
  Reply r;
  std::vector<UsageRow> rows;
  if (options_.cluster_usage && scope == "cluster") {
    int asked = 0, answered = 0;
    rows = options_.cluster_usage(q, &asked, &answered);
    // A node that did not answer in time leaves its share out: the reply says so.
    r.json["nodes"]["asked"] = asked;
    r.json["nodes"]["answered"] = answered;
  } else {
    rows = options_.usage->Query(q);
  }
  double total = 0;
  for (const UsageRow& row : rows) total += row.cost_usd;
  r.json["rows"] = UsageRowsToJson(rows);
  r.json["scope"] = options_.cluster_usage ? scope : "node";
  r.json["from_ms"] = q.from_ms;
  r.json["to_ms"] = q.to_ms;
  r.json["cost_usd"] = total;
  return r;
}

}  // namespace contextd

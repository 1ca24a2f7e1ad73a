#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "auth/shared_rate_limiter.h"
#include "cli/cluster_seed.h"
#include "cli/commands.h"
#include "cluster/jetstream_log.h"
#include "cluster/shard_router.h"
#include "common/cores.h"
#include "common/json.h"
#include "common/memory.h"
#include "common/metrics.h"
#include "common/periodic_task.h"
#include "engine/engine.h"
#include "net/http_server.h"
#include "server/api.h"
#include "server/storage_meter.h"
#include "usage/usage_ledger.h"
#include "usage/usage_wire.h"

namespace contextd {

std::string LoadServeConfig(const std::string& path, ServeOptions* o) {
  std::ifstream in(path);
  if (!in) return "cannot read config file " + path;
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = ParseJson(ss.str());
  if (!parsed.ok()) return "config file " + path + ": " + parsed.status().message();
  const Json& j = *parsed;
  if (!j.is_object()) return "config file " + path + " must hold a JSON object";
  // Each number's key, range and field.
  struct Number {
    const char* key;
    SettingRange range;
    std::function<void(int64_t)> set;
  };
  const Number numbers[] = {
      {"port", kPortRange, [o](int64_t n) { o->port = static_cast<int>(n); }},
      {"io_threads", kCoreThreadsRange, [o](int64_t n) { o->io_threads = static_cast<int>(n); }},
      {"search_threads", kCoreThreadsRange, [o](int64_t n) { o->search_threads = static_cast<int>(n); }},
      {"write_threads", kWriteThreadsRange, [o](int64_t n) { o->write_threads = static_cast<int>(n); }},
      {"embed_threads", kEmbedThreadsRange, [o](int64_t n) { o->embed_threads = static_cast<int>(n); }},
      {"max_body_bytes", kMaxBodyBytesRange, [o](int64_t n) { o->max_body_bytes = static_cast<size_t>(n); }},
      {"max_body_bytes_in_flight", kBodyBytesInFlightRange, [o](int64_t n) { o->max_body_bytes_in_flight = n; }},
      {"cpu_quantum_us", kCpuQuantumUsRange, [o](int64_t n) { o->cpu_quantum_us = static_cast<int>(n); }},
      {"io_coalesce_us", kIoCoalesceUsRange, [o](int64_t n) { o->io_coalesce_us = static_cast<int>(n); }},
      {"shutdown_grace_ms", kShutdownGraceMsRange, [o](int64_t n) { o->shutdown_grace_ms = n; }},
      {"max_query_tokens", kMaxQueryTokensRange, [o](int64_t n) { o->max_query_tokens = n; }},
      {"idle_timeout_s", kIdleTimeoutSRange, [o](int64_t n) { o->idle_timeout_s = n; }},
      {"header_timeout_ms", kHeaderTimeoutMsRange, [o](int64_t n) { o->header_timeout_ms = n; }},
      {"max_queue", kMaxQueueRange, [o](int64_t n) { o->max_queue = n; }},
      {"max_queue_delay_ms", kMaxQueueDelayMsRange, [o](int64_t n) { o->max_queue_delay_ms = n; }},
      {"memory_high_mb", kMemoryHighMbRange, [o](int64_t n) { o->memory_high_mb = n; }},
      {"max_connections_per_client", kConnectionsPerClientRange, [o](int64_t n) { o->max_connections_per_client = n; }},
      {"min_free_disk_mb", kMinFreeDiskMbRange, [o](int64_t n) { o->min_free_disk_mb = n; }},
      {"replicas", kReplicasRange, [o](int64_t n) { o->replicas = static_cast<int>(n); }},
      {"log_keep", kLogKeepRange, [o](int64_t n) { o->log_keep = n; }},
      {"shard_replicas", kReplicasRange, [o](int64_t n) { o->shard_replicas = static_cast<int>(n); }},
  };
  for (const auto& [k, v] : j.as_object()) {
    auto number =
        std::find_if(std::begin(numbers), std::end(numbers), [&k = k](const Number& x) { return k == x.key; });
    if (number != std::end(numbers)) {
      int64_t n = 0;
      Status st = ReadWholeNumber(v, "'" + k + "'", number->range.lo, number->range.hi, &n);
      if (!st.ok()) return "config file " + path + ": " + st.message();
      number->set(n);
      continue;
    }
    const bool str = v.is_string();
    if (k == "host" && str)
      o->host = v.as_string();
    else if (k == "data" && str)
      o->data_dir = v.as_string();
    else if (k == "models" && str)
      o->models_dir = v.as_string();
    else if (k == "cluster" && str)
      o->cluster = v.as_string();
    else if (k == "node_id" && str)
      o->node_id = v.as_string();
    else if (k == "redis" && str)
      o->redis = v.as_string();
    else if (k == "query_routing" && str && (v.as_string() == "local" || v.as_string() == "shards"))
      o->query_routing = v.as_string();
    else if (k == "log_compression" && str && ParseLogCompression(v.as_string()).ok())
      o->log_compression = v.as_string();
    else if (k == "partial_indexing" && v.is_bool())
      o->partial_indexing = v.as_bool();
    else if (k == "auth" && v.is_object()) {
      for (const auto& [ak, av] : v.as_object()) {
        if (ak == "enabled" && av.is_bool())
          o->auth = av.as_bool();
        else if (ak == "admin_key" && av.is_string())
          o->admin_key = av.as_string();
        else if (ak == "metrics_need_key" && av.is_bool())
          o->metrics_need_key = av.as_bool();
        else
          return "config file " + path + ": unknown or mistyped key 'auth." + ak + "'";
      }
    } else if (k == "prices") {
      if (auto prices = PriceTable::FromJson(v); !prices.ok()) {
        return "config file " + path + ": " + prices.status().message();
      }
      o->prices = v;
    } else if (k == "mcp" && v.is_object()) {
      for (const auto& [mk, mv] : v.as_object()) {
        if (mk == "store" && mv.is_bool()) {
          o->mcp_store = mv.as_bool();
        } else if (mk == "default_collection" && mv.is_string()) {
          o->mcp_default_collection = mv.as_string();
        } else if (mk == "allowed_origins" && mv.is_array()) {
          for (const Json& origin : mv.as_array()) {
            if (!origin.is_string()) return "config file " + path + ": mcp.allowed_origins holds strings";
            o->mcp_allowed_origins.push_back(origin.as_string());
          }
        } else {
          return "config file " + path + ": unknown or mistyped key 'mcp." + mk + "'";
        }
      }
    } else if (k == "embedding") {
      auto embed = EmbedServiceOptions::FromJson(v);
      if (!embed.ok()) return "config file " + path + ": " + embed.status().message();
      o->embed = std::move(embed).value();
    } else
      return "config file " + path + ": unknown or mistyped key '" + k + "'";
  }
  return "";
}

namespace {

// Every connection is a descriptor, and a login shell's soft limit is often 1024: take the
// hard limit (a server for thousands of sessions, like nginx's worker_rlimit_nofile).
void RaiseDescriptorLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  const rlim_t before = rl.rlim_cur;
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, rlim_t{1} << 20);
  if (rl.rlim_cur <= before) return;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    spdlog::info("open-file limit raised from {} to {}", before, rl.rlim_cur);
  } else {
    spdlog::warn("open-file limit stays at {}: {}", before, std::strerror(errno));
  }
}

}  // namespace

int RunServe(const ServeOptions& o) {
  // Signals are taken synchronously by this thread; every thread started below inherits
  // the mask, so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  RaiseDescriptorLimit();
  ConfigureAllocatorForServing();
  MetricsRegistry metrics;
  EngineOptions eo;
  eo.data_dir = o.data_dir;
  eo.models_dir = o.models_dir;
  eo.embed = o.embed;
  eo.min_free_disk_bytes = static_cast<uint64_t>(o.min_free_disk_mb) << 20;
  JetStreamUpdateLog* log = nullptr;  // owned by the engine
  JetStreamLogOptions lo;
  if (!o.cluster.empty()) {
    std::stringstream urls(o.cluster);
    for (std::string url; std::getline(urls, url, ',');) {
      if (!url.empty()) lo.servers.push_back(url);
    }
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    lo.node_id = o.node_id.empty() ? std::string(host) : o.node_id;
    lo.replicas = o.replicas;
    lo.log_keep = static_cast<uint64_t>(o.log_keep);
    if (auto compression = ParseLogCompression(o.log_compression); compression.ok()) lo.compression = *compression;
    lo.shard_replicas = o.shard_replicas;
    lo.metrics = &metrics;
    // A new node of a cluster whose log no longer starts at 1 needs a member's copy first.
    if (const Status seeded = SeedFromClusterIfNeeded(lo, o.data_dir, o.admin_key); !seeded.ok()) {
      spdlog::critical("cannot start: {}", seeded.message());
      return 1;
    }
    eo.make_log = [&lo, &log](MutationApplier* applier) -> StatusOr<std::unique_ptr<UpdateLog>> {
      spdlog::info("cluster mode: node {}, update log on {} ({} replicas)", lo.node_id, lo.servers[0], lo.replicas);
      CTX_ASSIGN_OR_RETURN(auto l, JetStreamUpdateLog::Open(lo, applier));
      log = l.get();
      return std::unique_ptr<UpdateLog>(std::move(l));
    };
  }
  // The composition root: the parts first (store, embedders, caches, sessions), then the
  // engine over them; the server gets the catalog and the tokenizer from here, not from it.
  auto parts = OpenEngineParts(eo, &metrics);
  if (!parts.ok()) {
    spdlog::critical("cannot start: {}", parts.status().ToString());
    return 1;
  }
  const std::shared_ptr<const EmbedderCatalog> embedders = parts->embedders;
  const std::shared_ptr<const TiktokenEncoder> tokenizer = parts->tokenizer;
  auto engine = Engine::Open(eo, std::move(parts).value(), &metrics);
  if (!engine.ok()) {
    spdlog::critical("cannot start: {}", engine.status().ToString());
    return 1;
  }
  // Deletes, expiries and evictions free memory on threads that never trim; this looks
  // every second and hands back what they left once the work pauses.
  FreeMemoryReleaser releaser(FreeMemoryReleaser::Options{});
  const int cores = UsableCores();    // the affinity mask and any cgroup quota, not the machine
  std::atomic<bool> finished{false};  // set once everything after the drain is done
  std::thread watchdog;
  {
    ApiOptions ao;
    // One per core: searches only compute. A search that gathers shard parts from other
    // nodes (--query-routing shards) waits about a millisecond for them, holding its
    // thread: with one per core, the node's queries per second would be bounded by that
    // wait, not its CPU.
    const int per_core = log != nullptr && (o.query_routing == "shards" || o.partial_indexing) ? 8 : 1;
    ao.search_threads = static_cast<size_t>(o.search_threads > 0 ? o.search_threads : cores * per_core);
    ao.write_threads = static_cast<size_t>(std::max(1, o.write_threads));
    ao.max_queue = static_cast<size_t>(o.max_queue);
    ao.max_queue_delay = std::chrono::milliseconds(o.max_queue_delay_ms);
    ao.memory_high_bytes = static_cast<size_t>(o.memory_high_mb) << 20;
    ao.embed_threads = static_cast<size_t>(std::max(1, o.embed_threads));
    ao.cpu_quantum = std::chrono::microseconds(o.cpu_quantum_us);  // the flag and the file refuse < 0
    ao.max_body_bytes = o.max_body_bytes;
    ao.max_query_tokens = static_cast<size_t>(o.max_query_tokens);
    ao.auth_enabled = o.auth;
    ao.admin_key = o.admin_key;
    ao.metrics_need_key = o.metrics_need_key;
    ao.docs_dir = o.models_dir + "/swagger-ui";
    ao.mcp.store_enabled = o.mcp_store;
    ao.mcp.default_collection = o.mcp_default_collection;
    ao.mcp.allowed_origins = o.mcp_allowed_origins;
    // A node is up while its heartbeats (one a heartbeat_ms) keep coming: within three.
    const auto is_up = [&lo](const JetStreamUpdateLog::Peer& p) { return p.age_ms < 3 * lo.heartbeat_ms; };
    if (log != nullptr) {
      ao.log_connected = [log] { return log->connected(); };
      ao.log_blocked = [log] { return log->blocked_reason(); };
      ao.log_head = [log] { return log->LastSequence(); };
      const Engine* placed = engine->get();
      ao.cluster_status = [log, &lo, is_up, placed] {
        Json j = Json::MakeObject();
        j["mode"] = "cluster";
        j["node_id"] = lo.node_id;
        const JetStreamUpdateLog::StreamState state = log->stream_state();
        Json l = Json::MakeObject();
        l["stream"] = lo.stream;
        l["replicas"] = lo.replicas;
        l["first_sequence"] = static_cast<int64_t>(state.first_sequence);
        l["last_sequence"] = static_cast<int64_t>(state.last_sequence);
        l["bytes"] = static_cast<int64_t>(state.bytes);
        l["compression"] = std::string(LogCompressionName(lo.compression));  // what this node writes
        l["leader"] = state.leader;
        l["connected"] = log->connected();
        if (const std::string blocked = log->blocked_reason(); !blocked.empty()) l["blocked"] = blocked;
        // What each registered node has made durable: the log is purged behind the lowest.
        Json members = Json::MakeArray();
        for (const auto& m : log->members()) {
          Json n = Json::MakeObject();
          n["node_id"] = m.node_id;
          n["role"] = m.role;
          n["durable_sequence"] = static_cast<int64_t>(m.durable);
          n["recorded_at_ms"] = m.wall_ms;
          members.push_back(std::move(n));
        }
        l["members"] = std::move(members);
        j["log"] = std::move(l);
        // Which data nodes hold shards, and how many copies of each: a shard's holders are
        // the map's rendezvous choice among these nodes (cluster/shard_map.h).
        const ShardMap map = log->shard_map();
        Json sm = Json::MakeObject();
        sm["epoch"] = static_cast<int64_t>(map.epoch);
        sm["replicas"] = map.replicas;
        Json holders = Json::MakeArray();
        for (const std::string& n : map.nodes) holders.push_back(Json(n));
        sm["nodes"] = std::move(holders);
        // Each collection's shards with their holders, and how many copies each node holds.
        std::map<std::string, int64_t> held;
        Json placement = Json::MakeArray();
        for (const auto& c : placed->ShardsByCollection()) {
          Json entry = Json::MakeObject();
          entry["tenant"] = c.tenant;
          entry["collection"] = c.collection;
          Json shards = Json::MakeObject();
          for (uint32_t shard : c.shards) {
            Json who = Json::MakeArray();
            for (const std::string& n : map.Holders(c.tenant, c.id, shard)) {
              who.push_back(Json(n));
              ++held[n];
            }
            shards[std::to_string(shard)] = std::move(who);
          }
          entry["shards"] = std::move(shards);
          placement.push_back(std::move(entry));
        }
        sm["collections"] = std::move(placement);
        j["shard_map"] = std::move(sm);
        // Every node heard from: "up" within three heartbeats, "suspect" within ten
        // seconds, "down" after (kept, so an operator sees who went).
        Json nodes = Json::MakeArray();
        for (const auto& p : log->peers()) {
          Json n = Json::MakeObject();
          n["node_id"] = p.node_id;
          n["role"] = p.role;
          n["state"] = is_up(p) ? "up" : p.age_ms < 10000 ? "suspect" : "down";
          n["last_heartbeat_ms_ago"] = p.age_ms;
          n["applied_sequence"] = static_cast<int64_t>(p.applied_sequence);
          n["shards_held"] = held.count(p.node_id) ? held[p.node_id] : 0;
          nodes.push_back(std::move(n));
        }
        j["nodes"] = std::move(nodes);
        return j;
      };
    }
    // --redis: shared by the nodes for rate limits and spend.
    std::optional<RedisEndpoint> redis;
    if (!o.redis.empty()) {
      auto endpoint = ParseRedisUrl(o.redis);
      if (!endpoint.ok()) {
        spdlog::critical("--redis: {}", endpoint.status().message());
        return 1;
      }
      redis = *endpoint;
    }
    // The usage ledger: with auth (tenants to bill) or a price table.
    std::unique_ptr<SharedSpend> shared_spend;
    std::unique_ptr<UsageLedger> ledger;
    if (o.auth || !o.prices.is_null()) {
      // With --redis, spend is summed across the nodes: budgets hold for the cluster.
      if (redis) shared_spend = std::make_unique<SharedSpend>(*redis);
      auto opened = UsageLedger::Open(o.data_dir + "/usage.jsonl", SystemClock::Default(), shared_spend.get());
      if (!opened.ok()) {
        spdlog::critical("cannot open the usage ledger: {}", opened.status().ToString());
        return 1;
      }
      ledger = std::move(opened).value();
      ao.usage = ledger.get();
      if (!o.prices.is_null()) ao.prices = *PriceTable::FromJson(o.prices);
    }
    // Cluster mode: each node's ledger holds what it served; /v1/usage asks every node.
    if (log != nullptr && ledger != nullptr) {
      const UsageLedger* l = ledger.get();
      log->Answer("usage", [l](std::string_view payload) -> std::string {
        auto j = ParseJson(payload);
        auto q = j.ok() ? UsageQueryFromJson(*j) : StatusOr<UsageQuery>(j.status());
        return q.ok() ? UsageRowsToJson(l->Query(*q)).Dump() : "[]";
      });
      ao.cluster_usage = [log, &lo](const UsageQuery& q, int* asked, int* answered) {
        // The nodes likely alive: heard lately, or recording durable marks (which a node
        // does from the moment it registers, before its first heartbeat is heard).
        std::set<std::string> alive;
        for (const auto& p : log->peers())
          if (p.age_ms < 10000) alive.insert(p.node_id);
        const int64_t now = SystemClock::Default()->WallMillis();
        for (const auto& m : log->members())
          if (now - m.wall_ms < 3 * lo.durable_mark_ms) alive.insert(m.node_id);
        const size_t up = alive.size();
        std::vector<std::vector<UsageRow>> parts;
        for (const std::string& a : log->AskAll("usage", UsageQueryToJson(q).Dump(), 2000, up)) {
          auto j = ParseJson(a);
          if (!j.ok()) continue;
          if (auto rows = UsageRowsFromJson(*j); rows.ok()) parts.push_back(std::move(rows).value());
        }
        *asked = static_cast<int>(up);
        *answered = static_cast<int>(parts.size());
        return MergeUsageRows(parts);
      };
    }
    // Cluster mode: queries ask the holders of the shards they need (cluster/shard_router.h),
    // and this node answers for the shards it holds, several questions at once.
    std::unique_ptr<ClusterShardRouter::Cluster> router_cluster;
    std::unique_ptr<ClusterShardRouter> router;
    std::unique_ptr<PeriodicTask> indexing_task;  // declared after the router it reads
    if (log != nullptr) {
      Engine* e = engine->get();
      const ClusterShardRouter::LocalAnswer local = [e](const ShardQuery& q) { return e->AnswerShardQuery(q); };
      router_cluster = ClusterOfLog(log);
      ClusterShardRouter::Options ro;
      ro.metrics = &metrics;
      ro.ask_holders = o.query_routing == "shards";
      ro.partial_indexing = o.partial_indexing;
      router = std::make_unique<ClusterShardRouter>(router_cluster.get(), local, ro);
      log->Answer(
          "search." + lo.node_id,
          [log, local](std::string_view q) { return ClusterShardRouter::Answer(q, log->shard_map().epoch, local); },
          static_cast<size_t>(cores));  // answers only compute
      e->SetShardRouter(router.get());
      // The map moves shards between nodes: each links the graphs of those it now holds
      // (without partial indexing, every shard, stored chunks from an earlier run included).
      indexing_task =
          std::make_unique<PeriodicTask>(std::chrono::milliseconds(1000), [e] { e->RefreshShardIndexing(); });
    }
    // Storage priced per GB-month: charged each minute into the ledger.
    std::unique_ptr<StorageMeter> storage_meter;
    if (ledger != nullptr && ao.prices.storage_per_gb_month() > 0) {
      const Engine* e = engine->get();
      StorageMeter::Source source = [e, log, is_up, &lo]() -> std::vector<Engine::StoredBytes> {
        // In a cluster every node holds every collection: the node with the lowest id among
        // those up charges, so a tenant pays once.
        if (log != nullptr) {
          for (const auto& p : log->peers()) {
            if (is_up(p) && p.node_id < lo.node_id) return {};
          }
        }
        return e->StorageByCollection();
      };
      storage_meter = std::make_unique<StorageMeter>(StorageMeter::Options{}, SystemClock::Default(), std::move(source),
                                                     ledger.get(), ao.prices.storage_per_gb_month());
    }
    // Rate limits shared through Redis; while it is unreachable each node enforces its
    // share, by the nodes it has heard from lately.
    std::unique_ptr<SharedRateLimiter> shared_limits;
    if (redis) {
      SharedRateLimitOptions so;
      so.redis = *redis;
      const auto nodes = [log, is_up]() -> size_t {
        if (log == nullptr) return 1;
        size_t up = 0;
        for (const auto& p : log->peers()) up += is_up(p) ? 1 : 0;
        return std::max<size_t>(up, 1);
      };
      shared_limits = std::make_unique<SharedRateLimiter>(so, SystemClock::Default(), nodes, &metrics);
      ao.rate_limits = shared_limits.get();
      const SharedRateLimiter* limiter = shared_limits.get();
      ao.degraded_dependency = [limiter]() -> std::string { return limiter->degraded() ? "redis" : ""; };
      spdlog::info("rate limits shared through redis {}:{}", so.redis.host, so.redis.port);
    }
    Api api(ApiBackends::Of(engine->get(), embedders.get(), tokenizer.get()), &metrics, ao);
    HttpServerOptions ho;
    ho.host = o.host;
    ho.port = o.port;
    ho.io_threads = o.io_threads;
    ho.max_body_bytes = o.max_body_bytes;
    ho.max_body_bytes_in_flight = static_cast<size_t>(o.max_body_bytes_in_flight);
    ho.idle_timeout_s = static_cast<int>(o.idle_timeout_s);
    ho.header_timeout_ms = static_cast<int>(o.header_timeout_ms);
    ho.max_connections_per_client = static_cast<size_t>(o.max_connections_per_client);
    if (o.io_coalesce_us > 0) {
      const auto most = std::chrono::microseconds(o.io_coalesce_us);
      ho.coalesce = [&api, most] { return api.CoalesceInterval(most); };
    }
    HttpServer server(ho,
                      [&api](HttpRequest req, Responder respond) { api.Handle(std::move(req), std::move(respond)); });
    Status st = server.Start();
    if (!st.ok()) {
      spdlog::critical("cannot start: {}", st.ToString());
      return 1;
    }
    const int accept_collector = metrics.AddCollector([&server](std::string* out) {
      *out +=
          "# HELP contextd_http_accept_errors_total Connections the server failed to accept (out of descriptors, "
          "...).\n";
      *out += "# TYPE contextd_http_accept_errors_total counter\n";
      *out += "contextd_http_accept_errors_total " + std::to_string(server.accept_errors()) + "\n";
      *out +=
          "# HELP contextd_http_connections_refused_total Connections refused by the per-client cap or with every "
          "connection busy at the cap.\n# TYPE contextd_http_connections_refused_total counter\n";
      *out += "contextd_http_connections_refused_total " + std::to_string(server.connections_refused()) + "\n";
      *out +=
          "# HELP contextd_http_idle_evictions_total Idle keep-alive connections closed to admit new ones at the "
          "cap.\n# TYPE contextd_http_idle_evictions_total counter\n";
      *out += "contextd_http_idle_evictions_total " + std::to_string(server.idle_evictions()) + "\n";
      *out +=
          "# HELP contextd_http_coalesced_waits_total Times an I/O thread, the node shedding load, waited before "
          "looking for more work (see --io-coalesce-us).\n# TYPE contextd_http_coalesced_waits_total counter\n";
      *out += "contextd_http_coalesced_waits_total " + std::to_string(server.coalesced_waits()) + "\n";
      *out +=
          "# HELP contextd_http_body_bytes_in_flight Request bodies admitted and not yet answered (see "
          "max_body_bytes_in_flight).\n# TYPE contextd_http_body_bytes_in_flight gauge\n";
      *out += "contextd_http_body_bytes_in_flight " + std::to_string(server.body_bytes_in_flight()) + "\n";
      *out +=
          "# HELP contextd_http_body_waits_total Requests whose body waited for room under "
          "max_body_bytes_in_flight.\n# TYPE contextd_http_body_waits_total counter\n";
      *out += "contextd_http_body_waits_total " + std::to_string(server.body_waits()) + "\n";
      *out +=
          "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
          "# TYPE process_resident_memory_bytes gauge\n";
      *out += "process_resident_memory_bytes " + std::to_string(ResidentBytes()) + "\n";
      const AllocatorStats alloc = ReadAllocatorStats();
      const std::string label = std::string("{allocator=\"") + alloc.name + "\"} ";
      *out +=
          "# HELP contextd_allocator_allocated_bytes Bytes in live heap blocks.\n"
          "# TYPE contextd_allocator_allocated_bytes gauge\n"
          "contextd_allocator_allocated_bytes" +
          label + std::to_string(alloc.allocated) +
          "\n# HELP contextd_allocator_resident_bytes Bytes the allocator holds for the heap: live blocks, free "
          "ones not yet handed back, metadata.\n# TYPE contextd_allocator_resident_bytes gauge\n"
          "contextd_allocator_resident_bytes" +
          label + std::to_string(alloc.resident) + "\n";
    });
    // The nodes heard from, by state (as /v1/cluster names them).
    const int cluster_collector = log == nullptr ? -1 : metrics.AddCollector([log, is_up](std::string* out) {
      int64_t up = 0, suspect = 0, down = 0;
      for (const auto& p : log->peers()) (is_up(p) ? up : p.age_ms < 10000 ? suspect : down) += 1;
      *out += "# HELP contextd_cluster_nodes Nodes heard from, by state.\n# TYPE contextd_cluster_nodes gauge\n";
      *out += "contextd_cluster_nodes{state=\"up\"} " + std::to_string(up) + "\n";
      *out += "contextd_cluster_nodes{state=\"suspect\"} " + std::to_string(suspect) + "\n";
      *out += "contextd_cluster_nodes{state=\"down\"} " + std::to_string(down) + "\n";
    });
    // Tests and scripts read the port from this line (it matters with --port 0).
    std::printf("contextd listening on http://%s:%d\n", o.host.c_str(), server.port());
    if (log != nullptr) {
      // Where members fetch this node's checkpoint (a new node's seed).
      std::string host = o.host;
      if (host == "0.0.0.0" || host == "::") {
        char name[256] = {0};
        gethostname(name, sizeof(name) - 1);
        host = name;
      }
      log->set_advertise_url("http://" + host + ":" + std::to_string(server.port()));
    }
    std::fflush(stdout);
    spdlog::info("serving on {}:{} with data in {}", o.host, server.port(), o.data_dir);
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal {}: draining for up to {} ms", sig, o.shutdown_grace_ms);
    (*engine)->AbandonIndexingAt(api.BeginDrain(std::chrono::milliseconds(o.shutdown_grace_ms)));
    const size_t cut_off = server.Shutdown(std::chrono::milliseconds(o.shutdown_grace_ms));
    if (cut_off > 0) spdlog::warn("{} requests were still running after the grace period; cut off", cut_off);
    if (log != nullptr) log->StopAnswering();  // its handlers read the ledger, gone after this block
    indexing_task.reset();                     // it reads the router
    (*engine)->SetShardRouter(nullptr);        // the router goes with this block too
    metrics.RemoveCollector(accept_collector);
    if (cluster_collector >= 0) metrics.RemoveCollector(cluster_collector);
    // The grace is a hard bound: what is left (a write waiting on a provider, a shard split,
    // saving graphs) gets one more second. Writes past the cut-off commit nothing, acknowledged
    // ones are in the synced WAL, and graphs not saved are rebuilt at the next start.
    watchdog = std::thread([&finished] {
      for (int i = 0; i < 100 && !finished.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (finished.load()) return;
      spdlog::warn("work still running 1 s after the grace period; exiting now (the next start rebuilds graphs)");
      spdlog::shutdown();
      std::_Exit(0);
    });
  }  // the API's pools drain here: no write is in flight after this point
  if (Status st = (*engine)->SaveGraphs(); !st.ok()) {
    spdlog::warn("could not save graphs ({}); the next start rebuilds them", st.ToString());
  }
  engine->reset();  // waits for shard splits: inside the watchdog's second too
  finished = true;
  if (watchdog.joinable()) watchdog.join();
  return 0;
}

}  // namespace contextd

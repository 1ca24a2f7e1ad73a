// The contextd subcommands. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"

#include "net/http.h"

#include "embed/embedder_registry.h"

namespace contextd {

// The range of each numeric serve setting, the same from a flag or the config file: a
// mistyped 1e9 threads is refused at start rather than tried.
struct SettingRange {
  int64_t lo, hi;
};
inline constexpr SettingRange kPortRange{0, 65535};
inline constexpr SettingRange kCoreThreadsRange{0, 256};  // I/O and search: 0 = one per core
inline constexpr SettingRange kWriteThreadsRange{1, 1024};
inline constexpr SettingRange kEmbedThreadsRange{1, 4096};
inline constexpr SettingRange kMaxBodyBytesRange{1024, int64_t{1} << 32};
inline constexpr SettingRange kBodyBytesInFlightRange{0, int64_t{1} << 40};
inline constexpr SettingRange kCpuQuantumUsRange{0, 1000000};
inline constexpr SettingRange kIoCoalesceUsRange{0, 100000};
inline constexpr SettingRange kShutdownGraceMsRange{0, 600000};
inline constexpr SettingRange kMaxQueryTokensRange{1, 1000000};
inline constexpr SettingRange kIdleTimeoutSRange{1, 3600};
inline constexpr SettingRange kHeaderTimeoutMsRange{100, 600000};
inline constexpr SettingRange kMaxQueueRange{1, 1000000};
inline constexpr SettingRange kMaxQueueDelayMsRange{0, 600000};
inline constexpr SettingRange kMemoryHighMbRange{0, 16 << 20};
inline constexpr SettingRange kConnectionsPerClientRange{1, 1000000};
inline constexpr SettingRange kMinFreeDiskMbRange{1, int64_t{1} << 30};
inline constexpr SettingRange kReplicasRange{1, 5};
inline constexpr SettingRange kLogKeepRange{0, int64_t{1} << 40};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data_dir = "./data";
  std::string models_dir = "./models";
  int io_threads = 0;      // 0 = one per core
  int search_threads = 0;  // 0 = one per core
  int write_threads = 16;
  int64_t max_queue = 1024;    // ApiOptions::max_queue: requests waiting per pool before shedding
  int64_t memory_high_mb = 0;  // ApiOptions::memory_high_bytes in MiB; 0 = off
  size_t max_body_bytes = 64 << 20;
  // HttpServerOptions::max_body_bytes_in_flight (0: 4 x max_body_bytes).
  int64_t max_body_bytes_in_flight = 0;
  int embed_threads = 64;     // /v1/embeddings and /embed mostly wait on batches
  int cpu_quantum_us = 1000;  // ApiOptions::cpu_quantum; 0 = off
  int io_coalesce_us = 5000;  // Api::CoalesceInterval's most; 0 = off
  // On SIGTERM/SIGINT, how long requests already received may take to finish (HttpServer::
  // Shutdown). Kubernetes gives a pod 30 s between SIGTERM and SIGKILL.
  int64_t shutdown_grace_ms = 10000;
  int64_t max_query_tokens = 2048;    // ApiOptions::max_query_tokens
  int64_t idle_timeout_s = 60;        // HttpServerOptions: keep-alive and request-read timeout
  int64_t header_timeout_ms = 10000;  // HttpServerOptions: a begun request's headers
  int64_t max_connections_per_client = 1024;
  int64_t max_queue_delay_ms = 0;  // ApiOptions::max_queue_delay
  EmbedServiceOptions embed;       // providers, batching, cache tiers
  // Cluster mode: the NATS servers (comma-separated nats:// URLs; empty: a single node),
  // this node's id, and the update log's replicas.
  std::string cluster;
  std::string node_id;
  int replicas = 3;
  // Messages of the update log kept behind the lowest durable mark of the nodes (older
  // ones are purged): a node that restarts within them catches up by replay.
  int64_t log_keep = 10000;
  // How this node compresses what it writes to the update log: "zstd" or "none"
  // (cluster/record_compression.h).
  std::string log_compression = "zstd";
  // Copies of each topic shard among the data nodes (the shard map's replicas).
  int shard_replicas = 2;
  // Who answers for a query's shards: "local" (this node, whenever it indexes them) or
  // "shards" (the shard map's holders, asked over NATS, even for shards this node indexes).
  std::string query_routing = "local";
  // Partial indexing: a data node links the graphs of the shards the map gives it and only
  // stores the others' vectors, asking their holders for their parts of a query.
  bool partial_indexing = true;
  // redis://HOST:PORT shared by the nodes: rate limits are cluster-wide through it (empty:
  // each node keeps its own).
  std::string redis;
  // Prices for the usage ledger (config "prices"; see usage/usage_ledger.h); null: none.
  Json prices;
  // POST /mcp's settings (config "mcp": {"store", "default_collection", "allowed_origins"}).
  bool mcp_store = false;
  std::string mcp_default_collection;
  std::vector<std::string> mcp_allowed_origins;
  // Governance: API keys required (the first admin key from CONTEXTD_ADMIN_KEY or the
  // config file's "auth":{"admin_key"}); /metrics needs a key too when metrics_need_key.
  bool auth = false;
  std::string admin_key;
  bool metrics_need_key = false;
  int64_t min_free_disk_mb = 128;  // writes stop below this much free disk (507 disk_full)
};

// Reads a JSON config file ({"host","port","data","models","io_threads","search_threads",
// "write_threads","embed_threads","cpu_quantum_us","io_coalesce_us","max_body_bytes","max_body_bytes_in_flight","shutdown_grace_ms","max_query_tokens","idle_timeout_s","header_timeout_ms",
// "max_queue","memory_high_mb","max_connections_per_client","embedding":{..}},
// the last as EmbedServiceOptions::FromJson reads it) into `options`; returns an error message or "".
std::string LoadServeConfig(const std::string& path, ServeOptions* options);
int RunServe(const ServeOptions& options);

struct IngestOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string collection;
  std::string file;
  int batch = 128;
  int parallel = 4;
  std::string api_key;  // --api-key, else CONTEXTD_API_KEY: for a server run with --auth
};
int RunIngest(const IngestOptions& options);

// Makes every log line one JSON object: {"time","level","logger","msg"}, the message
// escaped (log_format.cc).
void UseJsonLogs();

// contextd loadtest: runs a scenario file (loadtest/loadtest.h), prints the report as JSON,
// optionally writes it to `out` and draws the chart to `chart` (PNG).
struct LoadTestOptions {
  std::string url;  // overrides the scenario's
  std::string scenario;
  std::string out;
  std::string chart;
};
int RunLoadTestCommand(const LoadTestOptions& options);

struct QueryOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string collection;
  std::string text;
  int k = 10;
  std::string mode;
  std::string filter;  // JSON
  std::string api_key;
};
int RunQuery(const QueryOptions& options);

// contextd backup: a snapshot of every collection, downloaded into `out` with a
// manifest.json; contextd restore: each one restored from `dir` (collections that exist
// are reported and left alone).
struct BackupOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string out;
  std::string api_key;
};
int RunBackup(const BackupOptions& options);
struct RestoreOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string dir;
  std::string api_key;
};
int RunRestore(const RestoreOptions& options);

struct EmbedCliOptions {
  std::string model;  // a model directory
  std::string quantize = "none";
  bool query = false;  // use the model's query prefix (e5)
  std::vector<std::string> texts;
};
struct EvalOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string collection;
  std::string queries;  // BEIR queries.jsonl
  std::string qrels;    // BEIR qrels TSV
  std::string mode = "hybrid";
  size_t k = 10;
  std::string params;  // extra query fields as JSON ({"fusion":"weighted","alpha":0.5})
  std::string api_key;
};
// The Authorization header for `api_key`, or for CONTEXTD_API_KEY when it is empty; none
// when neither is set.
HttpHeaders ClientAuthHeaders(const std::string& api_key);
// Prints {"ndcg@k","recall@100","mrr@k","latency_ms":{..}} as one JSON line.
int RunEval(const EvalOptions& options);

struct PullCliOptions {
  std::string repo;  // ORG/NAME
  std::string models_dir = "./models";
  std::string endpoint;  // default: $HF_ENDPOINT, else https://huggingface.co
  std::string revision = "main";
};
int RunModelPull(const PullCliOptions& options);

// Prints one JSON line per text: {"text":..,"ids":[..],"embedding":[..]}.
int RunEmbed(const EmbedCliOptions& options);

}  // namespace contextd

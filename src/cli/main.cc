// contextd: the server and its command-line clients.
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cluster/record_compression.h"

// Read by jemalloc when it starts (the binary links it; see CMakeLists.txt; MALLOC_CONF
// overrides it). Dirty pages go back to the kernel after five seconds unused, at once past
// their muzzy stage. What a large request frees is handed back sooner by the server's
// FreeMemoryReleaser (a purge of every arena within 2 s of work that moved the heap), so
// the decay is for pages no look catches; with a 1 s decay the background thread purged
// pages a few at a time during writes (each madvise a TLB shootdown across both cores on
// this VM) and the refaults followed: a cluster replica applied SciFact in 0.34-0.42 CPU s
// at 5 s against 0.52-0.73 at 1 s in one sitting (less clearly in another), and idle RSS
// after bench/memory.sh was the same (BENCHMARKS, issue 19, session 29).
// Thread caches hold blocks up to 1 KiB (default 32 KiB): ~80 mostly idle threads
// each caching large blocks kept 15 MB more after large requests (bench/memory.sh), while
// the small blocks a request hands between threads, the point of the caches, still fit.
// Slabs of the small size classes are 16 KiB (4 pages) instead of mostly one: jemalloc keeps
// ~150 bytes of metadata per slab for good (never returned, only reused), so the peak
// number of slabs set a floor under idle RSS; a large write's ~2 KB chunk strings, two to
// a page, left ~14 MB of it after bench/memory.sh, ~6 MB with 16 KiB slabs. SciFact
// ingest, upserts and queries measured the same either way (BENCHMARKS, issue 23).
// Thread caches keep jemalloc's default of up to 200 blocks per small size class: 50 left
// idle RSS 2-3 MB lower after bench/memory.sh but cost 5-9% of hybrid queries a second
// (BENCHMARKS, issue 23, session 26).
extern "C" {
const char* malloc_conf = "dirty_decay_ms:5000,muzzy_decay_ms:0,tcache_max:1024,slab_sizes:1-4096:4";
}

int main(int argc, char** argv) {
  using namespace contextd;
  CLI::App app{"contextd: a context engine for AI applications"};
  app.require_subcommand(1);

  ServeOptions serve;
  std::string config;
  auto* s = app.add_subcommand("serve", "Run the HTTP server");
  // A flag given twice takes its last value, so wrappers can append overrides.
  s->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  s->add_option("--config", config, "JSON config file; flags given here override it");
  // A number checked against the same range as its config-file key (cli/commands.h).
  const auto ranged = [s](const char* name, auto& field, SettingRange range, const char* help) {
    return s->add_option(name, field, help)->check(CLI::Range(range.lo, range.hi));
  };
  auto* host = s->add_option("--host", serve.host, "Address to listen on");
  auto* port = ranged("--port", serve.port, kPortRange, "Port (0 picks a free one)");
  auto* data = s->add_option("--data", serve.data_dir, "Data directory");
  auto* models = s->add_option("--models", serve.models_dir, "Models directory");
  auto* io = ranged("--io-threads", serve.io_threads, kCoreThreadsRange, "I/O threads (0 = one per core)");
  auto* search =
      ranged("--search-threads", serve.search_threads, kCoreThreadsRange, "Threads for queries (0 = one per core)");
  auto* writes = ranged("--write-threads", serve.write_threads, kWriteThreadsRange, "Threads for durable writes");
  auto* body = ranged("--max-body-bytes", serve.max_body_bytes, kMaxBodyBytesRange, "Largest request body accepted");
  auto* in_flight = ranged("--max-body-bytes-in-flight", serve.max_body_bytes_in_flight, kBodyBytesInFlightRange,
                           "Request bodies read and not yet answered, in bytes; more wait (0 = 4 x max-body-bytes)");
  auto* quantum = ranged("--cpu-quantum-us", serve.cpu_quantum_us, kCpuQuantumUsRange,
                         "Busy time after which a search worker lets the I/O threads run (0 = off)");
  auto* coalesce =
      ranged("--io-coalesce-us", serve.io_coalesce_us, kIoCoalesceUsRange,
             "While the node sheds load, I/O threads wake at most once per request service time, up to this (0 = off)");
  auto* grace = ranged("--shutdown-grace-ms", serve.shutdown_grace_ms, kShutdownGraceMsRange,
                       "On SIGTERM, how long requests already received may take to finish");
  auto* idle = ranged("--idle-timeout-s", serve.idle_timeout_s, kIdleTimeoutSRange,
                      "Closes a connection that sends no complete request for this long");
  auto* header_timeout = ranged("--header-timeout-ms", serve.header_timeout_ms, kHeaderTimeoutMsRange,
                                "Once a request has begun, how long its headers may take to arrive");
  auto* max_queue = ranged("--max-queue", serve.max_queue, kMaxQueueRange,
                           "Requests that may wait for a worker pool before more are shed (503 overloaded)");
  auto* queue_delay = ranged("--max-queue-delay-ms", serve.max_queue_delay_ms, kMaxQueueDelayMsRange,
                             "Reads that waited longer for a worker are shed when taken (503 overloaded; 0 = off)");
  auto* memory_high =
      ranged("--memory-high-mb", serve.memory_high_mb, kMemoryHighMbRange,
             "Resident memory at which writes that add data are refused until under 90% of it (0 = off)");
  auto* per_client = ranged("--max-connections-per-client", serve.max_connections_per_client,
                            kConnectionsPerClientRange, "Connections one client address may hold (more get 429)");
  auto* query_tokens = ranged("--max-query-tokens", serve.max_query_tokens, kMaxQueryTokensRange,
                              "Longest query text, in words (longer ones get 400 query_too_long)");
  auto* cluster = s->add_option("--cluster", serve.cluster,
                                "Cluster mode: the NATS servers, nats://H1:4222,nats://H2:4222,... (JetStream)");
  auto* node_id = s->add_option("--node-id", serve.node_id, "Cluster mode: this node's id (default: the host name)");
  auto* redis = s->add_option("--redis", serve.redis,
                              "redis://HOST:PORT shared by the nodes: rate limits hold across all of them");
  auto* replicas =
      ranged("--replicas", serve.replicas, kReplicasRange, "Cluster mode: replicas of the update log's stream");
  auto* shard_replicas = ranged("--shard-replicas", serve.shard_replicas, kReplicasRange,
                                "Cluster mode: copies of each topic shard among the data nodes");
  auto* query_routing =
      s->add_option("--query-routing", serve.query_routing,
                    "Cluster mode: local (answer for the shards this node indexes, ask for the others) or shards "
                    "(ask the shard map's holders for every shard)")
          ->check(CLI::IsMember({"local", "shards"}));
  auto* partial_indexing = s->add_option("--partial-indexing", serve.partial_indexing,
                                         "Cluster mode: link only the graphs of the shards this node holds (true, the "
                                         "default) or of every shard (false)");
  auto* log_keep = ranged("--log-keep", serve.log_keep, kLogKeepRange,
                          "Cluster mode: update-log messages kept behind what every node has made durable");
  auto* log_compression =
      s->add_option("--log-compression", serve.log_compression,
                    "Cluster mode: zstd (the default) or none, for the records this node writes to the update log")
          ->check([](const std::string& v) {
            auto how = ParseLogCompression(v);
            return how.ok() ? std::string() : how.status().message();
          });
  auto* min_free = ranged("--min-free-disk-mb", serve.min_free_disk_mb, kMinFreeDiskMbRange,
                          "Free disk space writes leave in reserve (below it they get 507 disk_full)");
  auto* auth = s->add_flag("--auth", serve.auth,
                           "Require API keys (the admin key comes from CONTEXTD_ADMIN_KEY or the config file)");

  IngestOptions ingest;
  auto* in = app.add_subcommand("ingest", "Upload a JSONL file (BEIR corpus layout) into a collection");
  in->add_option("--url", ingest.url, "Server URL");
  in->add_option("--collection", ingest.collection, "Collection name")->required();
  in->add_option("--batch", ingest.batch, "Documents per request");
  in->add_option("--parallel", ingest.parallel, "Concurrent requests");
  in->add_option("--api-key", ingest.api_key, "API key (default: CONTEXTD_API_KEY), for a server run with --auth");
  in->add_option("file", ingest.file, "JSONL file")->required();

  LoadTestOptions loadtest;
  auto* lt = app.add_subcommand("loadtest", "Open-loop load test from a scenario file; prints a JSON report");
  lt->add_option("--url", loadtest.url, "Server URL (overrides the scenario's)");
  lt->add_option("--scenario", loadtest.scenario, "Scenario JSON file")->required();
  lt->add_option("--out", loadtest.out, "Also write the report to this file");
  lt->add_option("--chart", loadtest.chart, "Draw rate, latency percentiles and errors over time to this PNG");

  QueryOptions query;
  auto* q = app.add_subcommand("query", "Query a collection");
  q->add_option("--url", query.url, "Server URL");
  q->add_option("--collection", query.collection, "Collection name")->required();
  q->add_option("--k", query.k, "Number of results");
  q->add_option("--api-key", query.api_key, "API key (default: CONTEXTD_API_KEY)");
  q->add_option("--mode", query.mode, "vector, keyword or hybrid");
  q->add_option("--filter", query.filter, "Metadata filter as JSON");
  q->add_option("text", query.text, "Query text")->required();

  BackupOptions backup;
  auto* bk = app.add_subcommand("backup", "Snapshot every collection of a server into a directory");
  bk->add_option("--url", backup.url, "Server URL");
  bk->add_option("--out", backup.out, "Directory for the snapshot files and manifest.json")->required();
  bk->add_option("--api-key", backup.api_key, "API key (default: CONTEXTD_API_KEY)");
  RestoreOptions restore;
  auto* rs = app.add_subcommand("restore", "Restore every collection of a backup directory into a server");
  rs->add_option("--url", restore.url, "Server URL");
  rs->add_option("--dir", restore.dir, "A directory written by contextd backup")->required();
  rs->add_option("--api-key", restore.api_key, "API key (default: CONTEXTD_API_KEY)");

  EmbedCliOptions embed;
  auto* e = app.add_subcommand("embed", "Embed texts with a native model directory, one JSON line per text");
  e->add_option("--model", embed.model, "Hugging Face model directory")->required();
  e->add_option("--quantize", embed.quantize, "none or int8")->check(CLI::IsMember({"none", "int8"}));
  e->add_flag("--query", embed.query, "Embed as queries (e5's \"query: \" prefix)");
  e->add_option("texts", embed.texts, "Texts")->required();

  EvalOptions eval;
  auto* ev = app.add_subcommand("eval", "nDCG@k, recall@100, MRR@k and latency of a collection on BEIR judgements");
  ev->add_option("--url", eval.url, "Server URL");
  ev->add_option("--api-key", eval.api_key, "API key (default: CONTEXTD_API_KEY)");
  ev->add_option("--collection", eval.collection, "Collection name")->required();
  ev->add_option("--queries", eval.queries, "BEIR queries.jsonl")->required();
  ev->add_option("--qrels", eval.qrels, "BEIR qrels TSV")->required();
  ev->add_option("--mode", eval.mode, "vector, keyword or hybrid");
  ev->add_option("--k", eval.k, "Cut-off for nDCG and MRR");
  ev->add_option("--params", eval.params, "Extra query fields as a JSON object");

  PullCliOptions pull;
  auto* model = app.add_subcommand("model", "Manage native models");
  model->require_subcommand(1);
  auto* mp = model->add_subcommand("pull", "Download ORG/NAME from the Hugging Face hub into the models directory");
  mp->add_option("repo", pull.repo, "ORG/NAME")->required();
  mp->add_option("--models", pull.models_dir, "Models directory");
  mp->add_option("--endpoint", pull.endpoint, "Hub URL (default $HF_ENDPOINT or https://huggingface.co)");
  mp->add_option("--revision", pull.revision, "Branch, tag or commit");

  std::string log_format = "text";
  s->add_option("--log-format", log_format, "text, or json: one JSON object per log line")
      ->check(CLI::IsMember({"text", "json"}));
  // Every serve setting may come from the environment too: --max-queue-delay-ms is
  // CONTEXTD_MAX_QUEUE_DELAY_MS. A flag beats the environment, which beats the config file.
  for (CLI::Option* opt : s->get_options()) {
    std::string name = opt->get_name(false, true);
    if (name.rfind("--", 0) != 0 || name == "--help") continue;
    std::string env = "CONTEXTD_";
    for (char c : name.substr(2))
      env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    opt->envname(env);
  }

  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr: stdout carries results (and the "listening on" line scripts read).
  spdlog::set_default_logger(spdlog::stderr_color_mt("contextd"));
  if (log_format == "json") UseJsonLogs();

  if (s->parsed()) {
    if (!config.empty()) {
      // The config file is the base; explicit flags win. Re-read flags after loading.
      ServeOptions from_file;
      std::string err = LoadServeConfig(config, &from_file);
      if (!err.empty()) {
        fprintf(stderr, "contextd: %s\n", err.c_str());
        return 2;
      }
      if (!host->count()) serve.host = from_file.host;
      if (!port->count()) serve.port = from_file.port;
      if (!data->count()) serve.data_dir = from_file.data_dir;
      if (!models->count()) serve.models_dir = from_file.models_dir;
      if (!io->count()) serve.io_threads = from_file.io_threads;
      if (!search->count()) serve.search_threads = from_file.search_threads;
      if (!writes->count()) serve.write_threads = from_file.write_threads;
      if (!body->count()) serve.max_body_bytes = from_file.max_body_bytes;
      if (!in_flight->count()) serve.max_body_bytes_in_flight = from_file.max_body_bytes_in_flight;
      if (!quantum->count()) serve.cpu_quantum_us = from_file.cpu_quantum_us;
      if (!coalesce->count()) serve.io_coalesce_us = from_file.io_coalesce_us;
      if (!grace->count()) serve.shutdown_grace_ms = from_file.shutdown_grace_ms;
      if (!query_tokens->count()) serve.max_query_tokens = from_file.max_query_tokens;
      if (!idle->count()) serve.idle_timeout_s = from_file.idle_timeout_s;
      if (!header_timeout->count()) serve.header_timeout_ms = from_file.header_timeout_ms;
      if (!max_queue->count()) serve.max_queue = from_file.max_queue;
      if (!queue_delay->count()) serve.max_queue_delay_ms = from_file.max_queue_delay_ms;
      if (!memory_high->count()) serve.memory_high_mb = from_file.memory_high_mb;
      if (!per_client->count()) serve.max_connections_per_client = from_file.max_connections_per_client;
      if (!cluster->count()) serve.cluster = from_file.cluster;
      if (!node_id->count()) serve.node_id = from_file.node_id;
      if (!redis->count()) serve.redis = from_file.redis;
      if (!replicas->count()) serve.replicas = from_file.replicas;
      if (!log_keep->count()) serve.log_keep = from_file.log_keep;
      if (!log_compression->count()) serve.log_compression = from_file.log_compression;
      if (!shard_replicas->count()) serve.shard_replicas = from_file.shard_replicas;
      if (!query_routing->count()) serve.query_routing = from_file.query_routing;
      if (!partial_indexing->count()) serve.partial_indexing = from_file.partial_indexing;
      if (!auth->count()) serve.auth = from_file.auth;
      if (!min_free->count()) serve.min_free_disk_mb = from_file.min_free_disk_mb;
      serve.admin_key = from_file.admin_key;
      serve.metrics_need_key = from_file.metrics_need_key;
      serve.prices = from_file.prices;
      serve.mcp_store = from_file.mcp_store;
      serve.mcp_default_collection = from_file.mcp_default_collection;
      serve.mcp_allowed_origins = from_file.mcp_allowed_origins;
      serve.embed_threads = from_file.embed_threads;
      serve.embed = std::move(from_file.embed);
    }
    if (const char* key = std::getenv("CONTEXTD_ADMIN_KEY"); key != nullptr && *key != '\0') serve.admin_key = key;
    if (serve.auth && serve.admin_key.size() < 16) {
      fprintf(stderr,
              "contextd: --auth needs an admin key of at least 16 characters in CONTEXTD_ADMIN_KEY (or the "
              "config file's \"auth\":{\"admin_key\"})\n");
      return 2;
    }
    return RunServe(serve);
  }
  if (in->parsed()) return RunIngest(ingest);
  if (lt->parsed()) return RunLoadTestCommand(loadtest);
  if (q->parsed()) return RunQuery(query);
  if (bk->parsed()) return RunBackup(backup);
  if (rs->parsed()) return RunRestore(restore);
  if (e->parsed()) return RunEmbed(embed);
  if (mp->parsed()) return RunModelPull(pull);
  if (ev->parsed()) return RunEval(eval);
  return 2;
}

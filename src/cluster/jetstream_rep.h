// JetStreamUpdateLog's private parts (its Rep and the nats.c helpers), shared by this
// folder's .cc files only: it includes nats.c, which nothing outside src/cluster may.
#pragma once

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "cluster/jetstream_log.h"
#include "cluster/own_records.h"
#include "cluster/record_compression.h"
#include "cluster/record_parts.h"
#include "cluster/shard_map.h"
#include "common/mutex.h"
#include "common/periodic_task.h"
#include "common/thread_pool.h"

namespace contextd {

// Helpers of this folder's .cc files (this header is included nowhere else).
inline std::string NatsError(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  if (jerr != 0) out += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  return out;
}

inline std::string RandomId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()));
  return buf;
}

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A member's entry, "ROLE DURABLE WALL_MS URL" (URL "-" when unknown), into *m (all but
// its node id). False when malformed.
inline bool ParseMember(const char* value, JetStreamUpdateLog::Member* m) {
  char role[64] = {0}, url[512] = {0};
  unsigned long long durable = 0;
  long long wall = 0;
  if (sscanf(value, "%63s %llu %lld %511s", role, &durable, &wall, url) < 3) return false;
  m->role = role;
  m->durable = durable;
  m->wall_ms = wall;
  if (std::string_view(url) != "-") m->url = url;
  return true;
}

// Every member's entry, under its node id.
inline std::vector<JetStreamUpdateLog::Member> ReadMembers(kvStore* bucket) {
  std::vector<JetStreamUpdateLog::Member> out;
  if (bucket == nullptr) return out;
  kvKeysList keys{};
  if (kvStore_Keys(&keys, bucket, nullptr) != NATS_OK) return out;
  for (int i = 0; i < keys.Count; ++i) {
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, bucket, keys.Keys[i]) != NATS_OK || e == nullptr) continue;
    JetStreamUpdateLog::Member m;
    m.node_id = keys.Keys[i];
    if (ParseMember(kvEntry_ValueString(e), &m)) out.push_back(std::move(m));
    kvEntry_Destroy(e);
  }
  kvKeysList_Destroy(&keys);
  return out;
}

// Results of recent applies, for the writers waiting on them; older ones are forgotten
// (a writer whose result is gone was applied long ago, and gets an empty result).
inline constexpr size_t kKeptResults = 4096;

struct JetStreamUpdateLog::Rep {
  JetStreamLogOptions options;
  MutationApplier* applier = nullptr;
  natsOptions* nats_options = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;

  mutable Mutex mu;
  std::condition_variable_any applied_cv;
  uint64_t applied GUARDED_BY(mu) = 0;  // the last sequence delivered and applied here
  // Parts of large records passed here whose index has not been applied: stream sequence
  // -> the stream time (ns) after which its writer has given up. The durable mark stays
  // below them, so the purge keeps them until this node has their index.
  std::map<uint64_t, int64_t> pending_parts GUARDED_BY(mu);
  std::map<uint64_t, std::pair<Status, ApplyResult>> results GUARDED_BY(mu);
  // Upserts this node published, applied as made when they come back (own_records.h).
  OwnRecords own;
  bool stopping GUARDED_BY(mu) = false;
  int delivering GUARDED_BY(mu) = 0;
  // Start()'s thread: makes sure the stream exists and subscribes, retrying until the
  // cluster answers (a node may start before NATS does). Until it has, writes wait and
  // then fail with log_unavailable, and connected() is false (/readyz 503).
  std::thread follower;
  std::atomic<bool> following{false};
  // Heartbeats: sent by `heartbeat` every options.heartbeat_ms, heard on heartbeat_sub.
  std::thread heartbeat;
  natsSubscription* heartbeat_sub = nullptr;
  struct Heard {
    std::string role;
    uint64_t applied = 0;
    int64_t at_ms = 0;  // NowMs() when it arrived
  };
  std::map<std::string, Heard> heard GUARDED_BY(mu);  // by node id
  // Bounding the log: the members bucket (set up before following), the durable marks
  // recorded there every durable_mark_ms, and the reason this node stopped applying when
  // it found the log purged past it.
  kvStore* members = nullptr;
  std::unique_ptr<PeriodicTask> housekeeping;
  std::unique_ptr<PeriodicTask> shard_map_task;  // MaintainShardMap every heartbeat_ms
  std::string blocked GUARDED_BY(mu);
  std::string advertise_url GUARDED_BY(mu);
  // Answer(): one subscription per topic, its handler boxed so the callback can reach it.
  // With a pool, questions are answered on its threads, several at once (nats.c delivers
  // a subscription's messages one at a time).
  struct Answerer {
    std::function<std::string(std::string_view)> handler;
    natsSubscription* sub = nullptr;
    std::unique_ptr<ThreadPool> pool;
  };
  std::vector<std::unique_ptr<Answerer>> answerers;  // set up before serving, read at close
  void StopAnswering() {
    for (auto& a : answerers) {
      if (a->sub == nullptr) continue;
      // Drained: no new question is taken, and the wait covers a handler still running.
      if (natsSubscription_Drain(a->sub) == NATS_OK) natsSubscription_WaitForDrainCompletion(a->sub, 5000);
      natsSubscription_Destroy(a->sub);
      a->sub = nullptr;
      a->pool.reset();  // answers what it holds, then joins
    }
  }
  static void Reply(natsConnection* nc, Answerer* a, const std::string& reply, std::string_view question) {
    const std::string answer = a->handler(question);
    natsConnection_Publish(nc, reply.c_str(), answer.data(), static_cast<int>(answer.size()));
  }
  static void OnAsk(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* a = static_cast<Answerer*>(closure);
    const char* reply = natsMsg_GetReply(msg);
    if (reply == nullptr) {
      natsMsg_Destroy(msg);
      return;
    }
    if (a->pool == nullptr) {
      Reply(nc, a, reply, std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
      natsMsg_Destroy(msg);
      return;
    }
    a->pool->Submit([nc, a, msg] {
      Reply(nc, a, natsMsg_GetReply(msg),
            std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
      natsMsg_Destroy(msg);
    });
  }
  // The shard map (cluster/shard_map.h): read from its bucket at every heartbeat, and
  // written there by the housekeeping node when the data nodes up change.
  kvStore* shards = nullptr;
  ShardMap shard_map GUARDED_BY(mu);
  uint64_t shard_map_revision GUARDED_BY(mu) = 0;
  Gauge* shard_map_epoch_gauge = nullptr;
  // Metrics (null without a registry).
  Counter *commits_ok = nullptr, *commits_unavailable = nullptr, *commits_lagging = nullptr;
  Counter *publish_retries = nullptr, *purges = nullptr;
  Counter *record_bytes = nullptr, *published_bytes = nullptr;
  Gauge *applied_gauge = nullptr, *first_gauge = nullptr, *last_gauge = nullptr, *blocked_gauge = nullptr;

  void RegisterMetrics(MetricsRegistry* m) {
    if (m == nullptr) return;
    const std::string commits = "contextd_log_commits_total";
    const std::string commits_help = "Writes committed to the update log, by result";
    commits_ok = m->GetCounter(commits, commits_help, {{"result", "ok"}});
    commits_unavailable = m->GetCounter(commits, commits_help, {{"result", "log_unavailable"}});
    commits_lagging = m->GetCounter(commits, commits_help, {{"result", "apply_lagging"}});
    publish_retries = m->GetCounter("contextd_log_publish_retries_total",
                                    "Publishes to the update log retried (no quorum, an election, a reconnect)");
    purges = m->GetCounter("contextd_log_purges_total", "Purges of the update log behind every node's durable mark");
    const std::string bytes = "contextd_log_record_bytes_total";
    const std::string bytes_help =
        "Bytes of the mutations this node committed to the update log, encoded and as published";
    record_bytes = m->GetCounter(bytes, bytes_help, {{"form", "encoded"}});
    published_bytes = m->GetCounter(bytes, bytes_help, {{"form", "published"}});
    applied_gauge = m->GetGauge("contextd_log_applied_sequence", "The last update-log sequence applied here");
    first_gauge = m->GetGauge("contextd_log_first_sequence",
                              "The oldest message the update log keeps (as of the last durable mark)");
    last_gauge =
        m->GetGauge("contextd_log_last_sequence", "The update log's last sequence (as of the last durable mark)");
    blocked_gauge =
        m->GetGauge("contextd_log_blocked", "1 when the log was purged past this node (it applies nothing)");
    shard_map_epoch_gauge = m->GetGauge("contextd_shard_map_epoch", "The epoch of the shard map this node routes by");
  }
  static void Bump(Counter* c) {
    if (c != nullptr) c->Increment();
  }

  ~Rep() {
    housekeeping.reset();  // first: it uses the connection and the applier
    shard_map_task.reset();
    {
      MutexLock lock(&mu);
      stopping = true;
    }
    applied_cv.notify_all();
    if (follower.joinable()) follower.join();
    if (heartbeat.joinable()) heartbeat.join();
    StopAnswering();
    if (heartbeat_sub != nullptr) {
      natsSubscription_Unsubscribe(heartbeat_sub);
      natsSubscription_Destroy(heartbeat_sub);
    }
    if (sub != nullptr) {
      natsSubscription_Unsubscribe(sub);
      // The applier may go as soon as this returns: wait out an apply in progress.
      {
        MutexLock lock(&mu);
        applied_cv.wait(mu, [&]() NO_THREAD_SAFETY_ANALYSIS { return delivering == 0; });  // mu held
      }
      natsSubscription_Destroy(sub);
    }
    if (members != nullptr) kvStore_Destroy(members);
    if (shards != nullptr) kvStore_Destroy(shards);
    if (js != nullptr) jsCtx_Destroy(js);
    if (conn != nullptr) {
      natsConnection_Close(conn);
      natsConnection_Destroy(conn);
    }
    if (nats_options != nullptr) natsOptions_Destroy(nats_options);
  }

  bool Stopping() {
    MutexLock lock(&mu);
    return stopping;
  }

  // The delivery thread: applies one message, in stream order. A failure of this node
  // (the disk) is retried until it succeeds: skipping would leave this replica different.
  void Deliver(natsMsg* msg) {
    {
      MutexLock lock(&mu);
      if (stopping) {
        natsMsg_Destroy(msg);
        return;
      }
      ++delivering;
    }
    DeliverOne(msg);
    {
      MutexLock lock(&mu);
      --delivering;
    }
    applied_cv.notify_all();
  }

  void DeliverOne(natsMsg* msg) {
    jsMsgMetaData* meta = nullptr;
    uint64_t seq = 0;
    int64_t stamp = 0;  // when the stream stored it (ns)
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      seq = meta->Sequence.Stream;
      stamp = meta->Timestamp;
      jsMsgMetaData_Destroy(meta);
    }
    {
      // The stream's sequences have no gaps but the ones a purge leaves: a message past
      // the next one expected means the log was purged past this node, which can then
      // never converge by replay. It stops applying rather than skip what it missed.
      std::string purged_past;
      {
        MutexLock lock(&mu);
        if (blocked.empty() && seq != 0 && seq > applied + 1) {
          purged_past = "the update log was purged past this node (applied " + std::to_string(applied) +
                        ", the log now starts at " + std::to_string(seq) +
                        "): seed its data directory with a copy of another node's, then restart it";
        }
      }
      if (!purged_past.empty()) Block(purged_past);
      if (!BlockedReason().empty()) {
        natsMsg_Destroy(msg);
        return;
      }
    }
    const std::string_view data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    Status st;
    ApplyResult result;
    // A part of a large record (cluster/record_parts.h) is nothing until its index comes.
    const bool part = seq != 0 && IsRecordPart(data);
    if (part) {
      applier->Skip(seq);
      NotePart(data, seq, stamp);
    }
    ForgetAbandonedParts(stamp);
    std::string assembled;
    std::string_view record = data;
    // An index this node applied before a restart (it resumes from its recorded mark): a
    // repeat, with nothing to fetch.
    const bool index = seq != 0 && !part && IsRecordIndex(data);
    const bool repeat = index && seq <= applier->applied_sequence();
    StatusOr<RecordIndex> parts = index ? DecodeRecordIndex(data) : StatusOr<RecordIndex>(RecordIndex());
    std::unique_ptr<OwnRecords::Record> mine;
    if (seq != 0 && !part && !repeat && parts.ok()) mine = TakeOwn(msg, data, index ? &*parts : nullptr);
    if (mine != nullptr) {
      record = *mine->bytes;  // a retry decodes it
    } else if (index && !repeat) {
      st = parts.ok() ? FetchRecord(*parts, seq, &assembled) : parts.status();
      if (!st.ok() && (st.reason() == "part_purged" || Stopping())) {
        natsMsg_Destroy(msg);
        if (st.reason() == "part_purged") Block(st.message());
        return;  // not applied: the node stops here, or resumes here after a restart
      }
      record = assembled;
    }
    for (int attempt = 0; seq != 0 && !part && !repeat && st.ok(); ++attempt) {
      auto m =
          attempt == 0 && mine != nullptr ? StatusOr<Mutation>(std::move(mine->mutation)) : DecodeLogRecord(record);
      if (!m.ok()) {
        // Every replica reads the same bytes and rejects them alike.
        spdlog::error("update log: sequence {} is not a mutation: {}", seq, m.status().message());
        st = m.status();
        break;
      }
      m->sequence = seq;
      result = ApplyResult();
      st = applier->Apply(std::move(m).value(), &result);
      if (st.ok() || IsRejection(st) || Stopping()) break;
      spdlog::error("update log: applying sequence {} failed (attempt {}), retrying: {}", seq, attempt + 1,
                    st.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
    }
    if (index) {
      if (parts.ok()) ForgetParts(*parts);
      if (!st.ok()) spdlog::error("update log: the large record at sequence {} is rejected: {}", seq, st.message());
    }
    natsMsg_Destroy(msg);
    if (seq == 0) return;
    {
      MutexLock lock(&mu);
      applied = std::max(applied, seq);
      if (applied_gauge != nullptr) applied_gauge->Set(static_cast<int64_t>(applied));
      results[seq] = {st, result};
      while (results.size() > kKeptResults) results.erase(results.begin());
    }
    applied_cv.notify_all();
  }

  std::string BlockedReason() const {
    MutexLock lock(&mu);
    return blocked;
  }

  // A part passed at `seq`, stored at `stamp`: held until its index, or until its writer
  // must have given up (each message after it, the index included, waits at most
  // commit_timeout_ms; twice that for the servers' clocks and retries).
  void NotePart(std::string_view part, uint64_t seq, int64_t stamp) {
    uint64_t i = 0, n = 0;
    if (!ParseRecordPart(part, &i, &n)) return;
    const int64_t wait_ns = static_cast<int64_t>(n - i + 1) * 2 * options.commit_timeout_ms * 1000000LL;
    MutexLock lock(&mu);
    pending_parts[seq] = stamp + wait_ns;
  }
  void ForgetAbandonedParts(int64_t stamp) {
    MutexLock lock(&mu);
    for (auto it = pending_parts.begin(); it != pending_parts.end();)
      it = it->second < stamp ? pending_parts.erase(it) : std::next(it);
  }
  // An index applied here (or rejected): its parts are no longer held.
  void ForgetParts(const RecordIndex& index) {
    MutexLock lock(&mu);
    for (uint64_t part : index.sequences) pending_parts.erase(part);
  }

  // Publishing (jetstream_log.cc). Published: the acknowledged sequence, and whether
  // JetStream had the message id already (then the sequence is the first message's).
  struct Published {
    uint64_t sequence = 0;
    bool duplicate = false;
  };
  // When a step of a commit that began now gives up (NowMs()): commit_timeout_ms on, or
  // the request's deadline if sooner. Each message of a large record gets its own, so the
  // timeout bounds a wait for the quorum, not a long write's whole publishing.
  int64_t GiveUp(const RequestContext& ctx) const {
    int64_t at = NowMs() + options.commit_timeout_ms;
    if (ctx.has_deadline()) at = std::min(at, NowMs() + ctx.RemainingMs());
    return at;
  }
  // `data` under `msg_id`, retried with the same id (no quorum, an election, a reconnect)
  // until acknowledged, GiveUp() or the context's shutdown: Unavailable (log_unavailable);
  // a message the server refuses as too large: write_too_large.
  StatusOr<Published> Publish(const RequestContext& ctx, std::string_view data, const std::string& msg_id);
  // A record as one message, or as parts and an index when it exceeds the servers'
  // max_payload (cluster/record_parts.h); the sequence is the one it is applied at.
  StatusOr<Published> PublishRecord(const RequestContext& ctx, const std::string& record, const std::string& msg_id);

  // Stops applying for good, saying why (blocked_reason(), /readyz): the node can no
  // longer converge by replay. No longer a replica, its registration must not hold the
  // purge back.
  void Block(const std::string& reason) {
    {
      MutexLock lock(&mu);
      if (!blocked.empty()) return;
      blocked = reason;
      if (blocked_gauge != nullptr) blocked_gauge->Set(1);
    }
    spdlog::error("update log: {}", reason);
    if (members != nullptr) kvStore_Delete(members, options.node_id.c_str());
  }

  // What this node kept for `msg` (by its Nats-Msg-Id), when the record delivered (whole,
  // or named by `index`) is exactly what it published.
  std::unique_ptr<OwnRecords::Record> TakeOwn(natsMsg* msg, std::string_view data, const RecordIndex* index) {
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr) return nullptr;
    return own.Take(id, data, index);
  }

  // The record a large record's index (at `seq`) names, fetched part by part from the
  // stream. Transient failures (an election) are retried until the node stops; a part the
  // stream no longer holds is "part_purged"; a malformed index or parts that do not fit
  // together are a rejection, alike on every node.
  Status FetchRecord(const RecordIndex& index, uint64_t seq, std::string* record) {
    for (uint64_t part : index.sequences) {
      // Parts are published before their index: a later sequence is not one of them (and
      // waiting for it, or taking its absence for a purge, would stop every node).
      if (part >= seq) {
        return InvalidArgument("the large record's index at sequence " + std::to_string(seq) + " names sequence " +
                                   std::to_string(part) + " as a part",
                               "invalid_mutation");
      }
    }
    record->reserve(index.size);
    int64_t last_warning = 0;
    for (size_t i = 0; i < index.sequences.size(); ++i) {
      for (int attempt = 0;; ++attempt) {
        natsMsg* part = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus s = js_GetMsg(&part, js, options.stream.c_str(), index.sequences[i], nullptr, &jerr);
        if (s == NATS_OK && part != nullptr) {
          const Status appended = AppendRecordPart(
              std::string_view(natsMsg_GetData(part), static_cast<size_t>(natsMsg_GetDataLength(part))), i,
              index.sequences.size(), record);
          natsMsg_Destroy(part);
          CTX_RETURN_IF_ERROR(appended);
          break;
        }
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
          return NotFound("part " + std::to_string(i + 1) + " of the large write at sequence " + std::to_string(seq) +
                              " (stream sequence " + std::to_string(index.sequences[i]) +
                              ") was purged before this node applied the write: seed its data directory with a copy "
                              "of another node's, then restart it",
                          "part_purged");
        }
        if (Stopping()) return Unavailable("stopping", "log_unavailable");
        if (NowMs() - last_warning > 5000) {
          spdlog::warn("update log: cannot fetch part {} of the record at sequence {} yet ({}), retrying", i + 1, seq,
                       NatsError(s, jerr));
          last_warning = NowMs();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 5))));
      }
    }
    return CheckAssembledRecord(index, *record);
  }

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    static_cast<Rep*>(closure)->Deliver(msg);
  }

  // "contextd.heartbeat.NODE" carrying "ROLE APPLIED": small and fixed, no JSON needed.
  static void OnHeartbeat(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    Rep* r = static_cast<Rep*>(closure);
    const std::string subject = natsMsg_GetSubject(msg);
    const std::string data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    const size_t space = data.find(' ');
    const std::string prefix = "contextd.heartbeat.";
    if (space == std::string::npos || subject.rfind(prefix, 0) != 0) return;
    Heard h;
    h.role = data.substr(0, space);
    h.applied = std::strtoull(data.c_str() + space + 1, nullptr, 10);
    h.at_ms = NowMs();
    MutexLock lock(&r->mu);
    r->heard[subject.substr(prefix.size())] = std::move(h);
  }

  void HeartbeatLoop() {
    const std::string subject = "contextd.heartbeat." + options.node_id;
    while (!Stopping()) {
      if (following && heartbeat_sub == nullptr) {
        natsConnection_Subscribe(&heartbeat_sub, conn, "contextd.heartbeat.*", &Rep::OnHeartbeat, this);
      }
      if (following && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED) {
        uint64_t at = 0;
        {
          MutexLock lock(&mu);
          at = applied;
        }
        const std::string data = options.role + " " + std::to_string(at);
        natsConnection_Publish(conn, subject.c_str(), data.data(), static_cast<int>(data.size()));
      }
      // Until it follows, look again soon: the first heartbeat goes out as soon as it does.
      const int wait_ms = following ? options.heartbeat_ms : 50;
      for (int slept = 0; slept < wait_ms && !Stopping(); slept += 50)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // Creates the stream, or finds it there. A fresh cluster elects its meta leader in a
  // few seconds; the caller retries until then.
  natsStatus EnsureStream(jsErrCode* jerr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = options.stream.c_str();
    const char* subjects[] = {options.subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options.replicas;
    cfg.Duplicates = static_cast<int64_t>(options.duplicate_window_s) * 1000000000LL;
    jsStreamInfo* si = nullptr;
    *jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, js, &cfg, nullptr, jerr);
    if (si != nullptr) jsStreamInfo_Destroy(si);
    return s == NATS_OK || *jerr == JSStreamNameExistErr ? NATS_OK : s;
  }

  // The stream this node's state counts its sequences in: its name and creation time,
  // recorded in the store at the first follow. A stream recreated (a new cluster on the
  // same servers) or another cluster's has other sequences: applying it on top of this
  // state would corrupt it, so the node refuses, says why and applies nothing.
  // NATS_OK when it may follow; *refused set when it must not.
  natsStatus CheckIdentity(bool* refused) {
    *refused = false;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, options.stream.c_str(), nullptr, &jerr);
    if (s != NATS_OK || si == nullptr) return s == NATS_OK ? NATS_ERR : s;
    const std::string identity = options.stream + "@" + std::to_string(si->Created);
    jsStreamInfo_Destroy(si);
    auto stored = applier->log_identity();
    if (!stored.ok()) return NATS_ERR;  // the disk: retried
    if (stored->empty()) return applier->set_log_identity(identity).ok() ? NATS_OK : NATS_ERR;
    if (*stored == identity) return NATS_OK;
    MutexLock lock(&mu);
    blocked = "this node's data follows another update log (" + *stored + ") than the one these NATS servers hold (" +
              identity +
              "): the cluster was recreated or the node points at another cluster; point it at its own cluster, or "
              "empty its data directory to seed it from this one";
    spdlog::error("update log: {}", blocked);
    if (blocked_gauge != nullptr) blocked_gauge->Set(1);
    *refused = true;
    return NATS_ERR;
  }

  // Binds the members bucket, creating it when it is not there yet.
  natsStatus EnsureMembers() { return EnsureBucket(options.members_bucket, &members); }
  natsStatus EnsureBucket(const std::string& name, kvStore** bucket) {
    if (*bucket != nullptr) return NATS_OK;
    if (js_KeyValue(bucket, js, name.c_str()) == NATS_OK) return NATS_OK;
    *bucket = nullptr;
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = name.c_str();
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = options.replicas;
    const natsStatus s = js_CreateKeyValue(bucket, js, &cfg);
    if (s != NATS_OK) *bucket = nullptr;
    return s;
  }

  // Shard map (jetstream_shards.cc).
  void ReadShardMap();
  void MaintainShardMap();
  // Routes by `map` from now on, unless a newer revision was adopted meanwhile.
  void AdoptShardMap(ShardMap map, uint64_t revision);

  // "ROLE DURABLE WALL_MS", under the node's id.
  StatusOr<uint64_t> RecordDurableMark() {
    if (members == nullptr) return Unavailable("the members bucket is not set up yet", "log_unavailable");
    CTX_ASSIGN_OR_RETURN(uint64_t mark, applier->SyncApplied());
    std::string url;
    {
      MutexLock lock(&mu);
      url = advertise_url.empty() ? "-" : advertise_url;
      // What this node has passed (below the store's applied while it replays after a
      // restart), and below any part whose index it has not applied.
      mark = std::min(mark, applied);
      if (!pending_parts.empty()) mark = std::min(mark, pending_parts.begin()->first - 1);
    }
    const std::string value = options.role + " " + std::to_string(mark) + " " + std::to_string(WallMs()) + " " + url;
    uint64_t rev = 0;
    const natsStatus s = kvStore_PutString(&rev, members, options.node_id.c_str(), value.c_str());
    if (s != NATS_OK) return Unavailable("recording the durable mark: " + NatsError(s), "log_unavailable");
    return mark;
  }

  std::vector<Member> Members() const { return ReadMembers(members); }

  StreamState State() const {
    StreamState out;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, js, options.stream.c_str(), nullptr, &jerr) == NATS_OK && si != nullptr) {
      out.first_sequence = si->State.FirstSeq;
      out.last_sequence = si->State.LastSeq;
      out.bytes = si->State.Bytes;
      if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) out.leader = si->Cluster->Leader;
      jsStreamInfo_Destroy(si);
    }
    return out;
  }

  // state: the stream's, as just read (the housekeeping reads it once for both).
  StatusOr<uint64_t> PurgeBehindMembers(const StreamState& state) {
    const std::vector<Member> ms = Members();
    if (ms.empty()) return Unavailable("the members bucket cannot be read", "log_unavailable");
    const int64_t forget_before = WallMs() - options.forget_node_after_s * 1000;
    uint64_t lowest = UINT64_MAX;
    for (const Member& m : ms)
      if (m.wall_ms >= forget_before) lowest = std::min(lowest, m.durable);
    if (lowest == UINT64_MAX || lowest <= options.log_keep) return state.first_sequence;
    const uint64_t keep_from = lowest - options.log_keep + 1;  // the first sequence kept
    if (state.first_sequence >= keep_from) return state.first_sequence;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Sequence = keep_from;  // purges every message below it
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_PurgeStream(js, options.stream.c_str(), &o, &jerr);
    if (s != NATS_OK) return Unavailable("purging the update log: " + NatsError(s, jerr), "log_unavailable");
    spdlog::info("update log: purged below sequence {} (lowest durable mark {}, {} members)", keep_from, lowest,
                 ms.size());
    Bump(purges);
    return keep_from;
  }

  // The node that purges: the lowest id among those heard in the last three heartbeats.
  bool LeadsHousekeeping() {
    MutexLock lock(&mu);
    const int64_t now = NowMs();
    for (const auto& [id, h] : heard)
      if (Up(h, now)) return id == options.node_id;
    return false;
  }
  // A node is up while its heartbeats keep coming: one heard within three.
  bool Up(const Heard& h, int64_t now) const { return now - h.at_ms < 3 * options.heartbeat_ms; }

  void Housekeep() {
    if (!following || Stopping()) return;
    {
      MutexLock lock(&mu);
      if (!blocked.empty()) return;  // its mark must not move: it applies nothing
    }
    auto mark = RecordDurableMark();
    Status st = mark.status();
    const bool purges = st.ok() && LeadsHousekeeping();
    if (first_gauge != nullptr || purges) {
      const StreamState state = State();  // one stream-info request for both
      if (first_gauge != nullptr && state.last_sequence > 0) {
        first_gauge->Set(static_cast<int64_t>(state.first_sequence));
        last_gauge->Set(static_cast<int64_t>(state.last_sequence));
      }
      if (purges) st = PurgeBehindMembers(state).status();
    }
    if (!st.ok()) spdlog::warn("update log: housekeeping: {}", st.message());
  }

  // Where to follow from: the mark this node last recorded + 1 when that is below `from`
  // (its store's applied + 1) and the stream still holds it, so parts it had passed
  // without their index are seen again; the messages between are applied as repeats.
  uint64_t ResumePoint(uint64_t from) {
    kvEntry* e = nullptr;
    uint64_t mark = 0;
    if (kvStore_Get(&e, members, options.node_id.c_str()) == NATS_OK && e != nullptr) {
      Member self;
      if (ParseMember(kvEntry_ValueString(e), &self)) mark = self.durable;
      kvEntry_Destroy(e);
    }
    if (mark == 0 || mark + 1 >= from || State().first_sequence > mark + 1) return from;
    {
      MutexLock lock(&mu);
      applied = mark;
    }
    spdlog::info("update log: resuming from sequence {}, after the durable mark recorded last (applied {})", mark + 1,
                 from - 1);
    return mark + 1;
  }

  // An ordered consumer from `from`: every message of the stream, in order, on one
  // delivery thread.
  natsStatus Follow(uint64_t from, jsErrCode* jerr) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = options.stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    // The ordered consumer lives on one server; when that server dies, missed heartbeats
    // are how the client notices and recreates it elsewhere. nats.c's default (5 s) held
    // this node's applies, and so its writers, for up to 14 s after a server's death.
    so.Config.Heartbeat = 500LL * 1000 * 1000;
    *jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_Subscribe(&sub, js, options.subject.c_str(), &Rep::OnMessage, this, nullptr, &so, jerr);
    if (s != NATS_OK) return s;
    // Messages are applied one at a time on the subscription's thread; a pending limit
    // that counts messages only (a batch upsert may be large) keeps it from stalling.
    natsSubscription_SetPendingLimits(sub, 1 << 20, -1);
    return NATS_OK;
  }

  // The follower thread's loop: stream, then subscription, each retried with backoff
  // (through elections and a cluster that is not up yet) until done or stopping.
  void FollowLoop(uint64_t from) {
    int64_t last_warning = 0;
    bool attempt_resume = true;
    for (int attempt = 0; !Stopping(); ++attempt) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = EnsureStream(&jerr);
      bool refused = false;
      if (s == NATS_OK) s = CheckIdentity(&refused);
      if (refused) return;  // blocked, for good: it says why
      if (s == NATS_OK) s = EnsureMembers();
      if (s == NATS_OK) s = EnsureBucket(options.shards_bucket, &shards);
      if (s == NATS_OK && attempt_resume) {
        from = ResumePoint(from);
        attempt_resume = false;
      }
      // Registered before it follows: no purge passes a node once it is a member.
      if (s == NATS_OK && !RecordDurableMark().ok()) s = NATS_ERR;
      if (s == NATS_OK) s = Follow(from, &jerr);
      if (s == NATS_OK) {
        following = true;
        spdlog::info("update log: following {} from sequence {}", options.stream, from);
        return;
      }
      if (NowMs() - last_warning > 5000) {
        spdlog::warn("update log: cannot follow {} yet ({}), retrying", options.stream, NatsError(s, jerr));
        last_warning = NowMs();
      }
      for (int slept = 0; slept < std::min(1000, 100 << std::min(attempt, 3)) && !Stopping(); slept += 50)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
};

}  // namespace contextd

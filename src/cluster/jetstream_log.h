// JetStreamUpdateLog: the update log of cluster mode, a NATS JetStream stream replicated
// by the nats-servers' Raft (3 replicas by default).
//
// Commit publishes the encoded mutation with a message id (the request's Idempotency-Key,
// or a fresh one) and returns once JetStream has acknowledged it, which it does only after
// a quorum of the stream's replicas stored it, and once this node has applied it. A
// publish that gets no acknowledgement (no quorum, an election) is retried with the same
// message id, which JetStream de-duplicates, for a bounded time; then the writer gets
// Unavailable (503 log_unavailable), never a success the log does not hold. A record
// larger than the servers' max_payload (1 MB by default) goes in as parts and an index
// that commits them (cluster/record_parts.h): the write is applied at the index's
// sequence, each node fetching the parts back from the stream. So that the purge never
// takes a part before every node applied its index, a node's durable mark stays below
// every part it has passed whose index it has not applied (until the part's writer must
// have given up: (parts left + 1) x 2 x commit_timeout_ms of stream time after it), and a
// node restarts from its last recorded mark, not from its store's applied sequence, so it
// sees those parts again (what it applied already is skipped as a repeat).
//
// Every node applies the whole stream in order from its own applied sequence (an ordered
// consumer starting at applied + 1): the stream sequence is the mutation's sequence, so
// every replica assigns the same collection ids and converges on the same state. A node
// restarted, or cut off and reconnected, resumes where its store says it stopped.
//
// The log stays bounded: every `durable_mark_ms` each node makes its applies durable (one
// WAL sync) and records how far in the members bucket (a JetStream key-value bucket, the
// node id as key), and the housekeeping node (the lowest id heard) purges the stream up to
// the lowest mark of the nodes registered there, keeping `log_keep` messages behind it. A
// node registers before it follows, so the purge never passes a node it knows of; one
// silent for `forget_node_after_s` stops holding the log back. A node that finds the log
// purged past its applied sequence (a gap in the sequences) applies nothing more and says
// so (blocked_reason(), /readyz): it must be seeded with a copy of another node's data.
//
// Only this file's .cc includes nats.c.
//
// Thread safety: Commit may be called concurrently; applies run on one delivery thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/record_compression.h"
#include "cluster/shard_map.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "engine/update_log.h"

namespace contextd {

// Ok when a record of `record_bytes`, published with a message id of `msg_id_bytes`, fits
// one message under `max_payload` (the limit of the server the connection is on, headers
// included; 0 or less while not connected: unknown, so Ok) and the server has not
// `refused` it; otherwise write_too_large (413), saying both sizes. Commit splits records
// that do not fit, and answers this only when the limit is too small for parts too.
Status CheckRecordSize(size_t record_bytes, size_t msg_id_bytes, int64_t max_payload, bool refused = false);

struct JetStreamLogOptions {
  std::vector<std::string> servers;  // nats://host:port, any of the cluster's servers
  std::string node_id = "node";      // the connection's name, in the servers' reports
  std::string stream = "CONTEXTD_LOG";
  std::string subject = "contextd.log";
  int replicas = 3;
  // How this node writes its records (cluster/record_compression.h); a node reads both forms.
  LogCompression compression = LogCompression::kZstd;
  // How long a commit keeps retrying a publish that gets no acknowledgement (elections
  // take a few seconds), and how long it waits for this node to apply it; the request's
  // deadline bounds both too.
  int commit_timeout_ms = 15000;
  // How long a message id is remembered: a retry within it is applied once.
  int duplicate_window_s = 120;
  // Every node announces itself (its id, role and applied sequence) this often on
  // "contextd.heartbeat.NODE" (core NATS, not the stream), and hears the others'.
  int heartbeat_ms = 1000;
  std::string role = "data";
  // Bounding the log (see above).
  std::string members_bucket = "CONTEXTD_NODES";
  int durable_mark_ms = 5000;
  uint64_t log_keep = 10000;
  int64_t forget_node_after_s = 86400;
  // The shard map (cluster/shard_map.h): its bucket, the copies of each shard, and how long
  // a data node may go unheard before the housekeeping node takes it out of the map (its
  // shards then go to the others; until then queries skip it and ask another holder).
  std::string shards_bucket = "CONTEXTD_SHARDS";
  int shard_replicas = 2;
  int shard_map_grace_ms = 5000;
  // Tests only: called between a large record's parts and its index; false abandons the
  // write there, as a writer killed at that point would.
  std::function<bool()> before_index;
  // contextd_log_* metrics go here when set: commits by result, publish retries, purges,
  // the applied, first and last sequences, and whether the node is blocked.
  MetricsRegistry* metrics = nullptr;
};

class JetStreamUpdateLog : public UpdateLog {
 public:
  // Sets up the connection, which is made in the background (retried for ever while no
  // server answers); fails only on a malformed configuration. Applies nothing until Start().
  static StatusOr<std::unique_ptr<JetStreamUpdateLog>> Open(const JetStreamLogOptions& options,
                                                            MutationApplier* applier);
  ~JetStreamUpdateLog() override;

  // Starts applying the stream from the applier's applied sequence + 1, in the background:
  // a thread makes sure the stream exists (with the options' replicas) and follows it,
  // retrying until the cluster answers. Returns at once.
  Status Start() override;
  // Whether this node follows the stream yet (Start()'s thread has subscribed).
  bool following() const;
  // The housekeeping node (the lowest id heard) proposes the shard splits.
  bool LeadsMaintenance() const override;
  Status Commit(const RequestContext& ctx, Mutation* m, ApplyResult* result) override;

  // The stream's state as the servers report it: its last sequence and the name of the
  // server leading it (0 and "" when they cannot be reached).
  struct StreamState {
    uint64_t first_sequence = 0;  // past 1 once the log was purged
    uint64_t last_sequence = 0;
    uint64_t bytes = 0;  // what the stream holds, as each server stores it
    std::string leader;
  };
  StreamState stream_state() const;
  // Records this node wrote and then applied as it made them, not decoded back from the
  // stream (upserts whose delivered bytes were the ones it published).
  uint64_t own_records_applied() const;
  // The stream's last sequence, asked of its leader: every write acknowledged before the
  // call is at or below it (what a strong read waits for). Unavailable when no leader answers.
  StatusOr<uint64_t> LastSequence() const;
  // The last sequence this node applied from the stream.
  uint64_t applied_sequence() const;
  // Following the stream, over a live connection: what /readyz reports.
  bool connected() const;
  // The nodes heard from (this one included, once it follows), by id: the last heartbeat's
  // content and how long ago it arrived, by this node's monotonic clock.
  struct Peer {
    std::string node_id;
    std::string role;
    uint64_t applied_sequence = 0;
    int64_t age_ms = 0;
  };
  std::vector<Peer> peers() const;

  // The nodes registered in the members bucket, with the durable mark each recorded last
  // (wall clock of the recording, ms since the epoch). Empty when the bucket cannot be read.
  struct Member {
    std::string node_id;
    std::string role;
    uint64_t durable = 0;
    int64_t wall_ms = 0;
    std::string url;  // where its HTTP API answers ("" until the node said)
  };
  std::vector<Member> members() const;
  // This node's HTTP address, recorded with its next durable mark (known once it listens).
  void set_advertise_url(const std::string& url);

  // Before a node opens its data: how far back the log reaches and who holds replicas, so
  // a new node can tell whether replaying the log from its start will do or it must be
  // seeded from a member's checkpoint first. Unavailable when the cluster does not answer
  // within `timeout_ms`.
  struct ClusterProbe {
    bool stream_exists = false;
    uint64_t first_sequence = 0;  // the oldest message kept (0: none)
    std::vector<Member> members;
  };
  static StatusOr<ClusterProbe> Probe(const JetStreamLogOptions& options, int timeout_ms);
  // Records this node's durable mark now (SyncApplied, then the bucket), as the heartbeat
  // thread does every durable_mark_ms. Returns the mark.
  StatusOr<uint64_t> RecordDurableMark();
  // Purges the stream up to the lowest durable mark of the members less log_keep, as the
  // housekeeping node does after each of its marks. Returns the stream's first sequence
  // after it (unchanged when there was nothing to purge).
  StatusOr<uint64_t> PurgeBehindMembers();
  // Questions every node answers, over core NATS ("contextd.ask.TOPIC"), for what only
  // each node knows (its usage ledger). Answer() serves `topic` on this node with
  // `handler` (run on the subscription's thread; the handler must outlive the log).
  // AskAll() asks every node and returns the answers that arrive within `timeout_ms`,
  // this node's included, stopping early once `expected` have come.
  // threads > 1: questions are answered on that many threads, several at once.
  void Answer(const std::string& topic, std::function<std::string(std::string_view)> handler, size_t threads = 1);
  // Asks each question's node (the one answering "TOPIC.NODE"), all at once, and waits up
  // to `timeout_ms` for the answers: one per question, in order, Unavailable
  // (node_unavailable) where none came (no such node, it is down, or slow). `meanwhile`
  // runs once the questions are sent (this node's own share of the work).
  struct Question {
    std::string node, payload;
  };
  std::vector<StatusOr<std::string>> AskEach(const std::string& topic, const std::vector<Question>& questions,
                                             int timeout_ms, const std::function<void()>& meanwhile = {}) const;

  // The shard map this node routes by (epoch 0 until one was read), read again from its
  // bucket at every heartbeat; RefreshShardMap() reads it now.
  ShardMap shard_map() const;
  void RefreshShardMap();
  const std::string& node_id() const;
  // Heard from within three heartbeats (this node too, once it follows).
  bool IsUp(const std::string& node_id) const;
  std::vector<std::string> AskAll(const std::string& topic, const std::string& payload, int timeout_ms,
                                  size_t expected) const;
  // Stops answering, waiting out any handler still running: call it before what the
  // handlers use goes away.
  void StopAnswering();

  // Why this node cannot apply the log ("" when it can): the log was purged past it.
  std::string blocked_reason() const;

 private:
  struct Rep;
  explicit JetStreamUpdateLog(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace contextd

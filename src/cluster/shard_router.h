// ClusterShardRouter: the engine's ShardRouter (engine/shard_router.h) over a cluster.
//
// For each shard a query needs, it picks one holder from the shard map (cluster/shard_map.h):
// this node when it holds the shard, else the live holder with the fewest questions in
// flight from here. It sends every node its shards' part of the query at once, answers its
// own share meanwhile, and asks the next holder for the shards of a node that failed or
// did not answer in time. A shard none of its holders answered for is answered from this
// node's own copy (Options::answer_uncovered), or else reported, never dropped. A holder
// with a newer map than the asker refuses (stale_shard_map); the asker reads the map again
// and asks again.
//
// The cluster is reached through the small Cluster interface: JetStreamUpdateLog in a
// server (ClusterOfLog), in-process fakes in tests.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/jetstream_log.h"
#include "cluster/shard_map.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "engine/shard_router.h"

namespace contextd {

class ClusterShardRouter final : public ShardRouter {
 public:
  class Cluster {
   public:
    virtual ~Cluster() = default;
    virtual std::string self() const = 0;
    virtual ShardMap map() const = 0;
    virtual void RefreshMap() = 0;
    // Heard from lately (this node always is).
    virtual bool IsUp(const std::string& node) const = 0;
    // As JetStreamUpdateLog::AskEach on the "search" topic.
    virtual std::vector<StatusOr<std::string>> Ask(const std::vector<JetStreamUpdateLog::Question>& questions,
                                                   int timeout_ms, const std::function<void()>& meanwhile) const = 0;
  };
  // This node's own part of a query (Engine::AnswerShardQuery).
  using LocalAnswer = std::function<StatusOr<ShardCandidates>(const ShardQuery&)>;
  struct Options {
    // How long a holder has to answer before its shards are asked of the next one (the
    // request's deadline, when sooner, bounds it too).
    int ask_timeout_ms = 2000;
    // contextd_shard_* metrics when set.
    MetricsRegistry* metrics = nullptr;
    // Ask the map's holders even for the shards this node also stores and could answer
    // alone (exactly, from the stored vectors, or from the graph when partial indexing is
    // off). Asking costs a round trip through NATS per query, so by default (false) a node
    // answers alone whatever it links. True: --query-routing shards (tests, benchmarks).
    bool ask_holders = false;
    // Partial indexing: a data node links the graphs of the shards the map gives it and
    // only stores the vectors of the others, whose parts of a query it asks of their
    // holders (whatever ask_holders says). False: every node links every shard.
    bool partial_indexing = true;
    // Shards no holder answered for are answered from this node's own copy (every node
    // applies every write, so it stores every shard's chunks and postings; a shard whose
    // graph it does not link is scanned exactly), not left out. False: they are reported
    // missing in the coverage.
    bool answer_uncovered = true;
  };
  ClusterShardRouter(Cluster* cluster, LocalAnswer local, Options options);

  bool Spreads(const std::string& tenant, uint64_t collection_id,
               const std::vector<uint32_t>& shard_ids) const override;
  // With partial indexing, whether the map makes this node a holder of the shard (every
  // shard until a map is known; none on a node the map leaves out, such as an API node).
  bool Indexes(const std::string& tenant, uint64_t collection_id, uint32_t shard_id) const override;
  bool AsksHolders() const override { return options_.ask_holders; }
  Status Gather(const RequestContext& ctx, const ShardQuery& q, std::vector<ShardCandidates>* parts,
                Coverage* coverage) override;

  // One holder for each of `shards` (by node; the shards no usable holder has go to
  // *unassigned): `self` when it holds the shard, else the usable holder with the least
  // load, ties to the map's order. What Gather asks; public for benchmarks.
  static std::map<std::string, std::vector<uint32_t>> Assign(
      const ShardMap& map, const std::string& tenant, uint64_t collection_id, const std::vector<uint32_t>& shards,
      const std::string& self, const std::function<bool(uint32_t, const std::string&)>& usable,
      const std::function<int(const std::string&)>& load, std::vector<uint32_t>* unassigned);

  // The answering side: this node's reply to another's question (its part, or the error),
  // refusing a question routed by a map older than `epoch`.
  static std::string Answer(std::string_view question, uint64_t epoch, const LocalAnswer& local);

 private:
  // Whether `self` holds the shard by `map`: every shard while no map is known, none on a
  // node the map leaves out, every one when there are as many copies as nodes.
  static bool Holds(const ShardMap& map, const std::string& self, const std::string& tenant, uint64_t collection_id,
                    uint32_t shard_id);
  // The reply's form: EncodeShardCandidates, or 'E' reason '\n' message.
  static StatusOr<ShardCandidates> ReadAnswer(const StatusOr<std::string>& reply);

  Cluster* const cluster_;
  const LocalAnswer local_;
  const Options options_;
  mutable Mutex mu_;
  std::map<std::string, int> in_flight_ GUARDED_BY(mu_);  // questions sent and not answered, by node
  Counter *asked_ = nullptr, *failed_ = nullptr, *retried_ = nullptr, *uncovered_ = nullptr;
};

// The Cluster of a server: its update log's map, heartbeats and questions.
std::unique_ptr<ClusterShardRouter::Cluster> ClusterOfLog(JetStreamUpdateLog* log);

}  // namespace contextd

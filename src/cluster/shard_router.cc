#include "cluster/shard_router.h"

#include <algorithm>
#include <climits>
#include <set>

namespace contextd {
namespace {

std::vector<uint32_t> Within(const std::vector<uint32_t>& ids, const std::vector<uint32_t>& sorted_subset) {
  std::vector<uint32_t> out;
  for (uint32_t id : ids) {
    if (std::binary_search(sorted_subset.begin(), sorted_subset.end(), id)) out.push_back(id);
  }
  return out;
}

class LogCluster final : public ClusterShardRouter::Cluster {
 public:
  explicit LogCluster(JetStreamUpdateLog* log) : log_(log) {}
  std::string self() const override { return log_->node_id(); }
  ShardMap map() const override { return log_->shard_map(); }
  void RefreshMap() override { log_->RefreshShardMap(); }
  bool IsUp(const std::string& node) const override { return log_->IsUp(node); }
  std::vector<StatusOr<std::string>> Ask(const std::vector<JetStreamUpdateLog::Question>& questions, int timeout_ms,
                                         const std::function<void()>& meanwhile) const override {
    return log_->AskEach("search", questions, timeout_ms, meanwhile);
  }

 private:
  JetStreamUpdateLog* const log_;
};

}  // namespace

std::unique_ptr<ClusterShardRouter::Cluster> ClusterOfLog(JetStreamUpdateLog* log) {
  return std::make_unique<LogCluster>(log);
}

ClusterShardRouter::ClusterShardRouter(Cluster* cluster, LocalAnswer local, Options options)
    : cluster_(cluster), local_(std::move(local)), options_(options) {
  if (MetricsRegistry* m = options_.metrics; m != nullptr) {
    asked_ = m->GetCounter("contextd_shard_questions_total", "Shard parts of queries asked of other nodes");
    failed_ = m->GetCounter("contextd_shard_question_failures_total",
                            "Shard parts another node failed or did not answer in time");
    retried_ = m->GetCounter("contextd_shard_retries_total", "Queries that asked another holder after one failed");
    uncovered_ = m->GetCounter("contextd_shard_uncovered_total",
                               "Shards a query needed that no holder answered for (the answer said so)");
  }
}

bool ClusterShardRouter::Holds(const ShardMap& map, const std::string& self, const std::string& tenant,
                               uint64_t collection_id, uint32_t shard_id) {
  if (map.epoch == 0) return true;                                         // no map yet: answer alone
  if (!map.Contains(self)) return false;                                   // an API node, or one not in it yet
  if (static_cast<size_t>(map.replicas) >= map.nodes.size()) return true;  // a copy of everything
  const std::vector<std::string> holders = map.Holders(tenant, collection_id, shard_id);
  return std::find(holders.begin(), holders.end(), self) != holders.end();
}

bool ClusterShardRouter::Indexes(const std::string& tenant, uint64_t collection_id, uint32_t shard_id) const {
  return !options_.partial_indexing || Holds(cluster_->map(), cluster_->self(), tenant, collection_id, shard_id);
}

bool ClusterShardRouter::Spreads(const std::string& tenant, uint64_t collection_id,
                                 const std::vector<uint32_t>& shard_ids) const {
  // Every shard is linked here: answering alone is cheaper than asking.
  if (!options_.ask_holders && !options_.partial_indexing) return false;
  const ShardMap map = cluster_->map();
  const std::string self = cluster_->self();
  for (uint32_t shard : shard_ids) {
    if (!Holds(map, self, tenant, collection_id, shard)) return true;
  }
  return false;
}

Status ClusterShardRouter::Gather(const RequestContext& ctx, const ShardQuery& q, std::vector<ShardCandidates>* parts,
                                  Coverage* coverage) {
  std::vector<uint32_t> needed = q.vector_shards;
  needed.insert(needed.end(), q.keyword_shards.begin(), q.keyword_shards.end());
  std::sort(needed.begin(), needed.end());
  needed.erase(std::unique(needed.begin(), needed.end()), needed.end());
  coverage->asked.insert(coverage->asked.end(), needed.begin(), needed.end());
  const std::string self = cluster_->self();
  std::map<uint32_t, std::set<std::string>> tried;  // holders that failed, by shard
  std::vector<uint32_t> remaining = needed;
  bool refreshed = false;
  for (int round = 0; !remaining.empty(); ++round) {
    CTX_RETURN_IF_ERROR(ctx.CheckDeadline("asking the shards' holders"));
    if (round == 1 && retried_ != nullptr) retried_->Increment();  // once per query
    const ShardMap map = cluster_->map();
    std::map<std::string, std::vector<uint32_t>> by_node;
    {
      MutexLock lock(&mu_);
      const auto load = [this](const std::string& node) NO_THREAD_SAFETY_ANALYSIS { return in_flight_[node]; };
      const size_t before = coverage->missing.size();
      by_node = Assign(
          map, q.tenant, q.collection_id, remaining, self,
          [&](uint32_t shard, const std::string& node) {
            return tried[shard].count(node) == 0 && (node == self || cluster_->IsUp(node));
          },
          load, &coverage->missing);
      if (uncovered_ != nullptr) uncovered_->Increment(coverage->missing.size() - before);
      for (const auto& entry : by_node) {
        if (entry.first != self) ++in_flight_[entry.first];
      }
    }
    const int timeout = static_cast<int>(
        ctx.has_deadline() ? std::min<int64_t>(options_.ask_timeout_ms, ctx.RemainingMs()) : options_.ask_timeout_ms);
    std::vector<JetStreamUpdateLog::Question> questions;
    std::vector<const std::vector<uint32_t>*> asked_shards;
    ShardQuery mine;
    const std::vector<uint32_t>* my_shards = nullptr;
    for (const auto& [node, shards] : by_node) {
      ShardQuery part = q;
      part.epoch = map.epoch;
      part.timeout_ms = timeout;
      part.vector_shards = Within(q.vector_shards, shards);
      part.keyword_shards = Within(q.keyword_shards, shards);
      if (node == self) {
        mine = std::move(part);
        my_shards = &shards;
      } else {
        questions.push_back({node, EncodeShardQuery(part)});
        asked_shards.push_back(&shards);
      }
    }
    if (asked_ != nullptr) asked_->Increment(questions.size());
    StatusOr<ShardCandidates> my_part = Unavailable("not asked");
    const std::vector<StatusOr<std::string>> replies = cluster_->Ask(questions, timeout, [&] {
      if (my_shards != nullptr) my_part = local_(mine);
    });
    {
      MutexLock lock(&mu_);
      for (const auto& question : questions) --in_flight_[question.node];
    }
    std::vector<uint32_t> again;
    bool stale = false;
    const auto settle = [&](const std::string& node, const std::vector<uint32_t>& shards,
                            StatusOr<ShardCandidates> part) {
      if (part.ok()) {
        parts->push_back(std::move(part).value());
        coverage->nodes.push_back(node);
        return;
      }
      if (node != self && failed_ != nullptr) failed_->Increment();
      if (part.status().reason() == "stale_shard_map" && !refreshed) {
        stale = true;  // asked again by the newer map, the same holder included
      } else {
        for (uint32_t shard : shards) tried[shard].insert(node);
      }
      again.insert(again.end(), shards.begin(), shards.end());
    };
    if (my_shards != nullptr) settle(self, *my_shards, std::move(my_part));
    for (size_t i = 0; i < questions.size(); ++i) settle(questions[i].node, *asked_shards[i], ReadAnswer(replies[i]));
    if (stale) {
      cluster_->RefreshMap();
      refreshed = true;
    }
    remaining = std::move(again);
  }
  if (options_.answer_uncovered && !coverage->missing.empty()) {
    std::vector<uint32_t> missing = coverage->missing;
    std::sort(missing.begin(), missing.end());
    ShardQuery part = q;
    part.epoch = cluster_->map().epoch;
    part.vector_shards = Within(q.vector_shards, missing);
    part.keyword_shards = Within(q.keyword_shards, missing);
    if (StatusOr<ShardCandidates> mine = local_(part); mine.ok()) {
      parts->push_back(std::move(mine).value());
      coverage->missing.clear();
      if (std::find(coverage->nodes.begin(), coverage->nodes.end(), self) == coverage->nodes.end())
        coverage->nodes.push_back(self);
    }
  }
  return Status::Ok();
}

std::map<std::string, std::vector<uint32_t>> ClusterShardRouter::Assign(
    const ShardMap& map, const std::string& tenant, uint64_t collection_id, const std::vector<uint32_t>& shards,
    const std::string& self, const std::function<bool(uint32_t, const std::string&)>& usable,
    const std::function<int(const std::string&)>& load, std::vector<uint32_t>* unassigned) {
  std::map<std::string, std::vector<uint32_t>> by_node;
  for (uint32_t shard : shards) {
    std::string pick;
    int least = INT_MAX;
    for (const std::string& h : map.Holders(tenant, collection_id, shard)) {
      if (!usable(shard, h)) continue;
      if (h == self) {  // no question to send at all
        pick = h;
        break;
      }
      if (const int l = load(h); l < least) {
        least = l;
        pick = h;
      }
    }
    if (pick.empty()) {
      unassigned->push_back(shard);
    } else {
      by_node[pick].push_back(shard);
    }
  }
  return by_node;
}

std::string ClusterShardRouter::Answer(std::string_view question, uint64_t epoch, const LocalAnswer& local) {
  auto q = DecodeShardQuery(question);
  Status st = q.status();
  if (q.ok() && q->epoch < epoch) {
    st = FailedPrecondition(
        "routed by shard map epoch " + std::to_string(q->epoch) + "; this node has epoch " + std::to_string(epoch),
        "stale_shard_map");
  }
  if (st.ok()) {
    auto part = local(*q);
    if (part.ok()) return EncodeShardCandidates(*part);
    st = part.status();
  }
  return "E" + st.reason() + "\n" + st.message();
}

StatusOr<ShardCandidates> ClusterShardRouter::ReadAnswer(const StatusOr<std::string>& reply) {
  if (!reply.ok()) return reply.status();
  if (!reply->empty() && (*reply)[0] == 'E') {
    const size_t nl = reply->find('\n');
    const std::string reason = reply->substr(1, nl == std::string::npos ? std::string::npos : nl - 1);
    const std::string message = nl == std::string::npos ? "" : reply->substr(nl + 1);
    return Status(StatusCode::kUnavailable, "another node refused its part: " + message, reason);
  }
  return DecodeShardCandidates(*reply);
}

}  // namespace contextd

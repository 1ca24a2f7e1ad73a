// JetStreamUpdateLog's shard map (kept in its key-value bucket) and its one-node questions.
#include "cluster/jetstream_log.h"
#include "cluster/jetstream_rep.h"

namespace contextd {
namespace {

constexpr char kMapKey[] = "map";

}  // namespace

void JetStreamUpdateLog::Rep::ReadShardMap() {
  if (shards == nullptr) return;
  kvEntry* e = nullptr;
  const natsStatus s = kvStore_Get(&e, shards, kMapKey);
  if (s == NATS_NOT_FOUND) return;  // none written yet
  if (s != NATS_OK || e == nullptr) return;
  auto map = ShardMap::Decode(
      std::string_view(static_cast<const char*>(kvEntry_Value(e)), static_cast<size_t>(kvEntry_ValueLen(e))));
  const uint64_t revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  if (!map.ok()) {
    spdlog::error("update log: the shard map in {} is unreadable: {}", options.shards_bucket, map.status().message());
    return;
  }
  AdoptShardMap(std::move(map).value(), revision);
}

void JetStreamUpdateLog::Rep::AdoptShardMap(ShardMap map, uint64_t revision) {
  MutexLock lock(&mu);
  if (revision < shard_map_revision) return;  // an older read finishing late
  shard_map = std::move(map);
  shard_map_revision = revision;
  if (shard_map_epoch_gauge != nullptr) shard_map_epoch_gauge->Set(static_cast<int64_t>(shard_map.epoch));
}

void JetStreamUpdateLog::Rep::MaintainShardMap() {
  ReadShardMap();
  if (shards == nullptr || !LeadsHousekeeping()) return;
  ShardMap current;
  uint64_t revision = 0;
  std::vector<std::string> up;
  {
    MutexLock lock(&mu);
    current = shard_map;
    revision = shard_map_revision;
    const int64_t now = NowMs();
    for (const auto& [id, h] : heard) {
      if (h.role == "data" && now - h.at_ms < options.shard_map_grace_ms) up.push_back(id);
    }
  }
  if (up.empty()) return;  // never a map of no holders: keep the last one
  const ShardMap next = NextShardMap(current, up, options.shard_replicas);
  if (next.epoch == current.epoch) return;
  const std::string value = next.Encode();
  uint64_t written = 0;
  // Compare-and-set on the revision read: a node that leads with an older view (two
  // nodes each thinking it is the lowest for a heartbeat) fails here and reads again.
  const natsStatus s =
      revision == 0 ? kvStore_Create(&written, shards, kMapKey, value.data(), static_cast<int>(value.size()))
                    : kvStore_Update(&written, shards, kMapKey, value.data(), static_cast<int>(value.size()), revision);
  if (s != NATS_OK) {
    spdlog::info("update log: shard map epoch {} not written ({}); reading it again", next.epoch, NatsError(s));
    return;
  }
  std::string nodes;
  for (const std::string& n : next.nodes) nodes += (nodes.empty() ? "" : ",") + n;
  spdlog::info("update log: shard map epoch {}: {} copies of each shard on {}", next.epoch, next.replicas, nodes);
  AdoptShardMap(next, written);
}

ShardMap JetStreamUpdateLog::shard_map() const {
  MutexLock lock(&rep_->mu);
  return rep_->shard_map;
}

void JetStreamUpdateLog::RefreshShardMap() { rep_->ReadShardMap(); }

const std::string& JetStreamUpdateLog::node_id() const { return rep_->options.node_id; }

bool JetStreamUpdateLog::IsUp(const std::string& node_id) const {
  MutexLock lock(&rep_->mu);
  const auto it = rep_->heard.find(node_id);
  return it != rep_->heard.end() && rep_->Up(it->second, NowMs());
}

std::vector<StatusOr<std::string>> JetStreamUpdateLog::AskEach(const std::string& topic,
                                                               const std::vector<Question>& questions, int timeout_ms,
                                                               const std::function<void()>& meanwhile) const {
  const auto failed = [&](const std::string& node, const std::string& why) -> StatusOr<std::string> {
    return Unavailable("node " + node + " did not answer " + topic + ": " + why, "node_unavailable");
  };
  std::vector<StatusOr<std::string>> out;
  for (const Question& q : questions)
    out.push_back(failed(q.node, "no answer within " + std::to_string(timeout_ms) + " ms"));
  if (questions.empty()) {
    if (meanwhile) meanwhile();
    return out;
  }
  // All sent at once, each with its own reply subject under one inbox, and the answers
  // taken as they come on one subscription: no thread per question.
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  const std::string prefix = s == NATS_OK ? std::string(inbox) + "." : "";
  if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, rep_->conn, (prefix + "*").c_str());
  size_t waiting = 0;
  for (size_t i = 0; s == NATS_OK && i < questions.size(); ++i) {
    const std::string subject = "contextd.ask." + topic + "." + questions[i].node;
    const std::string reply = prefix + std::to_string(i);
    const natsStatus p =
        natsConnection_PublishRequest(rep_->conn, subject.c_str(), reply.c_str(), questions[i].payload.data(),
                                      static_cast<int>(questions[i].payload.size()));
    if (p == NATS_OK) {
      ++waiting;
    } else {
      out[i] = failed(questions[i].node, NatsError(p));
    }
  }
  if (meanwhile) meanwhile();  // while the others work
  std::vector<bool> answered(questions.size(), false);
  const int64_t give_up = NowMs() + timeout_ms;
  while (s == NATS_OK && waiting > 0) {
    const int64_t left = give_up - NowMs();
    if (left <= 0) break;
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub, left) != NATS_OK) break;
    const std::string subject = natsMsg_GetSubject(msg);
    const size_t i =
        subject.size() > prefix.size() ? std::strtoull(subject.c_str() + prefix.size(), nullptr, 10) : questions.size();
    if (i < questions.size() && !answered[i]) {
      answered[i] = true;
      --waiting;
      if (natsMsg_IsNoResponders(msg)) {
        out[i] = failed(questions[i].node, "no such node answers");
      } else {
        out[i] = std::string(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
      }
    }
    natsMsg_Destroy(msg);
  }
  if (s != NATS_OK) {
    for (size_t i = 0; i < questions.size(); ++i) out[i] = failed(questions[i].node, NatsError(s));
  }
  if (sub != nullptr) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  if (inbox != nullptr) natsInbox_Destroy(inbox);
  return out;
}

}  // namespace contextd

#include "cluster/jetstream_log.h"

#include "cluster/jetstream_rep.h"

namespace contextd {

Status CheckRecordSize(size_t record_bytes, size_t msg_id_bytes, int64_t max_payload, bool refused) {
  // The message's headers count against the limit: "NATS/1.0", the Nats-Msg-Id line.
  const size_t with_headers = record_bytes + msg_id_bytes + 64;
  if (!refused && (max_payload <= 0 || with_headers <= static_cast<uint64_t>(max_payload))) return Status::Ok();
  const std::string limit = max_payload > 0 ? std::to_string(max_payload) + " bytes" : "its limit";
  return ResourceExhausted("the write's update-log record is " + std::to_string(with_headers) +
                               " bytes, and the NATS servers take messages of at most " + limit +
                               " (their max_payload), too few to carry it even in parts of 4 KB: raise max_payload in "
                               "the nats-server configuration",
                           "write_too_large");
}

JetStreamUpdateLog::JetStreamUpdateLog(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
JetStreamUpdateLog::~JetStreamUpdateLog() = default;

StatusOr<std::unique_ptr<JetStreamUpdateLog>> JetStreamUpdateLog::Open(const JetStreamLogOptions& options,
                                                                       MutationApplier* applier) {
  if (options.servers.empty()) return InvalidArgument("cluster mode needs at least one NATS server URL");
  // The id is a NATS subject token and a key of the members bucket.
  if (options.node_id.empty() || options.node_id.size() > 64 ||
      options.node_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
          std::string::npos) {
    return InvalidArgument("node id \"" + options.node_id +
                           "\" must be 1 to 64 letters, digits, '_' or '-' (it names the node in NATS subjects)");
  }
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  rep->applier = applier;
  rep->RegisterMetrics(options.metrics);
  std::vector<const char*> urls;
  for (const auto& s : options.servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_Create(&rep->nats_options);
  if (s == NATS_OK) s = natsOptions_SetServers(rep->nats_options, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(rep->nats_options, options.node_id.c_str());
  // Reconnect for ever: a node outlives any one server, and the ordered consumer resumes
  // after the last message it delivered.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(rep->nats_options, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(rep->nats_options, 100);
  if (s == NATS_OK) s = natsOptions_SetTimeout(rep->nats_options, 2000);
  // Questions between nodes and their answers go out at once: nats.c otherwise buffers a
  // publish for its flusher thread, which sleeps a millisecond (often several on a busy
  // machine) before each flush, and every query that gathers shard parts waits on two of
  // them (the question, then the answer).
  if (s == NATS_OK) s = natsOptions_SetSendAsap(rep->nats_options, true);
  if (s != NATS_OK) return InvalidArgument("NATS options: " + NatsError(s));

  // Connecting goes on in the background while no server answers (nats.c retries, then
  // reconnects for ever): a node may start before its NATS cluster and serve reads
  // meanwhile. Only a malformed configuration fails here.
  // With a connected callback nats.c returns at once (NATS_NOT_YET_CONNECTED); without one
  // it would block through every attempt.
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(
        rep->nats_options, true,
        [](natsConnection*, void* name) {
          spdlog::info("update log: {} connected to NATS", *static_cast<std::string*>(name));
        },
        &rep->options.node_id);
  }
  if (s != NATS_OK) return InvalidArgument("NATS options: " + NatsError(s));
  s = natsConnection_Connect(&rep->conn, rep->nats_options);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return Unavailable("cannot connect to the NATS cluster at " + options.servers[0] + ": " + NatsError(s),
                       "log_unavailable");
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  s = natsConnection_JetStream(&rep->js, rep->conn, &jo);
  if (s != NATS_OK) return Unavailable("JetStream: " + NatsError(s), "log_unavailable");
  return std::unique_ptr<JetStreamUpdateLog>(new JetStreamUpdateLog(std::move(rep)));
}

Status JetStreamUpdateLog::Start() {
  Rep& r = *rep_;
  const uint64_t from = r.applier->applied_sequence();
  {
    MutexLock lock(&r.mu);
    r.applied = from;
    if (r.applied_gauge != nullptr) r.applied_gauge->Set(static_cast<int64_t>(from));
  }
  r.follower = std::thread([&r, from] { r.FollowLoop(from + 1); });
  r.heartbeat = std::thread([&r] { r.HeartbeatLoop(); });
  r.housekeeping =
      std::make_unique<PeriodicTask>(std::chrono::milliseconds(r.options.durable_mark_ms), [&r] { r.Housekeep(); });
  // On its own thread: reading and writing the bucket are JetStream requests, which can
  // take seconds in an election, and must never hold back the heartbeats.
  r.shard_map_task = std::make_unique<PeriodicTask>(std::chrono::milliseconds(r.options.heartbeat_ms), [&r] {
    if (r.following && !r.Stopping()) r.MaintainShardMap();
  });
  return Status::Ok();
}

std::vector<JetStreamUpdateLog::Peer> JetStreamUpdateLog::peers() const {
  std::vector<Peer> out;
  const int64_t now = NowMs();
  MutexLock lock(&rep_->mu);
  for (const auto& [id, h] : rep_->heard) out.push_back({id, h.role, h.applied, now - h.at_ms});
  return out;
}

bool JetStreamUpdateLog::following() const { return rep_->following.load(); }

bool JetStreamUpdateLog::LeadsMaintenance() const { return rep_->LeadsHousekeeping(); }

Status JetStreamUpdateLog::Commit(const RequestContext& ctx, Mutation* m, ApplyResult* result) {
  Rep& r = *rep_;
  CTX_RETURN_IF_ERROR(ctx.CheckDeadline("committing the write"));
  if (std::string blocked = blocked_reason(); !blocked.empty()) return Unavailable(blocked, "log_unavailable");
  // Compressed here, on the writer's thread: the bytes then cross NATS six times.
  const std::string encoded = EncodeMutation(*m);
  const auto bytes = std::make_shared<const std::string>(CompressRecord(encoded, r.options.compression));
  // The same key from the same tenant is the same write, applied once.
  const std::string msg_id = ctx.idempotency_key.empty() ? RandomId() : ctx.tenant + ":" + ctx.idempotency_key;
  r.own.Keep(msg_id, bytes, m);  // an upsert is applied here as made, not decoded back
  // Whatever the outcome: a kept mutation not taken by its delivery is not needed.
  struct Dropper {
    Rep& r;
    const std::string& id;
    const std::string* bytes;
    ~Dropper() { r.own.Drop(id, bytes); }
  } drop{r, msg_id, bytes.get()};
  auto published = r.PublishRecord(ctx, *bytes, msg_id);
  if (!published.ok()) {
    if (published.status().reason() == "log_unavailable") Rep::Bump(r.commits_unavailable);
    return published.status();
  }
  const uint64_t seq = published->sequence;
  const bool duplicate = published->duplicate;
  if (r.record_bytes != nullptr && !duplicate) {
    r.record_bytes->Increment(encoded.size());
    r.published_bytes->Increment(bytes->size());
  }
  m->sequence = seq;
  // Read your writes: wait until this node has applied it.
  MutexLock lock(&r.mu);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(
                                                            r.GiveUp(ctx) - NowMs(), r.options.commit_timeout_ms / 2));
  // The predicate runs with r.mu held (wait_until relocks it first).
  if (!r.applied_cv.wait_until(r.mu, until,
                               [&]() NO_THREAD_SAFETY_ANALYSIS { return r.applied >= seq || r.stopping; }) ||
      r.applied < seq) {
    Rep::Bump(r.commits_lagging);
    return DeadlineExceeded(
        "the write is committed (sequence " + std::to_string(seq) + ") but this node has not applied it yet",
        "apply_lagging");
  }
  Rep::Bump(r.commits_ok);
  auto it = r.results.find(seq);
  if (duplicate || it == r.results.end()) {
    ctx.NoteCommitted(seq);
    return Status::Ok();  // applied before: nothing new to report
  }
  *result = it->second.second;
  if (it->second.first.ok()) ctx.NoteCommitted(seq);
  return it->second.first;
}

StatusOr<JetStreamUpdateLog::Rep::Published> JetStreamUpdateLog::Rep::Publish(const RequestContext& ctx,
                                                                              std::string_view data,
                                                                              const std::string& msg_id) {
  const int64_t give_up = GiveUp(ctx);
  std::string last_error;
  for (int attempt = 0;; ++attempt) {
    const int64_t left = give_up - NowMs();
    if (left <= 0 || ctx.ShuttingDown()) break;
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, options.subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    if (s != NATS_OK) return Internal("cannot make a NATS message: " + NatsError(s));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id.c_str();
    po.MaxWait = std::min<int64_t>(left, 2000);
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_PublishMsg(&ack, js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    Published out;
    if (s == NATS_OK && ack != nullptr) {
      out.sequence = ack->Sequence;
      out.duplicate = ack->Duplicate;
    } else {
      last_error = NatsError(s, jerr);
    }
    if (ack != nullptr) jsPubAck_Destroy(ack);
    if (out.sequence != 0) return out;
    // Refused on every try: retrying would only end in a 503 for a write that can never
    // be committed.
    if (s == NATS_MAX_PAYLOAD) {
      return CheckRecordSize(data.size(), msg_id.size(), natsConnection_GetMaxPayload(conn), /*refused=*/true);
    }
    // No quorum, an election, a reconnect: the same message id again, after a pause.
    Bump(publish_retries);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(500, 50 << std::min(attempt, 4))));
  }
  return Unavailable("the update log did not acknowledge the write in time (" + last_error +
                         "); it may still be applied: retry with the same Idempotency-Key",
                     "log_unavailable");
}

StatusOr<JetStreamUpdateLog::Rep::Published> JetStreamUpdateLog::Rep::PublishRecord(const RequestContext& ctx,
                                                                                    const std::string& record,
                                                                                    const std::string& msg_id) {
  int64_t max = natsConnection_GetMaxPayload(conn);  // 0 until connected: then try it whole
  if (max <= 0 || CheckRecordSize(record.size(), msg_id.size(), max).ok()) {
    auto whole = Publish(ctx, record, msg_id);
    if (whole.ok() || whole.status().reason() != "write_too_large") return whole;
    max = natsConnection_GetMaxPayload(conn);  // the server that refused it
  }
  // Each part's message carries its id and framing too.
  const int64_t part_bytes = max - static_cast<int64_t>(msg_id.size()) - 1024;
  if (part_bytes < 4096) return CheckRecordSize(record.size(), msg_id.size(), max, /*refused=*/true);
  RecordIndex index;
  index.size = record.size();
  index.hash = RecordHash(record);
  // Parts of another record under the same key (a retry whose body changed) get other ids.
  char hash[17];
  snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(index.hash));
  const std::vector<std::string> parts = SplitRecord(record, static_cast<size_t>(part_bytes));
  for (size_t i = 0; i < parts.size(); ++i) {
    CTX_ASSIGN_OR_RETURN(Published p, Publish(ctx, parts[i], msg_id + "." + hash + "." + std::to_string(i)));
    index.sequences.push_back(p.sequence);
  }
  if (options.before_index && !options.before_index()) {
    return Unavailable("the write was abandoned between its parts and its index", "log_unavailable");
  }
  return Publish(ctx, EncodeRecordIndex(index), msg_id);
}

JetStreamUpdateLog::StreamState JetStreamUpdateLog::stream_state() const { return rep_->State(); }

uint64_t JetStreamUpdateLog::own_records_applied() const { return rep_->own.taken(); }

std::vector<JetStreamUpdateLog::Member> JetStreamUpdateLog::members() const { return rep_->Members(); }

StatusOr<uint64_t> JetStreamUpdateLog::RecordDurableMark() { return rep_->RecordDurableMark(); }

StatusOr<uint64_t> JetStreamUpdateLog::PurgeBehindMembers() { return rep_->PurgeBehindMembers(rep_->State()); }

void JetStreamUpdateLog::Answer(const std::string& topic, std::function<std::string(std::string_view)> handler,
                                size_t threads) {
  auto a = std::make_unique<Rep::Answerer>();
  a->handler = std::move(handler);
  if (threads > 1) a->pool = std::make_unique<ThreadPool>(threads, "ctx-answer");
  const std::string subject = "contextd.ask." + topic;
  // Allowed before the connection is up (it is made in the background): nats.c sends the
  // subscription once connected.
  const natsStatus s = natsConnection_Subscribe(&a->sub, rep_->conn, subject.c_str(), &Rep::OnAsk, a.get());
  if (s != NATS_OK) spdlog::warn("update log: cannot answer {}: {}", subject, NatsError(s));
  rep_->answerers.push_back(std::move(a));
}

void JetStreamUpdateLog::StopAnswering() { rep_->StopAnswering(); }

std::vector<std::string> JetStreamUpdateLog::AskAll(const std::string& topic, const std::string& payload,
                                                    int timeout_ms, size_t expected) const {
  std::vector<std::string> out;
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  const std::string subject = "contextd.ask." + topic;
  natsStatus s = natsInbox_Create(&inbox);
  if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, rep_->conn, inbox);
  if (s == NATS_OK) {
    s = natsConnection_PublishRequest(rep_->conn, subject.c_str(), inbox, payload.data(),
                                      static_cast<int>(payload.size()));
  }
  const int64_t give_up = NowMs() + timeout_ms;
  while (s == NATS_OK && out.size() < expected) {
    const int64_t left = give_up - NowMs();
    if (left <= 0) break;
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub, left) != NATS_OK) break;
    out.emplace_back(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
  }
  if (sub != nullptr) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  if (inbox != nullptr) natsInbox_Destroy(inbox);
  return out;
}

void JetStreamUpdateLog::set_advertise_url(const std::string& url) {
  MutexLock lock(&rep_->mu);
  rep_->advertise_url = url;
}

StatusOr<JetStreamUpdateLog::ClusterProbe> JetStreamUpdateLog::Probe(const JetStreamLogOptions& options,
                                                                     int timeout_ms) {
  if (options.servers.empty()) return InvalidArgument("cluster mode needs at least one NATS server URL");
  std::vector<const char*> urls;
  for (const auto& u : options.servers) urls.push_back(u.c_str());
  natsOptions* no = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  kvStore* bucket = nullptr;
  ClusterProbe out;
  Status st;
  natsStatus s = natsOptions_Create(&no);
  if (s == NATS_OK) s = natsOptions_SetServers(no, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(no, timeout_ms);
  if (s == NATS_OK) s = natsConnection_Connect(&conn, no);
  if (s == NATS_OK) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    s = natsConnection_JetStream(&js, conn, &jo);
  }
  if (s == NATS_OK) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus info = js_GetStreamInfo(&si, js, options.stream.c_str(), nullptr, &jerr);
    if (info == NATS_OK && si != nullptr) {
      out.stream_exists = true;
      out.first_sequence = si->State.FirstSeq;
      jsStreamInfo_Destroy(si);
      if (js_KeyValue(&bucket, js, options.members_bucket.c_str()) == NATS_OK) out.members = ReadMembers(bucket);
    } else if (info != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
      st = Unavailable("the update log's stream did not answer: " + NatsError(info, jerr), "log_unavailable");
    }
  } else {
    st = Unavailable("cannot reach the NATS cluster at " + options.servers[0] + ": " + NatsError(s), "log_unavailable");
  }
  if (bucket != nullptr) kvStore_Destroy(bucket);
  if (js != nullptr) jsCtx_Destroy(js);
  if (conn != nullptr) {
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
  }
  if (no != nullptr) natsOptions_Destroy(no);
  if (!st.ok()) return st;
  return out;
}

std::string JetStreamUpdateLog::blocked_reason() const { return rep_->BlockedReason(); }

StatusOr<uint64_t> JetStreamUpdateLog::LastSequence() const {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, rep_->js, rep_->options.stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK || si == nullptr) {
    return Unavailable(
        std::string("the update log's leader did not say how far the log goes: ") + natsStatus_GetText(s),
        "log_unavailable");
  }
  const uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return last;
}

uint64_t JetStreamUpdateLog::applied_sequence() const {
  MutexLock lock(&rep_->mu);
  return rep_->applied;
}

bool JetStreamUpdateLog::connected() const {
  return rep_->following.load() && natsConnection_Status(rep_->conn) == NATS_CONN_STATUS_CONNECTED &&
         blocked_reason().empty();
}

}  // namespace contextd

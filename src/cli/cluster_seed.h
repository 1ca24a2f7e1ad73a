// Seeding a new node of a cluster whose update log was purged: replaying the log from its
// first message is then impossible, so the node copies a member's checkpoint (GET
// /v1/admin/checkpoint: its databases at one applied sequence) into its empty data
// directory first, then follows the log from that sequence like a restarted node.
#pragma once

#include <string>

#include "cluster/jetstream_log.h"
#include "common/status.h"

namespace contextd {

// Does nothing for a data directory that already holds a store, when the log still starts
// at its first message (or does not exist yet), or when the cluster cannot be asked (the
// node then replays, and says so if the log turns out purged). Otherwise fetches a
// checkpoint from the first member that gives one (with `admin_key` when auth is on);
// Unavailable when none does.
Status SeedFromClusterIfNeeded(const JetStreamLogOptions& log, const std::string& data_dir,
                               const std::string& admin_key);

}  // namespace contextd

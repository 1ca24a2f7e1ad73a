// A usage query and its rows as JSON, to ask every node of a cluster for its ledger's
// share (each node records the requests it served) and sum the answers into one report.
//
// Thread safety: free functions over their arguments.
#pragma once

#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "usage/usage_ledger.h"

namespace contextd {

Json UsageQueryToJson(const UsageQuery& q);
// InvalidArgument for a body that is not a query UsageQueryToJson wrote.
StatusOr<UsageQuery> UsageQueryFromJson(const Json& j);

Json UsageRowsToJson(const std::vector<UsageRow>& rows);
StatusOr<std::vector<UsageRow>> UsageRowsFromJson(const Json& j);

// Rows with the same period and group summed, ordered as UsageLedger::Query orders them.
std::vector<UsageRow> MergeUsageRows(const std::vector<std::vector<UsageRow>>& parts);

}  // namespace contextd

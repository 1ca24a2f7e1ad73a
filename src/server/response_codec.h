// The engine's typed results written as the API's JSON: collections, shards, documents.
// (Query results, routes and usage are written in api.cc, next to their handlers.)
//
// Thread safety: free functions.
#pragma once

#include "common/json.h"
#include "engine/collection.h"
#include "engine/planner.h"

namespace contextd {

// GET /v1/collections/{name}: the config's members, then the counts.
Json CollectionInfoJson(const CollectionInfo& info);
// GET /v1/collections/{name}/shards: {"shards":[...], "routing":{...}}.
Json ShardsReportJson(const ShardsReport& report);
// GET .../documents/{id}: {"id", "title"?, "text", "metadata", "refs"?, "chunks"}.
Json StoredDocumentJson(StoredDocument doc);

// The plan as the API reports it: {"strategy","answered_by","fallback","fallback_reason"?,
// "complexity","indicators","sub_queries","shards","of","searches"}.
Json PlanJson(const PlannedSearch& plan);

}  // namespace contextd

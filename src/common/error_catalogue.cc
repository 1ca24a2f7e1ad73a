#include "common/error_catalogue.h"

#include <algorithm>
#include <iterator>

namespace contextd {
namespace {

// Sorted by code (FindErrorReason searches it).
constexpr ErrorReason kReasons[] = {
    {"already_exists", 409, "creating something that exists"},
    {"apply_lagging", 504, "the write is committed but this node has not applied it within the deadline"},
    {"bad_encoding", 400, "the body's Content-Encoding could not be undone"},
    {"bad_request", 400, "the request is malformed"},
    {"bind_failed", 503, "the server could not listen on its address"},
    {"body_too_large", 413, "the body (after Content-Encoding) is larger than max_body_bytes"},
    {"budget_exceeded", 402, "the tenant's or key's hard budget for the period is spent"},
    {"checksum_mismatch", 500, "a downloaded file does not match its checksum"},
    {"collection_exists", 409, "a collection of that name exists"},
    {"collection_not_found", 404, "no such collection (in the caller's tenant)"},
    {"deadline_exceeded", 504, "the request's deadline passed before the next step"},
    {"dimension_mismatch", 400, "a vector's length differs from the collection's or model's"},
    {"disk_full", 507, "the data directory's disk is full: reads go on, writes resume once space is freed"},
    {"docs_missing", 503, "Swagger UI is not installed (scripts/setup installs it)"},
    {"duplicate_id", 400, "one batch names the same document twice"},
    {"embedder_change", 409, "a cache namespace with entries cannot change its embedder"},
    {"embedder_unavailable", 503, "the collection's embedding model is not loaded here"},
    {"empty_batch", 400, "a batch holds nothing"},
    {"empty_text", 400, "a text is empty"},
    {"entry_not_found", 404, "no such cache entry"},
    {"expired_api_key", 401, "the API key is past its expires_at"},
    {"failed_precondition", 409, "the request conflicts with the current state"},
    {"graph_file_invalid", 409, "a saved graph does not match the store (it is rebuilt)"},
    {"graph_file_missing", 404, "no saved graph (it is rebuilt)"},
    {"header_too_large", 431, "a request header is too large"},
    {"internal", 500, "a bug; never the caller's fault"},
    {"invalid_analyzer", 400, "unknown analyzer"},
    {"invalid_api_key", 401, "the API key is malformed, unknown or revoked"},
    {"invalid_argument", 400, "the request is malformed or names impossible values"},
    {"invalid_distance", 400, "unknown distance"},
    {"invalid_filter", 400, "a metadata filter is malformed"},
    {"invalid_header", 400, "a header's value is malformed"},
    {"invalid_id", 400, "a document id is empty, too long or not UTF-8"},
    {"invalid_json", 400, "the body is not JSON"},
    {"invalid_mode", 400, "unknown query mode"},
    {"invalid_mutation", 400, "an update-log record is malformed (never a client's request)"},
    {"invalid_name", 400, "a collection, session, namespace or tenant name breaks its rules"},
    {"invalid_path", 400, "a path is malformed"},
    {"invalid_quantization", 400, "unknown quantization"},
    {"invalid_snapshot", 400, "a shard snapshot is malformed (never a client's request)"},
    {"invalid_type", 400, "a member has the wrong JSON type"},
    {"invalid_utf8", 400, "a text is not valid UTF-8"},
    {"invalid_value", 400, "a member's value is not one of those allowed"},
    {"invalid_vector", 400, "a vector holds non-finite or out-of-range numbers"},
    {"io_setup_failed", 503, "the server could not set up its I/O"},
    {"key_not_found", 404, "no such API key (in that tenant)"},
    {"log_unavailable", 503,
     "the update log could not commit (no quorum, an election): retry with the same Idempotency-Key"},
    {"memory_pressure", 503, "the node is at its memory limit; writes that add data wait (reads go on)"},
    {"method_not_allowed", 405, "the route exists for other methods (see Allow)"},
    {"missing_api_key", 401, "auth is on and the request carries no key"},
    {"missing_field", 400, "a required member is absent"},
    {"missing_filter", 400, "a bulk delete names no filter (all=true deletes everything)"},
    {"model_not_found", 404, "no such embedding model"},
    {"namespace_not_found", 404, "no such cache namespace (in the caller's tenant)"},
    {"no_route", 404, "no route for the method and path"},
    {"not_acceptable", 406, "the Accept header allows no form this route answers in"},
    {"not_found", 404, "no such thing"},
    {"out_of_range", 400, "a number is outside its allowed range"},
    {"overloaded", 503,
     "the node's queues are full, or the wait would outlast the request's deadline; see Retry-After"},
    {"permission_denied", 403, "the key's role or grants do not allow this"},
    {"provider_bad_dimension", 503, "an embedding provider answered vectors of the wrong size"},
    {"provider_error", 503, "an embedding provider failed"},
    {"provider_rejected", 400, "an embedding provider refused the input as invalid"},
    {"provider_unavailable", 503, "no embedding provider could be reached (breaker open)"},
    {"query_too_long", 400, "the query has more words than max_query_tokens"},
    {"queue_full", 429, "the embedding queue is full"},
    {"rate_limit_exceeded", 429, "a tenant or key limit is reached; see Retry-After"},
    {"request_exceeds_limit", 400, "one request needs more tokens than its token limit ever allows; split it"},
    {"resource_exhausted", 429, "a limit was hit"},
    {"server_busy", 503, "every connection is busy at the connection cap"},
    {"session_not_found", 404, "no such session, or it expired"},
    {"shutting_down", 503, "the server is draining"},
    {"storage_error", 500, "the disk or database failed"},
    {"tenant_exists", 409, "a tenant of that id exists"},
    {"tenant_not_empty", 409, "the tenant still holds collections"},
    {"tenant_not_found", 404, "no such tenant"},
    {"tokenizer_missing", 503, "the cl100k tokenizer file is not installed"},
    {"too_many_connections", 429, "one client address holds too many connections"},
    {"too_many_inputs", 400, "a batch holds more inputs than allowed"},
    {"too_many_requests_in_flight", 429, "the tenant's or key's max_inflight is reached"},
    {"unavailable", 503, "a dependency is down; retrying may help"},
    {"unknown_embedder", 400, "no such embedder"},
    {"unknown_field", 400, "a member the endpoint does not know"},
    {"unsupported_dimensions", 400, "the model cannot give that many dimensions"},
    {"unsupported_encoding", 415, "a Content-Encoding the server does not undo"},
    {"uri_too_long", 414, "the request target is too long"},
    {"usage_disabled", 409, "the usage ledger is off (it runs with --auth or a price table)"},
    {"write_not_visible", 504, "this node has not applied the request's write token in time"},
};

}  // namespace

std::span<const ErrorReason> ErrorCatalogue() { return kReasons; }

const ErrorReason* FindErrorReason(std::string_view code) {
  auto it = std::lower_bound(std::begin(kReasons), std::end(kReasons), code,
                             [](const ErrorReason& r, std::string_view c) { return r.code < c; });
  return it != std::end(kReasons) && it->code == code ? &*it : nullptr;
}

}  // namespace contextd

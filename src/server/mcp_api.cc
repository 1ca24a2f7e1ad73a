// POST /mcp: the Model Context Protocol's streamable HTTP transport (protocol 2025-06-18,
// JSON-RPC 2.0), so an agent's MCP client can search, assemble context, store and use the
// LLM cache without a bridge process.
//
// Each tool call runs the matching HTTP route's handler in-process, on this request's
// context: the same validation, the same errors, and, with auth on, the same permission
// check against the tool's route (a reader key may find but not store; another tenant's
// collection is not found). A handler's error becomes a tool result with isError (the
// model reads it and can correct its call); an unknown tool or malformed arguments object
// is a JSON-RPC error.
//
// Sessions: initialize returns Mcp-Session-Id; later requests must carry it (400 without,
// 404 for one this node does not know, so the client re-initializes). Sessions live in this
// node's memory, capped and expired after an hour idle. GET /mcp (a server-initiated SSE
// stream) is not offered: 405, which the transport allows.
#include <random>

#include "common/hash.h"
#include "net/http_status.h"
#include "server/api.h"

namespace contextd {

namespace {

constexpr const char* kProtocolVersions[] = {"2025-06-18", "2025-03-26", "2024-11-05"};
constexpr size_t kMaxSessions = 10000;
constexpr int64_t kSessionIdleNs = 3600LL * 1'000'000'000;

// JSON-RPC error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

bool Supported(std::string_view version) {
  for (const char* v : kProtocolVersions) {
    if (version == v) return true;
  }
  return false;
}

Json RpcError(const Json& id, int code, const std::string& message) {
  Json out = Json::MakeObject();
  out["jsonrpc"] = "2.0";
  out["id"] = id;
  out["error"]["code"] = code;
  out["error"]["message"] = message;
  return out;
}

Json RpcResult(const Json& id, Json result) {
  Json out = Json::MakeObject();
  out["jsonrpc"] = "2.0";
  out["id"] = id;
  out["result"] = std::move(result);
  return out;
}

Json Prop(const char* type, const char* description) {
  Json p = Json::MakeObject();
  p["type"] = type;
  p["description"] = description;
  return p;
}

Json Schema(std::vector<std::pair<const char*, Json>> props, std::vector<std::string> required) {
  Json s = Json::MakeObject();
  s["type"] = "object";
  Json& p = s["properties"];
  p = Json::MakeObject();
  for (auto& [name, schema] : props) p[name] = std::move(schema);
  Json req = Json::MakeArray();
  for (auto& r : required) req.push_back(r);
  s["required"] = std::move(req);
  return s;
}

Json TextContent(std::string text) {
  Json item = Json::MakeObject();
  item["type"] = "text";
  item["text"] = std::move(text);
  Json list = Json::MakeArray();
  list.push_back(std::move(item));
  return list;
}

// A tool result: the text a model reads, and optionally the same as structured content.
Json ToolResult(std::string text, Json structured = Json(), bool is_error = false) {
  Json r = Json::MakeObject();
  r["content"] = TextContent(std::move(text));
  if (!structured.is_null()) r["structuredContent"] = std::move(structured);
  r["isError"] = is_error;
  return r;
}

std::string NewSessionId() {
  std::random_device rd;
  std::string id;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    const uint32_t v = rd();
    for (int b = 0; b < 4; ++b) {
      id += kHex[(v >> (8 * b + 4)) & 15];
      id += kHex[(v >> (8 * b)) & 15];
    }
  }
  return id;
}

// The host of an Origin header ("http://localhost:3000" -> "localhost").
std::string OriginHost(std::string_view origin) {
  const size_t scheme = origin.find("://");
  if (scheme != std::string_view::npos) origin.remove_prefix(scheme + 3);
  if (!origin.empty() && origin.front() == '[') {
    const size_t close = origin.find(']');
    return std::string(origin.substr(0, close == std::string_view::npos ? origin.size() : close + 1));
  }
  return std::string(origin.substr(0, origin.find_first_of(":/")));
}

}  // namespace

void Api::AddMcpRoutes() {
  mcp_ = std::make_unique<McpState>();
  using namespace std::placeholders;
  // Tools may embed (a query, a stored document): the embed pool, whose threads may wait.
  AddRoute("POST", "/mcp", Pool::kEmbed, std::bind(&Api::McpPost, this, _1, _2, _3));
  AddRoute("DELETE", "/mcp", Pool::kInline, std::bind(&Api::McpDelete, this, _1, _2, _3));
}

Json Api::McpTools() const {
  const bool default_collection = !options_.mcp.default_collection.empty();
  const auto collection = [&] {
    return Prop("string", default_collection ? "The collection to use (default: the server's configured one)."
                                             : "The collection to use (contextd-list-collections names them).");
  };
  const auto with_collection = [&](std::vector<std::string> required) {
    if (!default_collection) required.insert(required.begin(), "collection_name");
    return required;
  };
  Json tools = Json::MakeArray();
  const auto add = [&](const char* name, const char* title, const char* description, Json input, Json output = Json()) {
    Json t = Json::MakeObject();
    t["name"] = name;
    t["title"] = title;
    t["description"] = description;
    t["inputSchema"] = std::move(input);
    if (!output.is_null()) t["outputSchema"] = std::move(output);
    tools.push_back(std::move(t));
  };
  Json k = Prop("integer", "How many results (default 10).");
  k["minimum"] = 1;
  k["maximum"] = 1000;
  Json mode = Prop("string", "vector, keyword or hybrid (default: hybrid where the collection has an embedder).");
  mode["enum"] = Json(Json::Array{"vector", "keyword", "hybrid"});
  Json hit = Schema({{"id", Prop("string", "The document's id.")},
                     {"chunk", Prop("integer", "The chunk's index in the document.")},
                     {"score", Prop("number", "Higher is closer.")},
                     {"text", Prop("string", "The chunk's text.")},
                     {"metadata", Prop("object", "The document's metadata.")}},
                    {"id", "text"});
  hit["properties"]["metadata"]["type"] = Json(Json::Array{"object", "null"});  // none stored: null
  Json results = Json::MakeObject();
  results["type"] = "array";
  results["items"] = std::move(hit);
  add("contextd-find", "Search a collection",
      "Finds the passages of a collection closest to a query (semantic, keyword or both), with their ids and "
      "scores.",
      Schema({{"collection_name", collection()},
              {"query", Prop("string", "What to look for, in natural language.")},
              {"k", std::move(k)},
              {"mode", std::move(mode)},
              {"filter", Prop("object", "A metadata filter, as /v1/collections/{name}/query takes it.")}},
             with_collection({"query"})),
      Schema({{"results", std::move(results)}}, {"results"}));
  Json max_tokens = Prop("integer", "The most tokens (cl100k) the context may hold (default 2000).");
  max_tokens["minimum"] = 1;
  add("contextd-context", "Context for a prompt",
      "Assembles cited context for a prompt from a collection (and a conversation's recent turns), within a token "
      "budget.",
      Schema({{"collection_name", collection()},
              {"query", Prop("string", "The prompt the context is for.")},
              {"max_tokens", std::move(max_tokens)},
              {"session_id", Prop("string", "A conversation whose recent turns come first.")}},
             with_collection({"query"})));
  if (options_.mcp.store_enabled) {
    add("contextd-store", "Remember information",
        "Stores a piece of information in a collection, where contextd-find and contextd-context will find it.",
        Schema({{"collection_name", collection()},
                {"information", Prop("string", "The text to store.")},
                {"metadata", Prop("object", "Metadata kept with it (filterable).")},
                {"id", Prop("string", "Its id (default: derived from the text, so storing it twice keeps one).")}},
               with_collection({"information"})));
  }
  add("contextd-list-collections", "List collections", "Lists the collections this key can see, with their sizes.",
      Schema({}, {}));
  Json scope = Prop("object", "Fields the entry is scoped by (a user, a model); a lookup sees only its scope.");
  add("contextd-cache-lookup", "Look up a cached answer",
      "Finds an answer cached for this prompt or one meaning the same, in an LLM-cache namespace.",
      Schema({{"namespace", Prop("string", "The cache namespace.")},
              {"prompt", Prop("string", "The prompt.")},
              {"scope", scope},
              {"threshold", Prop("number", "The least similarity that counts as a hit (default: the namespace's).")}},
             {"namespace", "prompt"}));
  add("contextd-cache-store", "Cache an answer", "Caches the answer to a prompt in an LLM-cache namespace.",
      Schema({{"namespace", Prop("string", "The cache namespace (created on first use).")},
              {"prompt", Prop("string", "The prompt.")},
              {"response", Prop("string", "The answer to cache.")},
              {"scope", scope},
              {"ttl_s", Prop("integer", "Seconds until it expires.")}},
             {"namespace", "prompt", "response"}));
  return tools;
}

StatusOr<Json> Api::McpCallTool(const std::string& name, const Json& args, const HttpRequest& outer,
                                RequestContext& ctx) {
  // A tool is a route: its method, pattern, parameters and JSON body.
  std::string method = "POST", pattern;
  Params params;
  Json body = Json::MakeObject();
  const auto arg_string = [&](const char* key) -> std::string {
    const Json* v = args.Find(key);
    return v != nullptr && v->is_string() ? v->as_string() : "";
  };
  const auto copy = [&](const char* from, const char* to) {
    if (const Json* v = args.Find(from)) body[to] = *v;
  };
  std::string collection = arg_string("collection_name");
  if (collection.empty()) collection = options_.mcp.default_collection;
  const auto need_collection = [&]() -> Status {
    if (!collection.empty()) return Status::Ok();
    return InvalidArgument("'collection_name' is required (no default collection is configured)", "missing_field");
  };
  if (name == "contextd-find") {
    CTX_RETURN_IF_ERROR(need_collection());
    pattern = "/v1/collections/{name}/query";
    params = {collection};
    for (const char* key : {"query", "k", "mode", "filter"}) copy(key, key);
  } else if (name == "contextd-context") {
    CTX_RETURN_IF_ERROR(need_collection());
    pattern = "/v1/context";
    body["collection"] = collection;
    for (const char* key : {"query", "max_tokens", "session_id"}) copy(key, key);
  } else if (name == "contextd-store" && options_.mcp.store_enabled) {
    CTX_RETURN_IF_ERROR(need_collection());
    pattern = "/v1/collections/{name}/documents";
    params = {collection};
    Json doc = Json::MakeObject();
    const std::string text = arg_string("information");
    if (text.empty()) return InvalidArgument("'information' must be a non-empty string", "missing_field");
    std::string id = arg_string("id");
    if (id.empty()) {
      char buf[24];
      snprintf(buf, sizeof(buf), "mcp-%016llx", static_cast<unsigned long long>(Hash64(text)));
      id = buf;
    }
    doc["id"] = id;
    doc["text"] = text;
    if (const Json* m = args.Find("metadata")) doc["metadata"] = *m;
    body["documents"].push_back(std::move(doc));
  } else if (name == "contextd-list-collections") {
    method = "GET";
    pattern = "/v1/collections";
  } else if (name == "contextd-cache-lookup" || name == "contextd-cache-store") {
    const std::string ns = arg_string("namespace");
    if (ns.empty()) return InvalidArgument("'namespace' must be a non-empty string", "missing_field");
    const bool store = name == "contextd-cache-store";
    pattern = store ? "/v1/cache/{ns}/store" : "/v1/cache/{ns}/lookup";
    params = {ns};
    for (const char* key : {"prompt", "scope"}) copy(key, key);
    for (const char* key :
         store ? std::vector<const char*>{"response", "ttl_s"} : std::vector<const char*>{"threshold"})
      copy(key, key);
  } else {
    return NotFound("no tool named '" + name + "'", "no_route");
  }
  Route* route = FindRoute(method, pattern);
  if (route == nullptr) return Internal("the route of tool " + name + " is missing");
  if (options_.auth_enabled) {
    // The key must allow the tool's route as it would the route itself (the /mcp request
    // was charged to the rate limits already).
    std::vector<RateScope> ignored;
    CTX_RETURN_IF_ERROR(Authorize(*route, params, outer, &ctx, &ignored));
  }
  HttpRequest inner;
  inner.method = method;
  inner.path = pattern;
  inner.body = method == "GET" ? "" : body.Dump();
  StatusOr<Reply> ran = route->fn(params, inner, ctx);
  if (name == "contextd-cache-store" && !ran.ok() && ErrorCode(ran.status()) == "namespace_not_found") {
    // The tool creates its namespace on first use, with the defaults (PUT /v1/cache/{ns}).
    Route* create = FindRoute("PUT", "/v1/cache/{ns}");
    HttpRequest put;
    put.method = "PUT";
    put.body = "{}";
    if (create != nullptr) CTX_RETURN_IF_ERROR(create->fn(params, put, ctx).status());
    ran = route->fn(params, inner, ctx);
  }
  CTX_ASSIGN_OR_RETURN(Reply reply, std::move(ran));
  // What the model reads: the results as text; the reply itself as structured content.
  std::string text;
  Json& json = reply.json;
  if (name == "contextd-find") {
    Json structured = Json::MakeObject();
    structured["results"] = json.Find("results") != nullptr ? *json.Find("results") : Json::MakeArray();
    for (const Json& hit : structured["results"].as_array()) {
      char score[32];
      const Json* s = hit.Find("score");
      snprintf(score, sizeof(score), "%.4f", s != nullptr && s->is_number() ? s->as_double() : 0.0);
      text += "[" + hit.Find("id")->as_string() + " #" + std::to_string(hit.Find("chunk")->as_int()) + ", score " +
              score + "]\n" + hit.Find("text")->as_string() + "\n\n";
    }
    if (text.empty()) text = "no results in " + collection;
    return ToolResult(std::move(text), std::move(structured));
  }
  if (name == "contextd-context") {
    for (const Json& piece : json.Find("pieces")->as_array()) {
      text += "[" + piece.Find("id")->as_string() + "]\n" + piece.Find("text")->as_string() + "\n\n";
    }
    if (text.empty()) text = "nothing in " + collection + " fits this prompt";
    return ToolResult(std::move(text), std::move(json));
  }
  if (name == "contextd-list-collections") {
    for (const Json& c : json.Find("collections")->as_array()) {
      const Json* docs = c.Find("documents");
      text +=
          c.Find("name")->as_string() + " (" + std::to_string(docs != nullptr ? docs->as_int() : 0) + " documents)\n";
    }
    if (text.empty()) text = "no collections";
    return ToolResult(std::move(text), std::move(json));
  }
  if (name == "contextd-cache-lookup") {
    const Json* hit = json.Find("hit");
    if (hit == nullptr || !hit->as_bool()) return ToolResult("miss", std::move(json));
    const Json* response = json.Find("response");
    text = response != nullptr && response->is_string() ? response->as_string() : response->Dump();
    return ToolResult(std::move(text), std::move(json));
  }
  if (name == "contextd-store")
    text = "stored " + body["documents"].as_array()[0]["id"].as_string() + " in " + collection;
  if (name == "contextd-cache-store") text = "cached as " + json["id"].as_string();
  return ToolResult(std::move(text), std::move(json));
}

StatusOr<Api::Reply> Api::McpPost(const Params&, const HttpRequest& req, RequestContext& ctx) {
  Reply r;
  // A browser page may not drive a local server's tools (DNS rebinding): an Origin must be
  // this machine or one the config allows.
  if (const std::string origin = req.Header("origin"); !origin.empty()) {
    const std::string host = OriginHost(origin);
    const auto& allowed = options_.mcp.allowed_origins;
    if (host != "localhost" && host != "127.0.0.1" && host != "[::1]" &&
        std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
      return InvalidArgument("Origin " + origin + " may not use /mcp (mcp.allowed_origins lists those that may)",
                             "permission_denied");
    }
  }
  if (const std::string v = req.Header("mcp-protocol-version"); !v.empty() && !Supported(v)) {
    return InvalidArgument("MCP-Protocol-Version " + v + " is not supported; this server speaks 2025-06-18",
                           "invalid_header");
  }
  // The reply's form: JSON, or one SSE event for a client that accepts only a stream.
  const std::string accept = req.Header("accept");
  const bool json_ok =
      accept.empty() || accept.find("application/json") != std::string::npos || accept.find("*/*") != std::string::npos;
  const bool sse_ok = accept.find("text/event-stream") != std::string::npos;
  if (!json_ok && !sse_ok) {
    return InvalidArgument("/mcp answers application/json or text/event-stream; Accept allows neither",
                           "not_acceptable");
  }
  const auto reply = [&](Json message) -> StatusOr<Reply> {
    if (json_ok) {
      r.json = std::move(message);
    } else {
      r.content_type = "text/event-stream";
      r.raw = "event: message\ndata: " + message.Dump() + "\n\n";
    }
    return r;
  };
  auto parsed = ParseJson(req.body);
  if (!parsed.ok()) {
    r.status = 400;
    return reply(RpcError(Json(), kParseError, parsed.status().message()));
  }
  const Json& msg = *parsed;
  if (msg.is_array()) {
    r.status = 400;
    return reply(RpcError(Json(), kInvalidRequest, "JSON-RPC batches are not part of protocol 2025-06-18"));
  }
  const Json* method = msg.Find("method");
  const Json* id = msg.Find("id");
  if (!msg.is_object() || (method == nullptr && id == nullptr)) {
    r.status = 400;
    return reply(RpcError(Json(), kInvalidRequest, "a JSON-RPC 2.0 request, notification or response is expected"));
  }
  const int64_t now = clock_->NowNanos();
  const std::string session = req.Header("mcp-session-id");
  const bool initialize = method != nullptr && method->is_string() && method->as_string() == "initialize";
  if (!initialize) {
    if (session.empty()) {
      r.status = 400;
      return reply(
          RpcError(id != nullptr ? *id : Json(), kInvalidRequest, "Mcp-Session-Id is required: send initialize first"));
    }
    MutexLock lock(&mcp_->mu);
    auto it = mcp_->sessions.find(session);
    if (it == mcp_->sessions.end() || now - it->second > kSessionIdleNs) {
      if (it != mcp_->sessions.end()) mcp_->sessions.erase(it);
      r.status = 404;
      return reply(RpcError(id != nullptr ? *id : Json(), kInvalidRequest,
                            "unknown or expired MCP session; initialize a new one"));
    }
    it->second = now;
  }
  // Notifications and the client's responses need no answer.
  if (method == nullptr || id == nullptr) {
    r.status = 202;
    r.content_type = "text/plain";
    r.raw = "";
    return r;
  }
  if (!method->is_string()) return reply(RpcError(*id, kInvalidRequest, "'method' must be a string"));
  const std::string& m = method->as_string();
  const Json* params = msg.Find("params");
  if (m == "initialize") {
    const Json* asked = params != nullptr ? params->Find("protocolVersion") : nullptr;
    const std::string version =
        asked != nullptr && asked->is_string() && Supported(asked->as_string()) ? asked->as_string() : "2025-06-18";
    const std::string sid = NewSessionId();
    {
      MutexLock lock(&mcp_->mu);
      if (mcp_->sessions.size() >= kMaxSessions) {
        // Full: the expired go first, then the longest idle.
        std::erase_if(mcp_->sessions, [now](const auto& s) { return now - s.second > kSessionIdleNs; });
        if (mcp_->sessions.size() >= kMaxSessions) {
          auto oldest = std::min_element(mcp_->sessions.begin(), mcp_->sessions.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; });
          mcp_->sessions.erase(oldest);
        }
      }
      mcp_->sessions[sid] = now;
    }
    ctx.reply_headers.emplace_back("Mcp-Session-Id", sid);
    Json result = Json::MakeObject();
    result["protocolVersion"] = version;
    result["capabilities"]["tools"]["listChanged"] = false;
    result["serverInfo"]["name"] = "contextd";
    result["serverInfo"]["title"] = "contextd context engine";
    result["serverInfo"]["version"] = "0.1.0";
    result["instructions"] =
        "contextd holds collections of documents. Use contextd-find to search one, contextd-context to get cited "
        "context for a prompt within a token budget, and contextd-list-collections to see what exists.";
    return reply(RpcResult(*id, std::move(result)));
  }
  if (m == "ping") return reply(RpcResult(*id, Json::MakeObject()));
  if (m == "tools/list") {
    Json result = Json::MakeObject();
    result["tools"] = McpTools();
    return reply(RpcResult(*id, std::move(result)));
  }
  if (m == "tools/call") {
    const Json* tool = params != nullptr ? params->Find("name") : nullptr;
    const Json* args = params != nullptr ? params->Find("arguments") : nullptr;
    if (tool == nullptr || !tool->is_string()) return reply(RpcError(*id, kInvalidParams, "'name' names the tool"));
    if (args != nullptr && !args->is_object()) {
      return reply(RpcError(*id, kInvalidParams, "'arguments' must be an object"));
    }
    StatusOr<Json> result = McpCallTool(tool->as_string(), args != nullptr ? *args : Json::MakeObject(), req, ctx);
    if (!result.ok() && ErrorCode(result.status()) == "no_route") {
      return reply(RpcError(*id, kInvalidParams, result.status().message()));
    }
    if (!result.ok()) {
      // The model sees what was wrong and may correct its call.
      return reply(RpcResult(
          *id, ToolResult(ErrorCode(result.status()) + ": " + result.status().message(), Json(), /*is_error=*/true)));
    }
    return reply(RpcResult(*id, std::move(result).value()));
  }
  return reply(RpcError(*id, kMethodNotFound, "method '" + m + "' is not served here"));
}

StatusOr<Api::Reply> Api::McpDelete(const Params&, const HttpRequest& req, RequestContext&) {
  const std::string session = req.Header("mcp-session-id");
  if (session.empty()) return InvalidArgument("Mcp-Session-Id names the session to end", "invalid_header");
  MutexLock lock(&mcp_->mu);
  if (mcp_->sessions.erase(session) == 0) return NotFound("no MCP session " + session, "not_found");
  Reply r;
  r.json["deleted"] = session;
  return r;
}

}  // namespace contextd

#include "index/filter.h"

namespace contextd {

struct Filter::Node {
  enum class Op { kAnd, kOr, kEq, kNe, kIn, kNin, kGt, kGte, kLt, kLte };
  Op op;
  std::vector<std::string> path;                // field path for comparisons
  Json value;                                   // operand for comparisons
  std::vector<std::unique_ptr<Node>> children;  // for kAnd / kOr
};

namespace {

using Node = Filter::Node;
using Op = Node::Op;

Status Bad(const std::string& msg) { return InvalidArgument("filter: " + msg, "invalid_filter"); }

std::vector<std::string> SplitPath(const std::string& field) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t dot = field.find('.', pos);
    parts.push_back(field.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return parts;
}

bool IsScalar(const Json& v) { return v.is_string() || v.is_number() || v.is_bool() || v.is_null(); }

StatusOr<std::unique_ptr<Node>> ParseObject(const Json& spec, int depth);

StatusOr<std::unique_ptr<Node>> ParseField(const std::string& field, const Json& cond) {
  if (field.empty()) return Bad("empty field name");
  auto path = SplitPath(field);
  auto leaf = [&](Op op, const Json& value) {
    auto n = std::make_unique<Node>();
    n->op = op;
    n->path = path;
    n->value = value;
    return n;
  };
  // An object whose keys all start with '$' is an operator set; anything else is an
  // implicit equality.
  bool operators = cond.is_object() && !cond.as_object().empty();
  if (operators) {
    for (const auto& [k, v] : cond.as_object()) operators &= !k.empty() && k[0] == '$';
  }
  if (!operators) {
    if (!IsScalar(cond)) return Bad("value for '" + field + "' must be a scalar or an operator object");
    return leaf(Op::kEq, cond);
  }
  auto all = std::make_unique<Node>();
  all->op = Op::kAnd;
  for (const auto& [k, v] : cond.as_object()) {
    Op op;
    if (k == "$eq")
      op = Op::kEq;
    else if (k == "$ne")
      op = Op::kNe;
    else if (k == "$in")
      op = Op::kIn;
    else if (k == "$nin")
      op = Op::kNin;
    else if (k == "$gt")
      op = Op::kGt;
    else if (k == "$gte")
      op = Op::kGte;
    else if (k == "$lt")
      op = Op::kLt;
    else if (k == "$lte")
      op = Op::kLte;
    else
      return Bad("unknown operator '" + k + "' on field '" + field + "'");
    if (op == Op::kIn || op == Op::kNin) {
      if (!v.is_array()) return Bad(k + " on '" + field + "' needs an array");
      for (const auto& e : v.as_array()) {
        if (!IsScalar(e)) return Bad(k + " on '" + field + "' takes scalars only");
      }
    } else if (op == Op::kEq || op == Op::kNe) {
      if (!IsScalar(v)) return Bad(k + " on '" + field + "' needs a scalar");
    } else if (!v.is_number() && !v.is_string()) {
      return Bad(k + " on '" + field + "' needs a number or a string");
    }
    all->children.push_back(leaf(op, v));
  }
  if (all->children.size() == 1) return std::move(all->children[0]);
  return all;
}

StatusOr<std::unique_ptr<Node>> ParseLogical(Op op, const std::string& name, const Json& arg, int depth) {
  if (!arg.is_array() || arg.as_array().empty()) return Bad(name + " needs a non-empty array");
  auto n = std::make_unique<Node>();
  n->op = op;
  for (const auto& child : arg.as_array()) {
    CTX_ASSIGN_OR_RETURN(auto c, ParseObject(child, depth + 1));
    n->children.push_back(std::move(c));
  }
  return n;
}

StatusOr<std::unique_ptr<Node>> ParseObject(const Json& spec, int depth) {
  if (depth > 32) return Bad("nested too deeply");
  if (!spec.is_object()) return Bad("expected an object, got " + std::string(JsonTypeName(spec)));
  auto all = std::make_unique<Node>();
  all->op = Op::kAnd;
  for (const auto& [k, v] : spec.as_object()) {
    std::unique_ptr<Node> child;
    if (k == "$and" || k == "$or") {
      CTX_ASSIGN_OR_RETURN(child, ParseLogical(k == "$and" ? Op::kAnd : Op::kOr, k, v, depth));
    } else if (!k.empty() && k[0] == '$') {
      return Bad("unknown top-level operator '" + k + "'");
    } else {
      CTX_ASSIGN_OR_RETURN(child, ParseField(k, v));
    }
    all->children.push_back(std::move(child));
  }
  if (all->children.size() == 1) return std::move(all->children[0]);
  return all;
}

const Json* Lookup(const Json& metadata, const std::vector<std::string>& path) {
  const Json* cur = &metadata;
  for (const auto& p : path) {
    cur = cur->Find(p);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

// -1, 0, 1, or 2 when the values are not comparable.
int Compare(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return 2;
}

// Equality that also matches an element of an array-valued field ({"tags": "x"} matches
// "tags": ["x", "y"]), as MongoDB and Chroma do.
bool EqualsOrContains(const Json& field, const Json& value) {
  if (field == value) return true;
  if (field.is_array()) {
    for (const auto& e : field.as_array()) {
      if (e == value) return true;
    }
  }
  return false;
}

bool Eval(const Node& n, const Json& metadata) {
  switch (n.op) {
    case Op::kAnd:
      for (const auto& c : n.children) {
        if (!Eval(*c, metadata)) return false;
      }
      return true;
    case Op::kOr:
      for (const auto& c : n.children) {
        if (Eval(*c, metadata)) return true;
      }
      return false;
    default:
      break;
  }
  const Json* field = Lookup(metadata, n.path);
  switch (n.op) {
    case Op::kEq:
      return field != nullptr && EqualsOrContains(*field, n.value);
    case Op::kNe:
      return field == nullptr || !EqualsOrContains(*field, n.value);
    case Op::kIn:
    case Op::kNin: {
      bool found = false;
      if (field != nullptr) {
        for (const auto& v : n.value.as_array()) {
          if (EqualsOrContains(*field, v)) {
            found = true;
            break;
          }
        }
      }
      return n.op == Op::kIn ? found : !found;
    }
    default:
      break;
  }
  if (field == nullptr) return false;
  int c = Compare(*field, n.value);
  if (c == 2) return false;
  switch (n.op) {
    case Op::kGt:
      return c > 0;
    case Op::kGte:
      return c >= 0;
    case Op::kLt:
      return c < 0;
    case Op::kLte:
      return c <= 0;
    default:
      return false;
  }
}

SlotBitset Select(const Node& n, const PayloadIndex& index) {
  SlotBitset out(index.universe());
  switch (n.op) {
    case Op::kAnd:
    case Op::kOr:
      for (size_t i = 0; i < n.children.size(); ++i) {
        SlotBitset child = Select(*n.children[i], index);
        if (i == 0) {
          out = std::move(child);
        } else if (n.op == Op::kAnd) {
          out.And(child);
        } else {
          out.Or(child);
        }
      }
      return out;
    default:
      break;
  }
  const std::string path = PayloadIndex::PathKey(n.path);
  switch (n.op) {
    case Op::kEq:
    case Op::kNe:
      index.Equal(path, n.value, &out);
      break;
    case Op::kIn:
    case Op::kNin:
      for (const auto& v : n.value.as_array()) index.Equal(path, v, &out);
      break;
    case Op::kGt:
    case Op::kGte:
      index.Range(path, &n.value, n.op == Op::kGte, nullptr, false, &out);
      break;
    case Op::kLt:
    case Op::kLte:
      index.Range(path, nullptr, false, &n.value, n.op == Op::kLte, &out);
      break;
    default:
      break;
  }
  if (n.op == Op::kNe || n.op == Op::kNin) {  // everything else, the field's absence included
    SlotBitset rest = index.all();
    rest.AndNot(out);
    return rest;
  }
  return out;
}

}  // namespace

SlotBitset Filter::Select(const PayloadIndex& index) const {
  if (root_ == nullptr) return index.all();
  return contextd::Select(*root_, index);
}

StatusOr<Filter> Filter::Parse(const Json& spec) {
  Filter f;
  if (spec.is_null()) return f;
  if (spec.is_object() && spec.as_object().empty()) return f;
  CTX_ASSIGN_OR_RETURN(auto root, ParseObject(spec, 0));
  f.root_ = std::shared_ptr<const Node>(std::move(root));
  return f;
}

bool Filter::Matches(const Json& metadata) const { return root_ == nullptr || Eval(*root_, metadata); }

}  // namespace contextd

// Filter: metadata predicates in the Mongo/Chroma style.
//
//   {"year": 2024}                         implicit $eq
//   {"year": {"$gte": 2020, "$lt": 2025}}  several operators on one field all apply
//   {"$and": [...]}, {"$or": [...]}        nesting to any depth
//   operators: $eq $ne $in $nin $gt $gte $lt $lte
//
// Field names may be dotted paths into nested objects ("author.name"). Comparisons order
// numbers with numbers and strings with strings; a value of another type never matches
// $gt/$gte/$lt/$lte. Following MongoDB, $ne and $nin match documents that lack the field.
//
// Thread safety: immutable after Parse(); safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "index/payload_index.h"
#include "index/slot_bitset.h"

namespace contextd {

class Filter {
 public:
  // Parses a filter object; InvalidArgument (reason "invalid_filter") naming what is wrong.
  static StatusOr<Filter> Parse(const Json& spec);

  // One document's metadata against the filter: the definition Select() must agree with
  // (and is tested against); searches use Select().
  bool Matches(const Json& metadata) const;
  bool empty() const { return root_ == nullptr; }
  // The slots of `index` that match, by set operations over its posting lists: the same
  // answer as Matches() on each slot's metadata, without reading any of it.
  SlotBitset Select(const PayloadIndex& index) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace contextd

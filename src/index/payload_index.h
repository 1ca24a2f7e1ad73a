// PayloadIndex: inverted indexes over metadata, so a filter becomes a SlotBitset by set
// operations over posting lists instead of a JSON walk per chunk (Qdrant's payload
// indexes). Every scalar at every object path is indexed, with no schema to declare:
//
//   equality: (path, value) -> slots, where array-valued fields post each element, which is
//             how Filter matches {"tags": "x"} against "tags": ["x", "y"];
//   ranges:   path -> ordered numbers -> slots, and path -> ordered strings -> slots, for
//             scalar fields only (Filter never range-matches an array).
//
// Paths are object keys each led by '\0' (keys may themselves contain dots; a '\0' or '\1'
// in a key is escaped). Numbers that are whole are keyed as integers, so 1 and 1.0 are one
// value, as in Json::operator==.
//
// Thread safety: none; the owner serialises writers against readers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "index/slot_bitset.h"

namespace contextd {

class PayloadIndex {
 public:
  // Indexes `metadata` under `slot`. A slot holds one metadata object at a time: Remove()
  // it (with the same metadata) before adding it again.
  void Add(uint32_t slot, const Json& metadata);
  void Remove(uint32_t slot, const Json& metadata);

  // Every indexed slot, whatever its metadata ($ne and $nin complement against it).
  const SlotBitset& all() const { return all_; }
  // Slots are valid below this bound; bitsets handed to the methods below have this universe.
  size_t universe() const { return all_.universe(); }

  // Adds to *out the slots whose field at `path` equals `value` or, for array fields, has
  // an element equal to it. value: a scalar.
  void Equal(const std::string& path, const Json& value, SlotBitset* out) const;
  // Adds to *out the slots whose scalar field at `path` lies in the range; `lo`/`hi` are
  // null for an open end and otherwise of the same type (number or string).
  void Range(const std::string& path, const Json* lo, bool lo_inclusive, const Json* hi, bool hi_inclusive,
             SlotBitset* out) const;

  size_t memory_bytes() const { return bytes_; }

  // The path key for a sequence of object keys.
  static std::string PathKey(const std::vector<std::string>& keys);
  // Appends one object key to a path key.
  static void AppendPathKey(std::string_view key, std::string* path);

 private:
  using Postings = std::vector<uint32_t>;  // sorted slots
  struct Field {
    std::unordered_map<std::string, Postings> equal;  // by ValueKey()
    std::map<double, Postings> numbers;
    std::map<std::string, Postings> strings;
  };

  void Walk(uint32_t slot, const Json& value, std::string* path, bool add);
  void Post(uint32_t slot, const std::string& path, const Json& scalar, bool in_array, bool add);
  template <typename Map, typename Key>
  void Update(Map* map, const Key& key, uint32_t slot, bool add);

  std::unordered_map<std::string, Field> fields_;
  SlotBitset all_;
  size_t bytes_ = 0;
};

}  // namespace contextd

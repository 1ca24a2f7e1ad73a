#include "index/payload_index.h"

#include <algorithm>
#include <cstring>

namespace contextd {
namespace {

// One key per distinct scalar under Json::operator== (whole doubles meet their integers).
std::string ValueKey(const Json& v) {
  if (v.is_string()) return "s" + v.as_string();
  if (v.is_bool()) return v.as_bool() ? "t" : "f";
  if (v.is_null()) return "n";
  if (v.is_int()) return "i" + std::to_string(v.as_int());
  const double d = v.as_double();
  // Whole doubles in int64's range meet their integers exactly (Json::operator==).
  if (int64_t whole = 0; WholeInt64(d, &whole)) return "i" + std::to_string(whole);
  std::string key = "d";
  key.append(reinterpret_cast<const char*>(&d), sizeof(d));
  return key;
}

void SetAll(const std::vector<uint32_t>& slots, SlotBitset* out) {
  for (uint32_t s : slots) out->Set(s);
}

}  // namespace

std::string PayloadIndex::PathKey(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) AppendPathKey(keys[i], &out);
  return out;
}

void PayloadIndex::AppendPathKey(std::string_view key, std::string* path) {
  // Every key starts with '\0', the first too: an empty first key ("" then "tag") must not
  // read as "tag". A key may hold '\0' itself ("a\u0000b"): escaped, so it never reads as
  // two keys.
  path->push_back('\0');
  for (char c : key) {
    if (c == '\0' || c == '\1') {
      path->push_back('\1');
      path->push_back(c == '\0' ? '\2' : '\3');
    } else {
      path->push_back(c);
    }
  }
}

template <typename Map, typename Key>
void PayloadIndex::Update(Map* map, const Key& key, uint32_t slot, bool add) {
  if (add) {
    Postings& p = (*map)[key];
    auto it = std::lower_bound(p.begin(), p.end(), slot);
    if (it != p.end() && *it == slot) return;  // an array listing the value twice
    const size_t before = p.capacity();
    p.insert(it, slot);
    bytes_ += (p.capacity() - before) * sizeof(uint32_t);
    return;
  }
  auto found = map->find(key);
  if (found == map->end()) return;
  Postings& p = found->second;
  auto it = std::lower_bound(p.begin(), p.end(), slot);
  if (it == p.end() || *it != slot) return;
  p.erase(it);
  if (p.empty()) {
    bytes_ -= p.capacity() * sizeof(uint32_t);
    map->erase(found);
  }
}

void PayloadIndex::Post(uint32_t slot, const std::string& path, const Json& scalar, bool in_array, bool add) {
  Field& f = fields_[path];
  Update(&f.equal, ValueKey(scalar), slot, add);
  if (in_array) return;  // ranges never match array fields
  if (scalar.is_number()) Update(&f.numbers, scalar.as_double(), slot, add);
  if (scalar.is_string()) Update(&f.strings, scalar.as_string(), slot, add);
}

void PayloadIndex::Walk(uint32_t slot, const Json& value, std::string* path, bool add) {
  if (value.is_object()) {
    for (const auto& member : value.as_object()) {
      // Filter looks fields up with Find(), which sees the first of duplicate keys only.
      if (value.Find(member.first) != &member.second) continue;
      const size_t len = path->size();
      AppendPathKey(member.first, path);
      Walk(slot, member.second, path, add);
      path->resize(len);
    }
    return;
  }
  if (path->empty()) return;  // metadata itself is not an object
  if (value.is_array()) {
    for (const auto& e : value.as_array()) {
      if (!e.is_array() && !e.is_object()) Post(slot, *path, e, /*in_array=*/true, add);
    }
    return;
  }
  Post(slot, *path, value, /*in_array=*/false, add);
}

void PayloadIndex::Add(uint32_t slot, const Json& metadata) {
  if (slot >= all_.universe()) all_.Resize(std::max<size_t>(slot + 1, all_.universe() * 2));
  all_.Set(slot);
  std::string path;
  Walk(slot, metadata, &path, /*add=*/true);
}

void PayloadIndex::Remove(uint32_t slot, const Json& metadata) {
  if (!all_.Test(slot)) return;
  all_.Clear(slot);
  std::string path;
  Walk(slot, metadata, &path, /*add=*/false);
}

void PayloadIndex::Equal(const std::string& path, const Json& value, SlotBitset* out) const {
  auto f = fields_.find(path);
  if (f == fields_.end()) return;
  auto p = f->second.equal.find(ValueKey(value));
  if (p != f->second.equal.end()) SetAll(p->second, out);
}

namespace {

template <typename Map, typename Key>
void RangeOf(const Map& map, const Key* lo, bool lo_inclusive, const Key* hi, bool hi_inclusive, SlotBitset* out) {
  auto it = lo == nullptr ? map.begin() : (lo_inclusive ? map.lower_bound(*lo) : map.upper_bound(*lo));
  auto end = hi == nullptr ? map.end() : (hi_inclusive ? map.upper_bound(*hi) : map.lower_bound(*hi));
  // An empty range (lo above hi) leaves `it` past `end`; the comparison stops it at once.
  for (; it != end && it != map.end(); ++it) {
    if (hi != nullptr && (hi_inclusive ? *hi < it->first : !(it->first < *hi))) break;
    SetAll(it->second, out);
  }
}

}  // namespace

void PayloadIndex::Range(const std::string& path, const Json* lo, bool lo_inclusive, const Json* hi, bool hi_inclusive,
                         SlotBitset* out) const {
  auto f = fields_.find(path);
  if (f == fields_.end()) return;
  const Json* bound = lo != nullptr ? lo : hi;
  if (bound == nullptr) return;
  if (bound->is_number()) {
    double l = lo ? lo->as_double() : 0, h = hi ? hi->as_double() : 0;
    RangeOf(f->second.numbers, lo ? &l : nullptr, lo_inclusive, hi ? &h : nullptr, hi_inclusive, out);
  } else if (bound->is_string()) {
    const std::string* l = lo ? &lo->as_string() : nullptr;
    const std::string* h = hi ? &hi->as_string() : nullptr;
    RangeOf(f->second.strings, l, lo_inclusive, h, hi_inclusive, out);
  }
}

}  // namespace contextd

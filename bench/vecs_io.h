// Readers for the TEXMEX vector formats used by ANN benchmarks: each record is a little-
// endian int32 dimension followed by that many float32 (fvecs) or int32 (ivecs) values.
#pragma once

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace contextd {

struct VecSet {
  size_t n = 0;
  size_t dim = 0;
  std::vector<float> data;  // n * dim
  const float* row(size_t i) const { return &data[i * dim]; }
};

inline VecSet ReadFvecs(const std::string& path) {
  VecSet s;
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return s;
  int32_t d;
  std::vector<float> row;
  while (fread(&d, 4, 1, f) == 1) {
    row.resize(static_cast<size_t>(d));
    if (fread(row.data(), 4, row.size(), f) != row.size()) break;
    s.dim = static_cast<size_t>(d);
    s.data.insert(s.data.end(), row.begin(), row.end());
    ++s.n;
  }
  fclose(f);
  return s;
}

inline std::vector<std::vector<int>> ReadIvecs(const std::string& path) {
  std::vector<std::vector<int>> out;
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return out;
  int32_t d;
  while (fread(&d, 4, 1, f) == 1) {
    std::vector<int> row(static_cast<size_t>(d));
    if (fread(row.data(), 4, row.size(), f) != row.size()) break;
    out.push_back(std::move(row));
  }
  fclose(f);
  return out;
}

inline std::vector<int> ParseList(const std::string& csv) {
  std::vector<int> out;
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace contextd

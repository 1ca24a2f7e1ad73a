// The load test's chart as a PNG: series drawn as polylines on a white canvas, encoded with
// zlib (PNG's deflate and CRC-32), no image library.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "loadtest/loadtest.h"

namespace contextd {

namespace {

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;
  Canvas(int width, int height) : w(width), h(height), rgb(static_cast<size_t>(width * height * 3), 255) {}
  void Dot(int x, int y, std::array<uint8_t, 3> c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    std::memcpy(&rgb[static_cast<size_t>((y * w + x) * 3)], c.data(), 3);
  }
  // Bresenham, two pixels thick.
  void Line(int x0, int y0, int x1, int y1, std::array<uint8_t, 3> c) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      Dot(x0, y0, c);
      Dot(x0, y0 + 1, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
};

void Chunk(const char* type, const std::string& data, std::string* out) {
  const uint32_t len = static_cast<uint32_t>(data.size());
  const unsigned char be[4] = {static_cast<unsigned char>(len >> 24), static_cast<unsigned char>(len >> 16),
                               static_cast<unsigned char>(len >> 8), static_cast<unsigned char>(len)};
  out->append(reinterpret_cast<const char*>(be), 4);
  std::string body = std::string(type, 4) + data;
  out->append(body);
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  const unsigned char c[4] = {static_cast<unsigned char>(crc >> 24), static_cast<unsigned char>(crc >> 16),
                              static_cast<unsigned char>(crc >> 8), static_cast<unsigned char>(crc)};
  out->append(reinterpret_cast<const char*>(c), 4);
}

std::string EncodePng(const Canvas& c) {
  std::string raw;
  raw.reserve(static_cast<size_t>((c.w * 3 + 1) * c.h));
  for (int y = 0; y < c.h; ++y) {
    raw.push_back('\0');  // filter: none
    raw.append(reinterpret_cast<const char*>(&c.rgb[static_cast<size_t>(y * c.w * 3)]), static_cast<size_t>(c.w * 3));
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string z(size, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            static_cast<uLong>(raw.size()), 6);
  z.resize(size);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr(13, '\0');
  for (int i = 0; i < 4; ++i) {
    ihdr[static_cast<size_t>(i)] = static_cast<char>((c.w >> (24 - 8 * i)) & 255);
    ihdr[static_cast<size_t>(4 + i)] = static_cast<char>((c.h >> (24 - 8 * i)) & 255);
  }
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // truecolour
  Chunk("IHDR", ihdr, &png);
  Chunk("IDAT", z, &png);
  Chunk("IEND", "", &png);
  return png;
}

}  // namespace

std::string RenderChartPng(const LoadReport& report, int width, int height) {
  Canvas canvas(width, height);
  const int left = 40, right = width - 20, top = 20, bottom = height - 30;
  for (int x = left; x <= right; ++x) canvas.Dot(x, bottom, {120, 120, 120});
  for (int y = top; y <= bottom; ++y) canvas.Dot(left, y, {120, 120, 120});
  const auto& s = report.series;
  if (s.size() < 2) return EncodePng(canvas);
  // offered, ok, errors, p50, p99: each scaled to its own maximum.
  static constexpr std::array<uint8_t, 3> kColours[5] = {
      {40, 90, 220}, {30, 160, 60}, {0, 0, 0}, {240, 150, 20}, {220, 30, 30}};
  for (int series = 0; series < 5; ++series) {
    double max = 0;
    for (const auto& row : s) max = std::max(max, row[static_cast<size_t>(series)]);
    if (max <= 0) continue;
    int px = -1, py = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      const int x =
          left + static_cast<int>(static_cast<double>(i) * (right - left) / static_cast<double>(s.size() - 1));
      const int y = bottom - static_cast<int>(s[i][static_cast<size_t>(series)] / max * (bottom - top));
      if (px >= 0) canvas.Line(px, py, x, y, kColours[series]);
      px = x;
      py = y;
    }
  }
  return EncodePng(canvas);
}

}  // namespace contextd

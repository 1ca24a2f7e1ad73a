// The encoder's reference fixture (tests/fixtures/encoder_reference.json, written by
// scripts/make_encoder_fixtures.py), shared by the tokenizer and encoder tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/json.h"

namespace contextd {

inline Json LoadEncoderReference() {
  std::ifstream in(std::string(CONTEXTD_FIXTURES_DIR) + "/encoder_reference.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = ParseJson(ss.str());
  EXPECT_TRUE(j.ok()) << "tests/fixtures/encoder_reference.json is missing or malformed";
  return j.ok() ? *j : Json();
}

}  // namespace contextd

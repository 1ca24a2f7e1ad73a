// Runs a node:test file of tests/js (the real npm clients, installed by scripts/setup)
// against a running server, and expects every one of its cases to pass.
#pragma once

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "test_util.h"

namespace contextd {

// env: "NAME=value ..." for the test file; package: the npm package it needs (its absence
// fails with a pointer to scripts/setup); flags: node's own.
inline void ExpectNodeTestsPass(const std::string& file, const std::string& env, int cases, const std::string& package,
                                const std::string& flags = "") {
  const std::string dir = std::string(CONTEXTD_SOURCE_DIR) + "/tests/js";
  ASSERT_TRUE(std::ifstream(dir + "/node_modules/" + package + "/package.json").good())
      << "the npm packages are missing; scripts/setup installs them into " << dir;
  int rc = 0;
  const std::string out =
      RunShell("cd " + dir + " && " + env + " node " + flags + " --test --test-reporter=tap " + file, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("# pass " + std::to_string(cases) + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# fail 0"), std::string::npos) << out;
}

}  // namespace contextd

// The shard map: who holds each shard follows from the data nodes and the copies wanted,
// the same on every node, and a change of nodes moves only the copies it must.
#include "cluster/shard_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace contextd {
namespace {

ShardMap Map(std::vector<std::string> nodes, int replicas) {
  ShardMap m;
  m.epoch = 1;
  m.replicas = replicas;
  m.nodes = std::move(nodes);
  std::sort(m.nodes.begin(), m.nodes.end());
  return m;
}

TEST(ShardMapTest, HoldersAreDistinctAsManyAsTheCopiesAndTheSameForEveryone) {
  const ShardMap m = Map({"n1", "n2", "n3", "n4"}, 2);
  std::map<std::string, int> held;
  for (uint32_t shard = 0; shard < 400; ++shard) {
    const auto h = m.Holders("acme", 7, shard);
    ASSERT_EQ(h.size(), 2u);
    EXPECT_NE(h[0], h[1]);
    EXPECT_EQ(h, Map({"n4", "n3", "n2", "n1"}, 2).Holders("acme", 7, shard)) << "independent of the listing order";
    for (const auto& n : h) ++held[n];
  }
  // Spread: each node holds about half the shards' copies (800 copies over 4 nodes).
  for (const auto& [node, count] : held) {
    EXPECT_GT(count, 140) << node;
    EXPECT_LT(count, 260) << node;
  }
  EXPECT_NE(m.Holders("acme", 7, 1), m.Holders("acme", 8, 1)) << "another collection, another placement (mostly)";
  EXPECT_EQ(Map({"n1"}, 3).Holders("t", 1, 0), std::vector<std::string>{"n1"}) << "no more copies than nodes";
}

TEST(ShardMapTest, ANodeLeavingOrJoiningMovesOnlyTheCopiesItLosesOrGains) {
  const ShardMap four = Map({"n1", "n2", "n3", "n4"}, 2);
  const ShardMap three = Map({"n1", "n2", "n3"}, 2);
  size_t moved = 0;
  for (uint32_t shard = 0; shard < 300; ++shard) {
    const auto before = four.Holders("t", 3, shard);
    const auto after = three.Holders("t", 3, shard);
    for (const auto& h : before) {
      if (h != "n4") {
        EXPECT_NE(std::find(after.begin(), after.end(), h), after.end()) << "shard " << shard << " left " << h;
      }
    }
    moved += std::find(before.begin(), before.end(), "n4") != before.end();
  }
  EXPECT_GT(moved, 100u) << "n4 held its share, and only those copies moved";
}

TEST(ShardMapTest, RoundTripsAndRefusesMalformedMaps) {
  const ShardMap m = Map({"a", "b"}, 2);
  auto back = ShardMap::Decode(m.Encode());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->epoch, 1u);
  EXPECT_EQ(back->replicas, 2);
  EXPECT_EQ(back->nodes, m.nodes);
  EXPECT_TRUE(back->Contains("a"));
  EXPECT_FALSE(back->Contains("c"));
  for (const char* bad : {"", "[]", R"({"epoch":1,"replicas":2})", R"({"epoch":-1,"replicas":2,"nodes":[]})",
                          R"({"epoch":1,"replicas":0,"nodes":[]})", R"({"epoch":1,"replicas":2,"nodes":["a","a"]})",
                          R"({"epoch":1,"replicas":2,"nodes":[""]})", R"({"epoch":1,"replicas":2,"nodes":[3]})"}) {
    auto r = ShardMap::Decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().reason(), "invalid_shard_map") << bad;
  }
}

TEST(ShardMapTest, TheNextMapHasANewEpochOnlyWhenTheNodesOrCopiesChange) {
  const ShardMap none;
  const ShardMap first = NextShardMap(none, {"n2", "n1"}, 2);
  EXPECT_EQ(first.epoch, 1u);
  EXPECT_EQ(first.nodes, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(NextShardMap(first, {"n1", "n2", "n1"}, 2).epoch, 1u) << "the same nodes: unchanged";
  EXPECT_EQ(NextShardMap(first, {"n1", "n2", "n3"}, 2).epoch, 2u);
  EXPECT_EQ(NextShardMap(first, {"n1"}, 2).epoch, 2u);
  EXPECT_EQ(NextShardMap(first, {"n1", "n2"}, 3).epoch, 2u);
}

}  // namespace
}  // namespace contextd

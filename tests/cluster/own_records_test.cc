// The upserts a writer keeps to apply as made when their records come back from the log
// (cluster/own_records.h); JetStreamLogTest checks the same through real nats-servers.
#include "cluster/own_records.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace contextd {
namespace {

Mutation Upsert(const std::string& collection) {
  Mutation m;
  m.kind = MutationKind::kUpsertDocuments;
  m.collection = collection;
  m.vectors = {1.0f, 2.0f};
  m.dim = 2;
  return m;
}

std::shared_ptr<const std::string> Bytes(const std::string& s) { return std::make_shared<const std::string>(s); }

TEST(OwnRecordsTest, AnUpsertIsTakenWhenItsOwnBytesComeBack) {
  OwnRecords own;
  Mutation m = Upsert("docs");
  auto bytes = Bytes("record one");
  own.Keep("t:k1", bytes, &m);
  EXPECT_TRUE(m.vectors.empty()) << "the mutation is moved into the keeper";
  EXPECT_EQ(own.size(), 1u);
  EXPECT_EQ(own.Take("t:k2", "record one", nullptr), nullptr) << "another id";
  EXPECT_EQ(own.Take("t:k1", "record one, changed", nullptr), nullptr) << "other bytes under the id";
  EXPECT_EQ(own.taken(), 0u);
  auto mine = own.Take("t:k1", "record one", nullptr);
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->mutation.collection, "docs");
  EXPECT_EQ(mine->mutation.vectors, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(mine->bytes, bytes);
  EXPECT_EQ(own.taken(), 1u);
  EXPECT_EQ(own.size(), 0u);
  EXPECT_EQ(own.Take("t:k1", "record one", nullptr), nullptr) << "taken once (a redelivery decodes)";
}

TEST(OwnRecordsTest, ALargeRecordIsTakenThroughAnIndexOfTheSameSizeAndHash) {
  OwnRecords own;
  Mutation m = Upsert("docs");
  const std::string record(5000, 'x');
  own.Keep("id", Bytes(record), &m);
  RecordIndex index;
  index.size = record.size();
  index.hash = RecordHash(record) ^ 1;
  EXPECT_EQ(own.Take("id", "index bytes", &index), nullptr) << "another record's hash";
  index.hash = RecordHash(record);
  index.size = record.size() + 1;
  EXPECT_EQ(own.Take("id", "index bytes", &index), nullptr) << "another size";
  index.size = record.size();
  EXPECT_NE(own.Take("id", "index bytes", &index), nullptr);
}

TEST(OwnRecordsTest, OnlyUpsertsAreKept) {
  OwnRecords own;
  Mutation m;
  m.kind = MutationKind::kDeleteDocument;
  m.doc_id = "d1";
  own.Keep("id", Bytes("delete"), &m);
  EXPECT_EQ(m.doc_id, "d1") << "left with the writer";
  EXPECT_EQ(own.size(), 0u);
  EXPECT_EQ(own.Take("id", "delete", nullptr), nullptr);
}

TEST(OwnRecordsTest, AConcurrentRetryKeepsTheFirstAndDropsOnlyItsOwn) {
  OwnRecords own;
  Mutation first = Upsert("first"), retry = Upsert("retry");
  auto first_bytes = Bytes("same write"), retry_bytes = Bytes("same write");
  own.Keep("t:key", first_bytes, &first);
  own.Keep("t:key", retry_bytes, &retry);
  EXPECT_EQ(own.size(), 1u);
  own.Drop("t:key", retry_bytes.get());  // the retry's commit returns (a duplicate)
  EXPECT_EQ(own.size(), 1u) << "the first write's record stays";
  auto mine = own.Take("t:key", "same write", nullptr);
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->mutation.collection, "first");
}

TEST(OwnRecordsTest, WhatTheWriterDropsIsNotTaken) {
  OwnRecords own;
  Mutation m = Upsert("docs");
  auto bytes = Bytes("record");
  own.Keep("id", bytes, &m);
  own.Drop("id", bytes.get());  // the publish failed, or the wait timed out
  EXPECT_EQ(own.size(), 0u);
  EXPECT_EQ(own.Take("id", "record", nullptr), nullptr);
  own.Drop("id", bytes.get());  // nothing left: harmless
}

}  // namespace
}  // namespace contextd

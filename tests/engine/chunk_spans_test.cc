// ChunkSpans: chunks found in their document's text are kept as ranges of it, anything
// else as bytes of its own, and every chunk reads back as it was added.
#include "engine/chunk_spans.h"

#include <gtest/gtest.h>

#include "engine/document_table.h"
#include "text/analyzer.h"

namespace contextd {
namespace {

TEST(ChunkSpansTest, ChunksOfTheTextAreSpansAndOthersKeepTheirBytes) {
  const std::string text = "one two three. two three four. one two three.";
  ChunkSpans spans;
  spans.Add(text, "one two three.");
  spans.Add(text, "two three four.");
  spans.Add(text, "one two three.");  // again: its later occurrence, not the first
  spans.Add(text, "five six");
  spans.Add(text, "");
  spans.AddSpan(4, 3);
  ASSERT_EQ(spans.size(), 6u);
  EXPECT_EQ(spans.Get(text, 0), "one two three.");
  EXPECT_EQ(spans.Get(text, 1), "two three four.");
  EXPECT_EQ(spans.Get(text, 2), "one two three.");
  EXPECT_EQ(spans.span_begin(2), 31u);
  EXPECT_EQ(spans.Get(text, 3), "five six");
  EXPECT_EQ(spans.Get(text, 4), "");
  EXPECT_EQ(spans.Get(text, 5), "two");
  EXPECT_TRUE(spans.is_span(0) && spans.is_span(1) && spans.is_span(2) && spans.is_span(5));
  EXPECT_FALSE(spans.is_span(3) || spans.is_span(4));
  EXPECT_EQ(spans.own_bytes(), 8u) << "only the chunk not in the text is copied";

  // A chunk found only before the previous span's start is not taken from there: chunks
  // come in text order, so it is not that occurrence.
  ChunkSpans late;
  late.AddSpan(31, 14);
  late.Add(text, "two three four.");
  EXPECT_FALSE(late.is_span(1));
  EXPECT_EQ(late.Get(text, 1), "two three four.");
}

TEST(ChunkSpansTest, TheDocumentTableHoldsOneTextPerDocumentNotAStringPerChunk) {
  auto analyzer = MakeAnalyzer("english").value();
  DocumentTable table;
  MutationDocument d;
  d.id = "a";
  d.text = "apples grow on trees. pears do too.";
  d.AddChunk("apples grow on trees.");
  d.AddChunk("pears do too.");
  d.AddChunk("a note of its own");
  std::vector<std::string> scratch;
  const TermList terms = DocumentTerms(*analyzer, d, &scratch);
  ASSERT_EQ(terms.runs(), 3u) << "one run of terms per chunk";
  ASSERT_EQ(terms.run(1).size(), 2u) << "'pears do too.', less a stop word";
  EXPECT_EQ(terms.run(1)[0], "pear");
  std::vector<uint32_t> slots;
  for (size_t j = 0; j < d.chunks.size(); ++j) slots.push_back(table.AllocateSlot());
  const size_t before = table.memory_bytes();
  table.Insert(&d, slots.data(), terms);
  const DocumentTable::Document* doc = table.Find("a");
  ASSERT_NE(doc, nullptr);
  EXPECT_EQ(table.chunk(slots[0]).text(), "apples grow on trees.");
  EXPECT_EQ(table.chunk(slots[1]).text(), "pears do too.");
  EXPECT_EQ(table.chunk(slots[2]).text(), "a note of its own");
  // The chunks cut from the text point into the document's one copy of it.
  EXPECT_EQ(table.chunk(slots[1]).text().data(), doc->text.data() + 22);
  EXPECT_GE(table.memory_bytes() - before, doc->text.size() + 17);

  EXPECT_TRUE(table.Remove("a", [](uint32_t) {}));
  EXPECT_FALSE(table.live(slots[0]));
}

}  // namespace
}  // namespace contextd

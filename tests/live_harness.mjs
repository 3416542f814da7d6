// Runs the book's live modules (book/live/*.js) in Node for tests/test_live.py.
//
// Usage: node tests/live_harness.mjs MANIFEST < requests.json > answers.json
// Each request is {"op": ..., ...}; each answer is its result, or {"error": message}.

import { readFileSync } from "node:fs";
import { Cache, decode, encode, forward, modelFromBuffer } from "../book/live/model.js";
import { Generator } from "../book/live/random.js";
import { filteredProbs, generate } from "../book/live/sampling.js";

const manifestPath = process.argv[2];
const manifest = JSON.parse(readFileSync(manifestPath, "utf-8"));
const bytes = readFileSync(new URL(manifest.weights.file, `file://${manifestPath}`));
const model = modelFromBuffer(manifest, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));

const ops = {
  // The logits and trace after `prompt`, read in pieces of `chunks` tokens (one piece by default).
  forward({ prompt, chunks = null }) {
    const ids = encode(model, prompt);
    const cache = new Cache(model.config);
    let result;
    for (let start = 0; start < ids.length; start += chunks ?? ids.length) {
      result = forward(model, ids.slice(start, start + (chunks ?? ids.length)), cache, { trace: true });
    }
    const trace = [...result.trace].map(([name, { value, shape }]) => [name, shape, Array.from(value)]);
    return { logits: Array.from(result.logits), trace };
  },
  filtered: ({ logits, temperature, topK, topP }) => Array.from(filteredProbs(Float64Array.from(logits), { temperature, topK, topP })),
  random({ seed, n }) {
    const rng = new Generator(BigInt(seed));
    return Array.from({ length: n }, () => rng.random());
  },
  generate({ prompt, n, seed, temperature, topK, topP }) {
    const ids = encode(model, prompt);
    return prompt + decode(model, [...generate(model, ids, n, new Generator(seed), { temperature, topK, topP })]);
  },
  encode: ({ text }) => encode(model, text),
};

const requests = JSON.parse(readFileSync(0, "utf-8"));
const answers = requests.map((request) => {
  try {
    return ops[request.op](request);
  } catch (error) {
    return { error: error.message };
  }
});
process.stdout.write(JSON.stringify(answers));

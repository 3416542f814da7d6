// From logits to a token: lib/sampling.py in JavaScript, rule for rule.
//
// Every filter takes logits and returns new logits, with removed tokens set to -Infinity, and they
// compose in lib's order: temperature, then top-k, then top-p, then softmax and a draw. The edge
// cases are lib's: temperature 0 and top-k 1 are greedy, top-k >= V and top-p 1 change nothing,
// top-p keeps the token that crosses the threshold, and ties rank the lower id first.

import { Cache, forward, softmaxInPlace } from "./model.js";

/** Token ids from most to least likely; equal logits in id order. */
function ranking(logits) {
  return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
}

/** Divide by the temperature; temperature 0 keeps only the most likely token. */
export function applyTemperature(logits, temperature) {
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be >= 0 and finite, got ${temperature}`);
  }
  if (temperature === 0) return topKFilter(logits, 1);
  return logits.map((z) => z / temperature);
}

/** Keep the k largest logits (ties: lower id first); `null` or k >= V keeps everything. */
export function topKFilter(logits, k) {
  if (k === null || k >= logits.length) return logits.slice();
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`top_k must be a positive integer, got ${k}`);
  const out = logits.slice();
  for (const id of ranking(logits).slice(k)) out[id] = -Infinity;
  return out;
}

/** Keep the most likely tokens while the probability ranked above them is below p. */
export function topPFilter(logits, p) {
  if (p === null || p >= 1) return logits.slice();
  if (!(p > 0 && p < 1)) throw new RangeError(`top_p must be in (0, 1], got ${p}`);
  const probs = softmaxInPlace(logits.slice());
  const out = logits.slice();
  let massBefore = 0; // probability of the tokens ranked strictly above this one
  for (const id of ranking(logits)) {
    if (massBefore >= p) out[id] = -Infinity;
    massBefore += probs[id];
  }
  return out;
}

/** The distribution a token is drawn from: temperature, top-k, top-p, then softmax. */
export function filteredProbs(logits, { temperature = 1, topK = null, topP = null } = {}) {
  const z = topPFilter(topKFilter(applyTemperature(logits, temperature), topK), topP);
  return softmaxInPlace(z);
}

/** Index of the largest logit (the first one among ties). */
const argmax = (logits) => logits.reduce((best, z, i) => (z > logits[best] ? i : best), 0);

/**
 * Draw the next token id as lib's `sample_next` does: greedy (no random number used) for
 * temperature 0 or top-k 1; otherwise one `rng.random()` scaled by the total, and the first
 * token whose cumulative probability exceeds it.
 */
export function sampleNext(logits, rng, options = {}) {
  if (options.temperature === 0 || options.topK === 1) return argmax(logits);
  const probs = filteredProbs(logits, options);
  const cdf = new Float64Array(probs.length);
  probs.reduce((sum, p, i) => (cdf[i] = sum + p), 0);
  const u = rng.random() * cdf[cdf.length - 1];
  const below = cdf.filter((c) => c <= u).length;
  return Math.min(below, probs.length - 1);
}

/**
 * lib's `generate`: read `ids`, then draw and read one token at a time, with a fresh cache.
 * A generator function: each `yield` is one new token id, so a page can show them as they come.
 * Stops after `maxNewTokens` or at the end of the model's context.
 */
export function* generate(model, ids, maxNewTokens, rng, options = {}) {
  const budget = Math.min(maxNewTokens, model.config.n_ctx - ids.length);
  const cache = new Cache(model.config);
  let pending = ids;
  for (let i = 0; i < budget; i++) {
    const { logits } = forward(model, pending, cache);
    const token = sampleNext(logits, rng, options);
    yield token;
    pending = [token];
  }
}

// The shipped Shakespeare model's forward pass in plain JavaScript, for the book's live pages.
//
// This is lib's GPT-2 forward pass (lib/model.py and the modules it calls), written for one
// position at a time: a prompt is read left to right, and each position's key and value are kept
// in a cache for the positions after it, as `lib.generate` does with `KVCache`. Every array is a
// plain typed array; every station the chapters name is recorded under lib's trace name
// ("embed.out", "h.0.attn.probs", ..., "ln_f", "logits"), with the shape it has in lib's trace.
//
// Weights are float32, as shipped; the arithmetic is JavaScript's float64, so these logits are
// lib's computed in float64 (`lib.load_pretrained("shakespeare", dtype=np.float64)`), and differ
// from lib's float32 logits by float32 rounding only (tests/test_live.py checks both).
//
// The weights come from tools/export_live_model.py: a JSON manifest (config, vocabulary, and for
// each of lib's parameter names its shape and byte offset) and one little-endian float32 file.
// Matrices keep lib's layout, input-major (d_in, d_out), so `y = x @ w`.

/** Fetch the manifest, then the weights it names; resolve to a model for `forward`. */
export async function loadModel(manifestUrl) {
  const manifest = await (await fetchOk(manifestUrl, { cache: "no-cache" })).json();
  const weightsUrl = new URL(manifest.weights.file, manifestUrl);
  weightsUrl.searchParams.set("sha256", manifest.weights.sha256); // new weights, new URL: no stale cache
  const buffer = await (await fetchOk(weightsUrl)).arrayBuffer();
  return modelFromBuffer(manifest, buffer);
}

async function fetchOk(url, options) {
  const response = await fetch(url, options);
  if (!response.ok) throw new Error(`could not load ${url}: HTTP ${response.status}`);
  return response;
}

/** A model from a parsed manifest and the bytes of its weights file. */
export function modelFromBuffer(manifest, buffer) {
  const config = manifest.config;
  const expected = { norm: "layernorm", positions: "learned", mlp: "gelu", gelu: "tanh", bias: true, tie_embeddings: true };
  for (const [key, value] of Object.entries(expected)) {
    if (config[key] !== value) throw new Error(`this forward pass is GPT-2's: it needs ${key}=${value}, the model has ${config[key]}`);
  }
  if (buffer.byteLength !== manifest.weights.bytes) {
    throw new Error(`the weights file has ${buffer.byteLength} bytes, its manifest says ${manifest.weights.bytes}`);
  }
  const params = {};
  for (const [name, { shape, offset }] of Object.entries(manifest.tensors)) {
    params[name] = new Float32Array(buffer, offset, shape.reduce((a, b) => a * b, 1));
  }
  return { config, vocab: manifest.vocab, ids: new Map(manifest.vocab.map((ch, id) => [ch, id])), params };
}

// ---- the tokenizer: one character, one token -------------------------------------------------

/** Text to token ids; a character the model never saw is an error that names it (as lib's). */
export function encode(model, text) {
  const ids = [];
  for (const char of text) { // by code point, as Python iterates a str
    const id = model.ids.get(char);
    if (id === undefined) {
      const code = char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const quoted = `'${JSON.stringify(char).slice(1, -1)}'`; // as Python's repr quotes it
      throw new RangeError(`character ${quoted} (U+${code}) at position ${ids.length} is not in the vocabulary`);
    }
    ids.push(id);
  }
  return ids;
}

export const decode = (model, ids) => ids.map((id) => model.vocab[id]).join("");

// ---- the stages, each on one position's vector -----------------------------------------------

/** `x @ w + b` with w stored input-major, (d_in, d_out): [d_in] -> [d_out]. */
function linear(x, w, b) {
  const dOut = b.length;
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const row = i * dOut; // row i of w: input feature i's contribution to every output
    for (let j = 0; j < dOut; j++) y[j] += xi * w[row + j];
  }
  return y;
}

/** LayerNorm: `(x - mean) / sqrt(var + eps) * g + b`, biased variance: [d] -> [d]. */
function layerNorm(x, g, b, eps) {
  const d = x.length;
  let mean = 0;
  for (let i = 0; i < d; i++) mean += x[i];
  mean /= d;
  let variance = 0;
  for (let i = 0; i < d; i++) variance += (x[i] - mean) ** 2;
  variance /= d;
  const scale = 1 / Math.sqrt(variance + eps);
  return x.map((xi, i) => (xi - mean) * scale * g[i] + b[i]);
}

/** GELU, tanh approximation (GPT-2's `gelu_new`, lib's `gelu`). */
const gelu = (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Softmax of `x[start .. start + n)` in place, maximum subtracted first. */
export function softmaxInPlace(x, start = 0, n = x.length) {
  let max = -Infinity;
  for (let i = start; i < start + n; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = start; i < start + n; i++) sum += x[i] = Math.exp(x[i] - max);
  for (let i = start; i < start + n; i++) x[i] /= sum;
  return x;
}

const add = (a, b) => a.map((ai, i) => ai + b[i]);

// ---- one position through the model -----------------------------------------------------------

/** Keys and values of the positions read so far, per block, and the ids of those positions. */
export class Cache {
  constructor(config) {
    const size = config.n_ctx * config.d_model;
    this.ids = [];
    this.layers = Array.from({ length: config.n_layer }, () => ({ k: new Float64Array(size), v: new Float64Array(size) }));
  }

  get length() {
    return this.ids.length;
  }

  /** Forget every position from `n` on (their rows are overwritten when read again). */
  truncate(n) {
    this.ids.length = Math.min(n, this.ids.length);
  }
}

/** Position t's query, key and value (the thirds of `c_attn`'s output); k and v join the cache. */
function queryKeyValue(x, w, kv, t) {
  const d = x.length;
  const qkv = linear(x, w("attn.c_attn.w"), w("attn.c_attn.b")); // [3d]: q | k | v
  kv.k.set(qkv.subarray(d, 2 * d), t * d);
  kv.v.set(qkv.subarray(2 * d), t * d);
  return qkv.slice(0, d);
}

/**
 * Causal self-attention of position t, whose keys and values go into the cache first: [d] -> [d].
 *
 * q, k and v are the three thirds of `c_attn`'s output, and head h owns columns
 * h*d_head .. (h+1)*d_head - 1 of each (lib's `split_heads`). Position t's query meets the keys
 * of positions 0..t: exactly the ones the causal mask lets it see, so for one query at a time the
 * mask has nothing left to hide and `scores_masked` equals `scores_scaled`.
 */
function attention(x, w, kv, t, nHead, record, prefix) {
  const d = x.length;
  const dHead = d / nHead;
  const S = t + 1; // keys this query sees
  const T = t + 1; // positions in lib's trace of the whole prompt
  const q = queryKeyValue(x, w, kv, t);

  const raw = new Float64Array(nHead * S); // [H, S]: q . k for every head and key
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < S; s++) {
      let dot = 0;
      for (let j = h * dHead; j < (h + 1) * dHead; j++) dot += q[j] * kv.k[s * d + j];
      raw[h * S + s] = dot;
    }
  }
  const scaled = raw.map((score) => score / Math.sqrt(dHead));
  const probs = scaled.slice();
  for (let h = 0; h < nHead; h++) softmaxInPlace(probs, h * S, S); // over keys, per head

  const heads = new Float64Array(d); // [H, d_head], head 0's features first: already merged
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < S; s++) {
      const p = probs[h * S + s];
      for (let j = h * dHead; j < (h + 1) * dHead; j++) heads[j] += p * kv.v[s * d + j];
    }
  }
  const out = linear(heads, w("attn.c_proj.w"), w("attn.c_proj.b"));
  if (record) {
    const a = `${prefix}.attn`;
    record(`${a}.q`, q, [nHead, T, dHead]);
    record(`${a}.k`, kv.k.slice(t * d, (t + 1) * d), [nHead, T, dHead]);
    record(`${a}.v`, kv.v.slice(t * d, (t + 1) * d), [nHead, T, dHead]);
    record(`${a}.scores_raw`, raw, [nHead, T, S]);
    record(`${a}.scores_scaled`, scaled, [nHead, T, S]);
    record(`${a}.scores_masked`, scaled, [nHead, T, S]);
    record(`${a}.probs`, probs, [nHead, T, S]);
    record(`${a}.heads`, heads, [nHead, T, dHead]);
    record(`${a}.merged`, heads, [T, d]);
    record(`${a}.out`, out, [T, d]);
  }
  return out;
}

/** The GELU MLP, on one position: expand to d_ff, GELU, project back: [d] -> [d]. */
function mlp(x, w, record, prefix) {
  const pre = linear(x, w("mlp.c_fc.w"), w("mlp.c_fc.b")); // [d_ff]
  const post = pre.map(gelu);
  const out = linear(post, w("mlp.c_proj.w"), w("mlp.c_proj.b")); // [d]
  if (record) {
    record(`${prefix}.mlp.pre_act`, pre, [pre.length]);
    record(`${prefix}.mlp.post_act`, post, [post.length]);
    record(`${prefix}.mlp.out`, out, [out.length]);
  }
  return out;
}

/** Block i's weights by their names within the block: `w("ln_1.g")` is `h.i.ln_1.g`. */
const blockWeights = (model, i) => (name) => model.params[`h.${i}.${name}`];

/** One pre-norm block: `x + attn(ln_1(x))`, then `+ mlp(ln_2(.))`: [d] -> [d]. */
function block(x, model, i, kv, t, record) {
  const prefix = `h.${i}`;
  const w = blockWeights(model, i);
  const eps = model.config.norm_eps;
  const h1 = layerNorm(x, w("ln_1.g"), w("ln_1.b"), eps);
  record?.(`${prefix}.ln_1`, h1, [h1.length]);
  const mid = add(x, attention(h1, w, kv, t, model.config.n_head, record, prefix)); // first residual
  const h2 = layerNorm(mid, w("ln_2.g"), w("ln_2.b"), eps);
  record?.(`${prefix}.resid_mid`, mid, [mid.length]);
  record?.(`${prefix}.ln_2`, h2, [h2.length]);
  const out = add(mid, mlp(h2, w, record, prefix)); // second residual
  record?.(`${prefix}.resid_post`, out, [out.length]);
  return out;
}

/**
 * The next position (the cache's length): embed token `id`, run every block, then the head.
 * With `wanted` false (a position of the prompt before its last), nothing reads this position's
 * output, only later positions' attention reads its keys and values: the last block stores
 * them and stops, and there are no logits (lib's `last_only` does the same).
 */
function step(model, cache, id, record, wanted = true) {
  const { config: c, params: p } = model;
  const d = c.d_model;
  const t = cache.length;
  const tok = p.wte.subarray(id * d, (id + 1) * d); // row `id` of the embedding matrix
  const pos = p.wpe.subarray(t * d, (t + 1) * d); // row t of the learned positions
  let x = Float64Array.from(tok, (e, i) => e + pos[i]);
  record?.("embed.tok", Float64Array.from(tok), [d]);
  record?.("embed.pos", Float64Array.from(pos), [d]);
  record?.("embed.out", x, [d]);
  cache.ids.push(id);
  const final = c.n_layer - 1;
  for (let i = 0; i < final; i++) x = block(x, model, i, cache.layers[i], t, record);
  if (!wanted) {
    const w = blockWeights(model, final);
    queryKeyValue(layerNorm(x, w("ln_1.g"), w("ln_1.b"), c.norm_eps), w, cache.layers[final], t);
    return null;
  }
  x = block(x, model, final, cache.layers[final], t, record);
  x = layerNorm(x, p["ln_f.g"], p["ln_f.b"], c.norm_eps);
  const logits = new Float64Array(c.vocab_size); // tied head: logit v is x . (row v of wte)
  for (let v = 0; v < c.vocab_size; v++) {
    for (let i = 0; i < d; i++) logits[v] += x[i] * p.wte[v * d + i];
  }
  record?.("ln_f", x, [d]);
  record?.("logits", logits, [c.vocab_size]);
  return logits;
}

/**
 * Read `ids` after the positions already in `cache` and return the logits of the last one
 * (lib: `model.forward(ids, cache=cache, last_only=True)[-1]`).
 *
 * With `trace`, also return every station at that last position: a Map from lib's trace name to
 * `{value, shape}`, where `value` is the station's last-position slice, flattened in lib's order
 * (`trace[name][-1]`, or `trace[name][:, -1]` for the per-head stations), and `shape` is the
 * station's shape in lib's trace of the whole sequence.
 */
export function forward(model, ids, cache, { trace = false } = {}) {
  const start = cache.length;
  if (ids.length === 0) throw new RangeError("no tokens to read: give at least one");
  if (start + ids.length > model.config.n_ctx) {
    throw new RangeError(`sequence too long: ${start} cached + ${ids.length} new tokens > context length n_ctx=${model.config.n_ctx}`);
  }
  let logits;
  let stations = null;
  for (let i = 0; i < ids.length; i++) {
    const last = i === ids.length - 1;
    stations = trace && last ? new Map() : null;
    const T = cache.length + 1;
    // A per-position station of width n has shape (T, n) in lib's trace; a per-head one (H, T, n).
    const record = stations && ((name, value, shape) => stations.set(name, { value, shape: shape.length === 1 ? [T, ...shape] : shape }));
    logits = step(model, cache, ids[i], record, last);
  }
  return { logits, trace: stations };
}

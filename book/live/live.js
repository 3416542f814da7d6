// The book's live model: every `<div class="fp-live">` on a page becomes a small laboratory
// around the shipped Shakespeare model, computed in the page by model.js (no kernel, no server).
//
//   <div class="fp-live" data-prompt="ROMEO:" data-parts="next sample attention trace">
//   <p>Text shown where this script does not run (a notebook in JupyterLab).</p>
//   </div>
//
// `data-parts` chooses the sections (all four by default):
//   next       the prompt's next-character distribution, top 10, raw and after temperature,
//              top-k and top-p (the sliders);
//   sample     a "Generate" button that continues the prompt with a shown seed, drawing exactly
//              what `lib.generate` draws with that seed;
//   attention  for a chosen layer and head, the last character's attention over the prompt;
//   trace      every station of lib's trace at the last position.
// The prompt box is always there. Every number shown is also in a `<data value>` element at full
// precision, which is what tests/test_live.py compares with lib.
//
// Typing re-reads only what changed: positions whose prefix is unchanged keep their keys and
// values in the cache (model.js), so a key press costs one position of the forward pass.

import { Cache, decode, encode, forward, loadModel } from "./model.js";
import { Generator } from "./random.js";
import { filteredProbs, generate } from "./sampling.js";

const MANIFEST = new URL("shakespeare.json", import.meta.url);
const PARTS = ["next", "sample", "attention", "trace"];
const TOP = 10;
const SHOWN_VALUES = 3; // values per station in the trace table

let modelPromise = null; // one download, shared by every component on the page
const sharedModel = () => (modelPromise ??= loadModel(MANIFEST));

/** `h("p", {class: "x"}, "text", child)`: an element with attributes and children. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== false) element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat());
  return element;
}

/** A character as the page shows it: a newline and a space get a visible sign and a spoken name. */
function char(ch) {
  const special = { "\n": ["↵", "newline"], " ": ["␣", "space"] }[ch];
  if (!special) return h("span", { class: "fp-char" }, ch);
  return h("span", { class: "fp-char" }, h("span", { "aria-hidden": "true" }, special[0]), h("span", { class: "fp-sr" }, special[1]));
}

/** A number in a `<data>` element: `shown` for the eye, the exact value for machines. */
const data = (value, shown) => h("data", { value: String(value) }, shown);
const percent = (p) => (p === 0 ? "0" : p < 0.001 ? "<0.1%" : `${(100 * p).toFixed(1)}%`);
const number = (x) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toFixed(4));
const visible = (text) => text.replaceAll("\n", "↵");
const shape = (dims) => `(${dims.join(", ")})`;

class LiveModel {
  constructor(host, n) {
    this.host = host;
    this.id = (name) => `fp-live-${n}-${name}`;
    const parts = (host.dataset.parts || PARTS.join(" ")).split(/\s+/);
    const unknown = parts.filter((part) => !PARTS.includes(part));
    if (unknown.length) throw new Error(`data-parts: unknown ${unknown.join(", ")} (known: ${PARTS.join(", ")})`);
    this.parts = new Set(parts);
    this.busy = false;
    this.build(host.dataset.prompt ?? "ROMEO:");
  }

  // ---- the page ------------------------------------------------------------------------------

  build(prompt) {
    const id = this.id;
    this.prompt = h("textarea", { id: id("prompt"), rows: 3, spellcheck: "false", autocapitalize: "off", autocomplete: "off", "aria-describedby": id("hint") });
    this.prompt.value = prompt;
    this.status = h("p", { class: "fp-status", role: "status" }, "The model loads when this box comes into view.");
    const sections = [
      h("p", { class: "fp-title" }, h("strong", {}, "Live: "), "the course's Shakespeare model, computed in this page."),
      h("label", { for: id("prompt") }, "Prompt"),
      this.prompt,
      h("p", { id: id("hint"), class: "fp-hint" }, "One token per character: letters, digits, punctuation, space and newline."),
      this.status,
    ];
    if (this.parts.has("next") || this.parts.has("sample")) sections.push(this.buildControls());
    if (this.parts.has("next")) sections.push(this.buildNext());
    if (this.parts.has("sample")) sections.push(this.buildSample());
    if (this.parts.has("attention")) sections.push(this.buildAttention());
    if (this.parts.has("trace")) sections.push(this.buildTrace());
    this.host.replaceChildren(...sections);
    this.host.setAttribute("role", "group");
    this.host.setAttribute("aria-label", "The Shakespeare model, live");
    this.host.dataset.state = "waiting"; // for the screen: then loading, ready (or error)
  }

  slider(name, label, attributes) {
    const input = h("input", { type: "range", id: this.id(name), ...attributes });
    const output = h("output", { for: this.id(name) });
    input.addEventListener("input", () => this.showNext());
    return [input, h("div", { class: "fp-slider" }, h("label", { for: this.id(name) }, label), output, input), output];
  }

  buildControls() {
    let row;
    [this.temperature, row, this.temperatureShown] = this.slider("temperature", "Temperature", { min: 0, max: 2, step: 0.05, value: 1 });
    const rows = [row];
    [this.topK, row, this.topKShown] = this.slider("top-k", "Top-k", { min: 1, max: 1, step: 1, value: 1 });
    rows.push(row);
    [this.topP, row, this.topPShown] = this.slider("top-p", "Top-p", { min: 0.05, max: 1, step: 0.05, value: 1 });
    rows.push(row);
    return h("fieldset", { class: "fp-controls" }, h("legend", {}, "Sampling: temperature, then top-k, then top-p"), rows);
  }

  buildNext() {
    this.nextCaption = h("caption", {});
    this.nextRows = h("tbody", {});
    this.nextTable = h(
      "table",
      { class: "fp-next" },
      this.nextCaption,
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "next"), h("th", { scope: "col" }, "model"), h("th", { scope: "col" }, "sampled from"))),
      this.nextRows,
    );
    return h("div", { class: "fp-section" }, this.nextTable);
  }

  buildSample() {
    const id = this.id;
    this.seed = h("input", { type: "number", id: id("seed"), min: 0, step: 1, value: 1, inputmode: "numeric" });
    this.length = h("input", { type: "number", id: id("length"), min: 1, max: 250, step: 1, value: 100, inputmode: "numeric" });
    this.generateButton = h("button", { type: "button", class: "fp-button" }, "Generate");
    this.generateButton.addEventListener("click", () => this.generate());
    this.sampleCaption = h("p", { class: "fp-hint fp-sample-caption", role: "status" });
    this.sample = h("p", { class: "fp-sample", "aria-live": "polite" });
    return h(
      "div",
      { class: "fp-section" },
      h("div", { class: "fp-row" },
        h("label", { for: id("seed") }, "Seed ", this.seed),
        h("label", { for: id("length") }, "Characters ", this.length),
        this.generateButton),
      this.sampleCaption,
      this.sample,
    );
  }

  buildAttention() {
    const id = this.id;
    this.layer = h("select", { id: id("layer") });
    this.head = h("select", { id: id("head") });
    for (const select of [this.layer, this.head]) select.addEventListener("change", () => this.showAttention());
    this.attentionCaption = h("p", { class: "fp-hint", id: id("attention-caption") });
    this.attention = h("ol", { class: "fp-attention", "aria-labelledby": id("attention-caption") });
    return h(
      "div",
      { class: "fp-section" },
      h("div", { class: "fp-row" }, h("label", { for: id("layer") }, "Layer ", this.layer), h("label", { for: id("head") }, "Head ", this.head)),
      this.attentionCaption,
      this.attention,
    );
  }

  buildTrace() {
    this.traceSummary = h("summary", {}, "Every station of the trace at the last position");
    this.traceRows = h("tbody", {});
    const table = h(
      "table",
      { class: "fp-trace" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "station"), h("th", { scope: "col" }, "shape"),
        h("th", { scope: "col" }, `last position: first ${SHOWN_VALUES} values`), h("th", { scope: "col" }, "norm"))),
      this.traceRows,
    );
    const scroll = h("div", { class: "fp-scroll", tabindex: 0, role: "region", "aria-label": "Trace at the last position" }, table);
    return h("details", { class: "fp-section" }, this.traceSummary, scroll);
  }

  /** Show `message` in the status line (or `where`), marked as a problem or not. */
  say(message, problem = false, where = this.status) {
    where.textContent = message;
    where.classList.toggle("fp-problem", problem);
  }

  // ---- once the weights are here ----------------------------------------------------------------

  async start() {
    this.host.dataset.state = "loading";
    this.say("Loading the model's weights…");
    try {
      this.model = await sharedModel();
    } catch (error) {
      this.host.dataset.state = "error";
      this.say(`The model could not be loaded: ${error.message}`, true);
      return;
    }
    const c = this.model.config;
    this.cache = new Cache(c);
    this.prompt.maxLength = c.n_ctx;
    if (this.topK) {
      this.topK.max = c.vocab_size;
      this.topK.value = c.vocab_size;
    }
    if (this.layer) {
      this.layer.append(...Array.from({ length: c.n_layer }, (_, i) => h("option", { value: i }, String(i))));
      this.head.append(...Array.from({ length: c.n_head }, (_, i) => h("option", { value: i }, String(i))));
    }
    this.prompt.addEventListener("input", () => this.read());
    this.host.dataset.state = "ready";
    this.read();
  }

  /** The prompt's token ids, or an error that says what the model cannot read. */
  encodePrompt(text) {
    const ids = encode(this.model, text);
    const n = this.model.config.n_ctx;
    if (ids.length === 0) throw new RangeError("Type at least one character.");
    if (ids.length > n) throw new RangeError(`The model reads at most ${n} characters; this prompt has ${ids.length}.`);
    return ids;
  }

  /** Tokenize the prompt and run the forward pass on what the cache does not hold yet. */
  read() {
    const text = this.prompt.value;
    let ids;
    try {
      ids = this.encodePrompt(text);
    } catch (error) {
      this.say(error.message, true);
      return;
    }
    const start = performance.now();
    const cache = this.cache;
    let reused = 0; // positions whose keys and values are still right: same prefix, not the last
    while (reused < Math.min(cache.length, ids.length - 1) && cache.ids[reused] === ids[reused]) reused++;
    cache.truncate(reused);
    const { logits, trace } = forward(this.model, ids.slice(reused), cache, { trace: true });
    const ms = performance.now() - start;
    this.result = { text, ids, logits, trace };
    this.host.dataset.shown = text; // the prompt whose results are on show
    this.say(`${ids.length} characters: read ${ids.length - reused} new position${ids.length - reused === 1 ? "" : "s"} `
      + `(${reused} from the cache) in ${ms.toFixed(1)} ms.`);
    this.host.dataset.ms = ms.toFixed(2);
    this.showNext();
    this.showAttention();
    this.showTrace();
  }

  /** The sliders' settings in lib's terms: `null` where a rule keeps everything. */
  options() {
    const V = this.model.config.vocab_size;
    const temperature = Number(this.temperature.value);
    const topK = Number(this.topK.value) >= V ? null : Number(this.topK.value);
    const topP = Number(this.topP.value) >= 1 ? null : Number(this.topP.value);
    this.temperatureShown.textContent = temperature === 0 ? "0 (greedy)" : temperature.toFixed(2);
    this.topKShown.textContent = topK === null ? `off (all ${V})` : String(topK);
    this.topPShown.textContent = topP === null ? "off (1.00)" : topP.toFixed(2);
    return { temperature, topK, topP };
  }

  showNext() {
    if (!this.result || !this.topK) return;
    const options = this.options();
    if (!this.nextRows) return;
    const { logits, text } = this.result;
    const raw = filteredProbs(logits);
    const kept = filteredProbs(logits, options);
    const top = Array.from(raw.keys()).sort((a, b) => raw[b] - raw[a] || a - b).slice(0, TOP);
    const bar = (p, kind) => h("td", {}, h("span", { class: `fp-bar fp-${kind}`, style: `width: ${(100 * p).toFixed(2)}%` }), data(p, percent(p)));
    this.nextRows.replaceChildren(
      ...top.map((id) => h("tr", { "data-token": id }, h("th", { scope: "row" }, char(this.model.vocab[id])), bar(raw[id], "raw"), bar(kept[id], "kept"))),
    );
    const tail = text.length > 24 ? `…${text.slice(-24)}` : text;
    const nKept = kept.filter((p) => p > 0).length;
    this.nextCaption.textContent = `After “${visible(tail)}”: the ${TOP} likeliest of ${raw.length} characters; ${nKept} kept by the filters.`;
  }

  showAttention() {
    if (!this.result || !this.attention) return;
    const layer = Number(this.layer.value);
    const head = Number(this.head.value);
    const { value, shape: [H, , S] } = this.result.trace.get(`h.${layer}.attn.probs`);
    const row = value.subarray(head * S, (head + 1) * S); // head's row: the last query over the S keys
    const chars = Array.from(this.result.text);
    this.attention.replaceChildren(
      ...chars.map((ch, s) => h("li", { "data-position": s }, char(ch), h("span", { class: "fp-bar fp-raw", style: `height: ${(100 * row[s]).toFixed(1)}%` }), data(row[s], row[s].toFixed(2)))),
    );
    this.attentionCaption.textContent = `Layer ${layer}, head ${head} of ${H}: how the last character's query spreads its attention over the ${S} characters it can see (h.${layer}.attn.probs).`;
  }

  showTrace() {
    if (!this.result || !this.traceRows) return;
    const rows = [];
    for (const [name, { value, shape: dims }] of this.result.trace) {
      const first = Array.from(value.subarray(0, SHOWN_VALUES));
      const norm = Math.sqrt(value.reduce((sum, x) => sum + x * x, 0));
      rows.push(h("tr", { "data-station": name },
        h("th", { scope: "row" }, h("code", {}, name)),
        h("td", {}, shape(dims)),
        h("td", {}, first.flatMap((x, i) => [i ? " " : "", data(x, number(x))])),
        h("td", {}, data(norm, number(norm)))));
    }
    this.traceRows.replaceChildren(...rows);
    this.traceSummary.textContent = `Every station of the trace at the last position (${rows.length} arrays, lib's names)`;
  }

  /** Continue the prompt with lib's sampling rules and NumPy's random stream for the seed. */
  async generate() {
    if (this.busy || !this.model) return;
    const seed = Number(this.seed.value);
    const length = Number(this.length.value);
    const problem = (message) => this.say(message, true, this.sampleCaption);
    if (!Number.isSafeInteger(seed) || seed < 0) return problem("The seed must be a whole number, 0 or more.");
    if (!Number.isSafeInteger(length) || length < 1 || length > 250) return problem("Characters: a whole number from 1 to 250.");
    let ids;
    try {
      ids = this.encodePrompt(this.prompt.value);
    } catch (error) {
      return problem(error.message);
    }
    const options = this.options();
    this.busy = true;
    this.generateButton.setAttribute("aria-disabled", "true");
    this.generateButton.textContent = "Generating…";
    const continuation = h("strong", {});
    this.sample.replaceChildren(h("span", { class: "fp-prompt" }, this.prompt.value), continuation);
    this.sample.dataset.state = "running";
    const settings = `seed ${seed}, temperature ${options.temperature}, top-k ${options.topK ?? "off"}, top-p ${options.topP ?? "off"}`;
    this.say(`Sampled with ${settings} (lib.generate draws the same characters with the same settings).`, false, this.sampleCaption);
    const tokens = [];
    let shown = performance.now();
    for (const token of generate(this.model, ids, length, new Generator(seed), options)) {
      tokens.push(token);
      if (performance.now() - shown > 50) { // let the page draw what is there so far
        continuation.textContent = decode(this.model, tokens);
        await new Promise((resolve) => setTimeout(resolve));
        shown = performance.now();
      }
    }
    continuation.textContent = decode(this.model, tokens);
    this.sample.dataset.state = "done";
    this.sample.dataset.seed = seed;
    this.generateButton.removeAttribute("aria-disabled");
    this.generateButton.textContent = "Generate";
    this.busy = false;
  }
}

// A component starts (downloads the weights, reads its prompt) when it comes near the screen: a
// reader who never scrolls to it costs nothing, and the page's first paint waits for nothing.
const waiting = new Map();
const nearScreen = new IntersectionObserver(
  (entries) => {
    for (const entry of entries.filter((e) => e.isIntersecting)) {
      nearScreen.unobserve(entry.target);
      waiting.get(entry.target).start();
    }
  },
  { rootMargin: "600px 0px" },
);
document.querySelectorAll(".fp-live").forEach((host, n) => {
  try {
    waiting.set(host, new LiveModel(host, n));
    nearScreen.observe(host);
  } catch (error) {
    host.append(h("p", { class: "fp-status fp-problem" }, `This live demo could not start: ${error.message}`));
    throw error;
  }
});

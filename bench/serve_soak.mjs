// The client side of bench/serve_soak.sh: N concurrent clients against one running `lathe
// serve` for a bounded time, mixing good completions and chat requests (streamed and not, on
// the base and on adapters) with malformed JSON, oversized bodies, unknown adapters, clients
// that hang up mid-stream or mid-body, and adapter hot reloads; the server's RSS sampled from
// /proc/PID/status throughout. Node 20's own http module only (no packages): a client that
// shares no code with the server's HTTP library, with raw control of sockets for the hang-ups
// and of Content-Length versus chunked bodies.
//
// "Answered correctly" for a good request: 200, an OpenAI-shaped body (choices in index order,
// a finish_reason each, usage = prompt + completion), and — greedy, fixed prompts — exactly
// the texts, finish reasons and usage the same request got when the server was idle before
// the soak (per weights: an adapter replaced in place must answer with the old or the new
// weights, never a mix). The idle reference itself is checked first: streamed equals
// non-streamed, return_token_ids' ids detokenize to the text and count as the usage says,
// prompt_tokens equals /tokenize's count. A bad request must get its 4xx with the error
// envelope {"error": {"message", "type", "param", "code"}}. Every request has a deadline; one
// past it is hung. Exit status 1 when any check failed.
//
// usage: node bench/serve_soak.mjs --url URL --pid PID --adapters-dir DIR [--warmup S]
//   [--duration S] [--clients N] [--deadline S] [--rss-every S] [--max-body-bytes N]
//   [--rss-bound-mib M] [--judge-rss 0|1] [--seed S]
// The load runs for warm-up + duration seconds; RSS growth is judged from the warm-up's end.
// DIR holds the adapter folders A, B and C; the server was started with
// --served-model-name tiny --lora-modules a=DIR/A b=DIR/B swap=DIR/C --max-loras 5 (with
// "hot" loaded one slot stays free, so a load from a missing folder fails on its path).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

// ---- options -------------------------------------------------------------------------------
const opts = {
  url: "",
  pid: 0,
  adaptersDir: "",
  warmup: 60,
  duration: 180,
  judgeRss: 1,
  clients: 64,
  deadline: 30,
  rssEvery: 2,
  maxBodyBytes: 1 << 20,
  rssBoundMib: 16,
  seed: 1,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts) || i + 1 >= process.argv.length) {
    console.error(`serve_soak: unknown or incomplete flag ${process.argv[i]}`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === "number" ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opts.url || !opts.pid || !opts.adaptersDir) {
  console.error("serve_soak: --url, --pid and --adapters-dir are required");
  process.exit(2);
}
const target = new URL(opts.url);
const BASE = "tiny";
const folder = (w) => path.join(opts.adaptersDir, w);

// A seeded PRNG (mulberry32) so a run's mix of requests can be repeated.
let rngState = opts.seed >>> 0;
function rand() {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(rand() * list.length)];

// ---- HTTP ----------------------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: opts.clients + 8 });

// One request. body: string or Buffer (sent with Content-Length) or an array of Buffers (sent
// chunked). hangUp: {afterEvents: k} closes the socket after k SSE data events, {afterBodyBytes:
// k} sends only k bytes of a body announced longer, {afterMs: t} closes t ms after sending.
// Resolves {status, headers, body, events, error, hung, ms}; never rejects.
function request({ method = "POST", route, body, hangUp }) {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const out = { status: 0, headers: {}, body: "", events: [], error: null, hung: false, ms: 0 };
    const finish = (patch = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      Object.assign(out, patch, { ms: performance.now() - started });
      resolve(out);
    };
    const h = {};
    const whole = typeof body === "string" ? Buffer.from(body) : Buffer.isBuffer(body) ? body : null;
    if (whole) h["Content-Length"] = hangUp?.afterBodyBytes !== undefined ? whole.length + 1000 : whole.length;
    if (body !== undefined) h["Content-Type"] = "application/json";
    const req = http.request({ host: target.hostname, port: target.port, method, path: route, headers: h, agent });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ hung: true });
    }, opts.deadline * 1000);
    req.on("error", (e) => finish({ error: e.code || e.message }));
    req.on("response", (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      let pending = "";
      res.setEncoding("utf8");
      res.on("data", (text) => {
        out.body += text;
        if (!String(res.headers["content-type"] || "").startsWith("text/event-stream")) return;
        pending += text;
        let end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const event = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (event.startsWith("data: ")) out.events.push(event.slice(6));
          else if (!event.startsWith(":")) out.events.push({ malformed: event });
          if (hangUp?.afterEvents !== undefined && out.events.length >= hangUp.afterEvents) {
            req.destroy();
            return finish({ hungUpOnPurpose: true });
          }
        }
      });
      res.on("end", () => finish());
      res.on("error", (e) => finish({ error: e.code || e.message }));
      res.on("aborted", () => finish({ error: "response aborted" }));
    });
    if (hangUp?.afterBodyBytes !== undefined) {
      req.write(whole.subarray(0, hangUp.afterBodyBytes));
      setTimeout(() => {
        req.destroy();
        finish({ hungUpOnPurpose: true });
      }, 20);
      return;
    }
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else {
      req.end(whole ?? undefined);
    }
    if (hangUp?.afterMs !== undefined) {
      setTimeout(() => {
        req.destroy();
        finish({ hungUpOnPurpose: true });
      }, hangUp.afterMs);
    }
  });
}

const postJson = (route, value, extra = {}) => request({ route, body: JSON.stringify(value), ...extra });

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---- good requests -------------------------------------------------------------------------
// Fixed greedy requests; each is sent to every model. Short max_tokens keep the server's work
// small; n = 2 and prompt lists exercise choice ordering.
const templates = [
  { id: "cmpl-stock", chat: false, body: { prompt: "How many cars are in stock?", max_tokens: 12 } },
  { id: "cmpl-sql-n2", chat: false, body: { prompt: "SELECT COUNT(*) FROM vehicles", max_tokens: 16, n: 2 } },
  { id: "cmpl-list", chat: false, body: { prompt: ["宝马在上海有几辆在库？", "the dealer counted"], max_tokens: 8 } },
  { id: "cmpl-stop", chat: false, body: { prompt: "Once upon a time", max_tokens: 24, stop: ["e"] } },
  { id: "chat-zh", chat: true, body: { messages: [{ role: "user", content: "宝马在上海有几辆在库？" }], max_tokens: 12 } },
  {
    id: "chat-sys",
    chat: true,
    body: {
      messages: [
        { role: "system", content: "Answer with SQL." },
        { role: "user", content: "How many SUVs are in stock in Shanghai?" },
      ],
      max_tokens: 10,
    },
  },
];
// Served names and the adapter folders ("weights") each may answer with. "swap" is replaced in
// place back and forth between C and A during the soak; "hot" is loaded from C and unloaded.
const served = { [BASE]: ["base"], a: ["A"], b: ["B"], swap: ["C", "A"], hot: ["C"] };
const reference = new Map(); // `${template}/${weights}` -> {texts, finish, usage}

function routeOf(t) {
  return t.chat ? "/v1/chat/completions" : "/v1/completions";
}
function bodyFor(t, model, extra = {}) {
  return { ...t.body, model, temperature: 0, ...extra };
}

// Texts, finish reasons and usage of a full response, or a string saying what is wrong.
function readFull(t, r) {
  if (r.status !== 200) return `status ${r.status} ${r.error ?? ""} ${r.body.slice(0, 200)}`;
  const j = parseJson(r.body);
  if (!j || typeof j !== "object") return `not JSON: ${r.body.slice(0, 200)}`;
  if (j.object !== (t.chat ? "chat.completion" : "text_completion")) return `object ${j.object}`;
  if (typeof j.id !== "string" || !Number.isInteger(j.created)) return "id/created missing";
  if (!Array.isArray(j.choices)) return "choices missing";
  const texts = [];
  const finish = [];
  for (const [i, c] of j.choices.entries()) {
    if (c.index !== i) return `choice ${i} has index ${c.index}`;
    const text = t.chat ? c.message?.content : c.text;
    if (typeof text !== "string") return `choice ${i} has no text`;
    if (t.chat && c.message.role !== "assistant") return `choice ${i} role ${c.message.role}`;
    if (!["stop", "length"].includes(c.finish_reason)) return `choice ${i} finish_reason ${c.finish_reason}`;
    texts.push(text);
    finish.push(c.finish_reason);
  }
  const u = j.usage;
  if (!u || ![u.prompt_tokens, u.completion_tokens, u.total_tokens].every(Number.isInteger))
    return `usage ${JSON.stringify(u)}`;
  if (u.total_tokens !== u.prompt_tokens + u.completion_tokens) return `usage does not add up ${JSON.stringify(u)}`;
  return { texts, finish, usage: u, json: j };
}

// The same from a stream: data events in order, [DONE] last, no error event, the chat role first.
function readStream(t, r, choices) {
  if (r.status !== 200) return `status ${r.status} ${r.error ?? ""} ${r.body.slice(0, 200)}`;
  if (!String(r.headers["content-type"]).startsWith("text/event-stream")) return `content-type ${r.headers["content-type"]}`;
  if (r.events.at(-1) !== "[DONE]") return `no [DONE] at the end (${r.events.length} events, ${r.error ?? "ended"})`;
  const texts = Array(choices).fill("");
  const finish = Array(choices).fill(null);
  const roleSeen = Array(choices).fill(false);
  let usage = null;
  for (const [k, e] of r.events.slice(0, -1).entries()) {
    const c = typeof e === "string" ? parseJson(e) : undefined;
    if (!c) return `event ${k} is not JSON: ${JSON.stringify(e).slice(0, 200)}`;
    if (c.error) return `error event ${JSON.stringify(c.error).slice(0, 200)}`;
    if (c.object !== (t.chat ? "chat.completion.chunk" : "text_completion")) return `event ${k} object ${c.object}`;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (!(ch.index >= 0 && ch.index < choices)) return `event ${k} choice index ${ch.index}`;
      if (finish[ch.index]) return `choice ${ch.index} continues after its finish_reason`;
      if (t.chat) {
        if (ch.delta?.role === "assistant") roleSeen[ch.index] = true;
        else if (!roleSeen[ch.index]) return `choice ${ch.index} content before the role chunk`;
        texts[ch.index] += ch.delta?.content ?? "";
      } else {
        texts[ch.index] += ch.text ?? "";
      }
      if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
    }
  }
  if (!usage) return "no usage chunk";
  if (finish.some((f) => !["stop", "length"].includes(f))) return `finish reasons ${JSON.stringify(finish)}`;
  return { texts, finish, usage };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const view = (x) => ({ texts: x.texts, finish: x.finish, usage: x.usage });

// Where a reply differs from every weights the model may answer with; null when it matches one.
function mismatch(t, model, got) {
  for (const w of served[model]) if (same(view(got), reference.get(`${t.id}/${w}`))) return null;
  return `differs from the idle reference: got ${JSON.stringify(view(got))}, expected ${served[model]
    .map((w) => JSON.stringify(reference.get(`${t.id}/${w}`)))
    .join(" or ")}`;
}

// ---- the idle reference --------------------------------------------------------------------
// The prompt tokens the usage must count: /tokenize of each prompt (once, whatever n is).
async function promptTokens(t) {
  const prompts = t.chat ? [{ messages: t.body.messages }] : [t.body.prompt].flat().map((p) => ({ prompt: p }));
  let total = 0;
  for (const p of prompts) total += parseJson((await postJson("/tokenize", p)).body).count;
  return total;
}

async function buildReference(model, weights) {
  const problems = [];
  for (const t of templates) {
    const full = readFull(t, await postJson(routeOf(t), bodyFor(t, model)));
    if (typeof full === "string") {
      problems.push(`${t.id} on ${model}: ${full}`);
      continue;
    }
    const key = `${t.id}/${weights}`;
    if (reference.has(key)) {
      if (!same(view(full), reference.get(key))) problems.push(`${t.id} on ${model}: not the ${weights} reference`);
      continue;
    }
    // The usage agrees with the text: the ids the server sampled are as many as it counts and
    // decode to the text; the prompt counts as /tokenize says.
    const withIds = readFull(t, await postJson(routeOf(t), bodyFor(t, model, { return_token_ids: true })));
    if (typeof withIds === "string" || !same(withIds.texts, full.texts)) {
      problems.push(`${t.id} on ${model}: return_token_ids changed the reply`);
      continue;
    }
    let completionTokens = 0;
    for (const [i, c] of withIds.json.choices.entries()) {
      completionTokens += c.token_ids.length;
      const decoded = parseJson((await postJson("/detokenize", { tokens: c.token_ids })).body)?.prompt;
      if (!t.body.stop && decoded !== full.texts[i]) problems.push(`${t.id} on ${model}: ids decode to ${decoded}`);
      if (full.finish[i] === "length" && c.token_ids.length !== t.body.max_tokens)
        problems.push(`${t.id} on ${model}: length finish after ${c.token_ids.length} tokens`);
    }
    if (completionTokens !== full.usage.completion_tokens)
      problems.push(`${t.id} on ${model}: ${completionTokens} ids but usage says ${full.usage.completion_tokens}`);
    const choices = full.texts.length;
    const expectedPrompt = await promptTokens(t);
    if (expectedPrompt !== full.usage.prompt_tokens)
      problems.push(`${t.id} on ${model}: prompt_tokens ${full.usage.prompt_tokens}, /tokenize ${expectedPrompt}`);
    const streamed = readStream(
      t,
      await postJson(routeOf(t), bodyFor(t, model, { stream: true, stream_options: { include_usage: true } })),
      choices,
    );
    if (typeof streamed === "string" || !same(view(streamed), view(full)))
      problems.push(`${t.id} on ${model}: the stream differs: ${JSON.stringify(typeof streamed === "string" ? streamed : view(streamed))}`);
    reference.set(key, view(full));
  }
  return problems;
}

async function loadAdapter(name, weights, inPlace) {
  return postJson("/v1/load_lora_adapter", { lora_name: name, lora_path: folder(weights), load_inplace: inPlace });
}

// ---- the mix -------------------------------------------------------------------------------
const stats = new Map(); // kind -> {count, ok, failed, hung, ms: []}
const failures = [];
function record(kind, r, problem) {
  if (!stats.has(kind)) stats.set(kind, { count: 0, ok: 0, failed: 0, hung: 0, ms: [] });
  const s = stats.get(kind);
  s.count += 1;
  if (r.hung) {
    s.hung += 1;
    failures.push(`${kind}: no answer within ${opts.deadline} s`);
  } else if (problem) {
    s.failed += 1;
    failures.push(`${kind}: ${problem}`);
  } else {
    s.ok += 1;
    s.ms.push(r.ms);
  }
}

// The OpenAI error envelope with the expected status; null when it is right.
function errorProblem(r, status) {
  if (r.status !== status) return `status ${r.status} (expected ${status}) ${r.error ?? ""} ${r.body.slice(0, 160)}`;
  const j = parseJson(r.body);
  const e = j?.error;
  if (!e || typeof e.message !== "string" || typeof e.type !== "string" || e.code !== status || !("param" in e))
    return `not an OpenAI error body: ${r.body.slice(0, 160)}`;
  return null;
}

let hangUpsWhileRunning = 0;
let hotLoaded = false;
let hotLock = Promise.resolve();
let swapWeights = "C";

async function goodRequest() {
  const t = pick(templates);
  const model = pick(Object.keys(served));
  const stream = rand() < 0.5;
  const kind = `good ${t.chat ? "chat" : "completions"}${stream ? " stream" : ""}`;
  const extra = stream ? { stream: true, stream_options: { include_usage: true } } : {};
  const r = await postJson(routeOf(t), bodyFor(t, model, extra));
  // "hot" may be unloaded by the time the request is admitted: a 404 then, before or inside
  // the stream, is the right answer.
  if (model === "hot" && !r.hung) {
    if (errorProblem(r, 404) === null) return record(kind, r, null);
    const last = r.events.at(-2);
    if (stream && r.events.at(-1) === "[DONE]" && typeof last === "string" && parseJson(last)?.error?.code === 404)
      return record(kind, r, null);
  }
  const choices = reference.get(`${t.id}/base`).texts.length;
  const got = stream ? readStream(t, r, choices) : readFull(t, r);
  const problem = typeof got === "string" ? got : mismatch(t, model, got);
  record(kind, r, problem && `${t.id} on ${model}: ${problem}`);
}

const malformed = [
  ["truncated", '{"model": "tiny", "prompt": "How many", "max_tokens": 5'],
  ["not JSON", "How many cars are in stock?"],
  ["array", '[{"prompt": "x"}]'],
  ["empty", ""],
  ["number overflow", '{"prompt": "x", "max_tokens": 1e999}'],
  ["invalid UTF-8", Buffer.concat([Buffer.from('{"prompt": "'), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('"}')])],
  ["prompt type", '{"prompt": {"text": "x"}}'],
  ["negative temperature", '{"prompt": "x", "temperature": -1}'],
  ["messages type", '{"messages": "hello"}'],
  ["unknown role", '{"messages": [{"role": "robot", "content": "x"}]}'],
  ["prompt beyond the context", JSON.stringify({ prompt: Array(400).fill(7), max_tokens: 4 })],
];

async function malformedRequest() {
  const [what, body] = pick(malformed);
  const chat = what.includes("messages") || what.includes("role") ? true : rand() < 0.5;
  const r = await request({ route: chat ? "/v1/chat/completions" : "/v1/completions", body });
  const problem = errorProblem(r, 400);
  record("malformed JSON / bad fields", r, problem && `${what}: ${problem}`);
}

async function oversizedRequest() {
  const size = opts.maxBodyBytes + 1 + Math.floor(rand() * opts.maxBodyBytes);
  const head = '{"model": "tiny", "max_tokens": 4, "prompt": "';
  const text = Buffer.alloc(size - head.length - 2, "x");
  const chunked = rand() < 0.5;
  const parts = [Buffer.from(head), text, Buffer.from('"}')];
  const r = await request({ route: "/v1/completions", body: chunked ? parts : Buffer.concat(parts) });
  const kind = chunked ? "oversized body (chunked)" : "oversized body (Content-Length)";
  record(kind, r, errorProblem(r, 413));
}

async function unknownAdapterRequest() {
  const name = `no-such-adapter-${Math.floor(rand() * 1000)}`;
  const t = pick(templates);
  const stream = rand() < 0.5;
  const r = await postJson(routeOf(t), bodyFor(t, name, stream ? { stream: true } : {}));
  let problem = errorProblem(r, 404);
  if (!problem && !parseJson(r.body).error.message.includes(name)) problem = `message does not name ${name}`;
  record("unknown adapter", r, problem);
}

async function hangUpRequest() {
  const how = rand();
  if (how < 0.6) {
    // Mid-stream: a long stream, the socket closed after a few events.
    const t = pick(templates.filter((x) => !x.body.n));
    const body = bodyFor(t, pick(Object.keys(served).filter((m) => m !== "hot")), {
      stream: true,
      max_tokens: 100,
      ignore_eos: true,
    });
    delete body.stop;
    const r = await postJson(routeOf(t), body, { hangUp: { afterEvents: 1 + Math.floor(rand() * 4) } });
    const problem = r.hungUpOnPurpose ? null : `the stream ended before the hang-up: ${r.status} ${r.error ?? r.body.slice(0, 160)}`;
    // A chat stream opens with the role chunk before its request is admitted; after a token
    // the request was in the running batch, where cancelling it counts as an abort.
    if (!problem && r.events.length > (t.chat ? 1 : 0)) hangUpsWhileRunning += 1;
    return record("hang-up mid-stream", r, problem);
  }
  if (how < 0.8) {
    // Mid-body: Content-Length promises 1000 bytes more than are sent.
    const r = await request({
      route: "/v1/completions",
      body: JSON.stringify({ prompt: "How many cars", max_tokens: 4 }),
      hangUp: { afterBodyBytes: 10 },
    });
    return record("hang-up mid-body", r, r.hungUpOnPurpose || r.error ? null : `answered ${r.status}`);
  }
  // Before a non-streamed reply: the request still runs to completion on the server.
  const r = await postJson("/v1/completions", { prompt: "How many", max_tokens: 64, ignore_eos: true, model: BASE }, {
    hangUp: { afterMs: 5 },
  });
  record("hang-up before the reply", r, null);
}

// Hot reloads, each with a strict expectation: in place with the same weights (b), in place to
// the other weights (swap), loading and unloading an adapter others are using (hot, one at a
// time so its state is known), and refused loads.
async function reloadRequest() {
  const op = rand();
  if (op < 0.3) {
    const r = await loadAdapter("b", "B", true);
    return record("reload in place (same weights)", r, r.status === 200 ? null : `status ${r.status} ${r.body}`);
  }
  if (op < 0.55) {
    const next = swapWeights === "C" ? "A" : "C";
    const r = await loadAdapter("swap", next, true);
    if (r.status === 200) swapWeights = next;
    return record("reload in place (other weights)", r, r.status === 200 ? null : `status ${r.status} ${r.body}`);
  }
  if (op < 0.85) {
    const turn = hotLock.then(async () => {
      const r = hotLoaded
        ? await postJson("/v1/unload_lora_adapter", { lora_name: "hot" })
        : await loadAdapter("hot", "C", false);
      const kind = hotLoaded ? "unload adapter" : "load adapter";
      if (r.status === 200) hotLoaded = !hotLoaded;
      record(kind, r, r.status === 200 ? null : `status ${r.status} ${r.body}`);
    });
    hotLock = turn;
    return turn;
  }
  const refusals = [
    [() => loadAdapter("a", "A", false), 400], // loaded already, no load_inplace
    [() => postJson("/v1/load_lora_adapter", { lora_name: "x", lora_path: folder("missing") }), 404],
    [() => postJson("/v1/unload_lora_adapter", { lora_name: "never-loaded" }), 404],
    [() => postJson("/v1/load_lora_adapter", { lora_name: BASE, lora_path: folder("A") }), 400],
  ];
  const [send, status] = pick(refusals);
  const r = await send();
  record("refused reload", r, errorProblem(r, status));
}

const kinds = [
  [0.6, goodRequest],
  [0.09, malformedRequest],
  [0.05, oversizedRequest],
  [0.08, unknownAdapterRequest],
  [0.1, hangUpRequest],
  [0.08, reloadRequest],
];
function nextKind() {
  let x = rand();
  for (const [w, f] of kinds) {
    if (x < w) return f;
    x -= w;
  }
  return kinds[0][1];
}

// ---- server state --------------------------------------------------------------------------
function procStatus(field) {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(fs.readFileSync(`/proc/${opts.pid}/status`, "utf8"))[1]);
  } catch {
    return null; // the process is gone
  }
}
const rssMib = () => (procStatus("VmRSS") ?? NaN) / 1024;
const threads = () => procStatus("Threads");
function openFds() {
  try {
    return fs.readdirSync(`/proc/${opts.pid}/fd`).length;
  } catch {
    return null;
  }
}
function alive() {
  try {
    process.kill(opts.pid, 0);
    return true;
  } catch {
    return false;
  }
}
async function gauges() {
  const r = await request({ method: "GET", route: "/metrics" });
  const value = (name) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(r.body)?.[1] ?? NaN);
  return {
    running: value("vllm:num_requests_running"),
    waiting: value("vllm:num_requests_waiting"),
    aborted: Number(/^vllm:request_success_total\{[^}]*finished_reason="abort"[^}]*\} (\S+)$/m.exec(r.body)?.[1] ?? 0),
  };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

// ---- main ----------------------------------------------------------------------------------
async function main() {
  const checks = []; // [what, ok, detail]
  const check = (what, ok, detail = "") => checks.push([what, ok, detail]);

  // The idle reference, per weights; swap is C now, then A in place, then C again.
  // Sockets, files and threads of the fresh server, to compare with the idle server after.
  const before = { fds: openFds(), threads: threads() };
  const refProblems = [];
  refProblems.push(...(await buildReference(BASE, "base")));
  refProblems.push(...(await buildReference("a", "A")));
  refProblems.push(...(await buildReference("b", "B")));
  refProblems.push(...(await buildReference("swap", "C")));
  check("swap replaced in place (idle)", (await loadAdapter("swap", "A", true)).status === 200);
  refProblems.push(...(await buildReference("swap", "A")));
  check("swap back in place (idle)", (await loadAdapter("swap", "C", true)).status === 200);
  refProblems.push(...(await buildReference("swap", "C")));
  for (const w of ["A", "B", "C"]) {
    const changed = templates.some((t) => !same(reference.get(`${t.id}/${w}`), reference.get(`${t.id}/base`)));
    if (!changed) refProblems.push(`adapter ${w} answers every template as the base does`);
  }
  check("idle reference self-consistent", refProblems.length === 0, refProblems.slice(0, 5).join("; "));
  if (refProblems.length) {
    for (const p of refProblems) console.error(`reference: ${p}`);
    return finishRun(checks, null);
  }

  // The soak.
  const rss = []; // [seconds, MiB]
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const sampler = setInterval(() => {
    const v = rssMib();
    if (!Number.isNaN(v)) rss.push([elapsed(), v]);
  }, opts.rssEvery * 1000);
  rss.push([0, rssMib()]);
  const endAt = t0 + (opts.warmup + opts.duration) * 1000;
  let lastReport = 0;
  const client = async () => {
    while (performance.now() < endAt) {
      await nextKind()();
      if (elapsed() - lastReport >= 30) {
        lastReport = elapsed();
        let n = 0;
        for (const s of stats.values()) n += s.count;
        console.error(`soak: ${lastReport.toFixed(0)} s, ${n} requests, ${failures.length} failed, RSS ${rssMib()?.toFixed(1)} MiB`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, client));
  clearInterval(sampler);
  const soakSeconds = elapsed();
  rss.push([soakSeconds, rssMib()]);

  // After it: alive, healthy, nothing left running, and the idle answers unchanged.
  check("server process alive", alive());
  const health = await request({ method: "GET", route: "/health" });
  check("/health answers 200", health.status === 200, `status ${health.status} ${health.error ?? ""}`);
  let g = await gauges();
  for (let i = 0; i < 50 && (g.running !== 0 || g.waiting !== 0); ++i) {
    await new Promise((r) => setTimeout(r, 200));
    g = await gauges();
  }
  check("no request left running or waiting (10 s after the soak)", g.running === 0 && g.waiting === 0, `running ${g.running}, waiting ${g.waiting}`);
  if (hotLoaded) await postJson("/v1/unload_lora_adapter", { lora_name: "hot" });
  if (swapWeights !== "C") await loadAdapter("swap", "C", true);
  const after = [];
  for (const [model, w] of [[BASE, "base"], ["a", "A"], ["b", "B"], ["swap", "C"]])
    after.push(...(await buildReference(model, w)));
  check("idle answers after the soak equal those before", after.length === 0, after.slice(0, 3).join("; "));
  // Each mid-stream hang-up left 96+ of its tokens unsampled, so each must have been cancelled.
  // (One still queued is dropped before it runs and is not counted.)
  const hangUps = stats.get("hang-up mid-stream")?.ok ?? 0;
  check(
    "every mid-stream hang-up after a token was cancelled (metrics: finished_reason abort)",
    hangUpsWhileRunning <= g.aborted && g.aborted <= hangUps,
    `${g.aborted} aborted; ${hangUpsWhileRunning} hang-ups after a token, ${hangUps} in all`,
  );
  // Our keep-alive sockets closed, the server's side must close too (within its 5 s keep-alive).
  agent.destroy();
  let fds = openFds();
  for (let i = 0; i < 40 && fds > before.fds; ++i) {
    await new Promise((r) => setTimeout(r, 200));
    fds = openFds();
  }
  check("open file descriptors back to the fresh server's count", fds <= before.fds, `${before.fds} before, ${fds} after`);
  check("threads as many as in the fresh server", threads() === before.threads, `${before.threads} before, ${threads()} after`);
  return finishRun(checks, { rss, soakSeconds, aborted: g.aborted, before, fds });
}

function finishRun(checks, soak) {
  const rows = [["kind", "requests", "ok", "failed", "hung", "p50 ms", "p99 ms"]];
  let total = 0;
  const good = [];
  for (const [kind, s] of [...stats.entries()].sort()) {
    total += s.count;
    if (kind.startsWith("good")) good.push(...s.ms);
    rows.push([kind, s.count, s.ok, s.failed, s.hung, median(s.ms).toFixed(0), quantile(s.ms, 0.99).toFixed(0)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r) => "| " + r.map((v, c) => String(v).padEnd(widths[c])).join(" | ") + " |";
  console.log(line(rows[0]));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows.slice(1)) console.log(line(r));
  const hung = [...stats.values()].reduce((n, s) => n + s.hung, 0);
  const failed = [...stats.values()].reduce((n, s) => n + s.failed, 0);
  checks.push(["no failed request", failed === 0, `${failed} failed`]);
  checks.push(["no hung request", hung === 0, `${hung} hung`]);
  if (soak) {
    const { rss, soakSeconds } = soak;
    // Memory is judged after the warm-up: the server's pool threads (one per connection, about
    // 200) each grow their stack and allocator cache on first use, which takes a minute of load.
    const warm = Math.min(opts.warmup, soakSeconds);
    const at = (s) => median(rss.filter(([t]) => Math.abs(t - s) <= opts.rssEvery * 1.5).map(([, v]) => v));
    const start = at(warm);
    const mid = at((warm + soakSeconds) / 2);
    const end = at(soakSeconds);
    const max = Math.max(...rss.filter(([t]) => t >= warm).map(([, v]) => v));
    const half = rss.filter(([t]) => t >= (warm + soakSeconds) / 2);
    const mt = half.reduce((a, [t]) => a + t, 0) / half.length;
    const mv = half.reduce((a, [, v]) => a + v, 0) / half.length;
    const slope =
      half.reduce((a, [t, v]) => a + (t - mt) * (v - mv), 0) / Math.max(1e-9, half.reduce((a, [t]) => a + (t - mt) ** 2, 0));
    const goodCount = [...stats.entries()].filter(([k]) => k.startsWith("good")).reduce((n, [, s]) => n + s.count, 0);
    console.log(
      `\n${total} requests in ${soakSeconds.toFixed(0)} s (${(total / soakSeconds).toFixed(1)}/s, ${warm.toFixed(0)} s of it warm-up), ` +
        `${opts.clients} clients; good requests: ${goodCount}, p50 ${median(good).toFixed(0)} ms, p99 ${quantile(good, 0.99).toFixed(0)} ms; ` +
        `aborted by the server (metrics): ${soak.aborted} (mid-stream hang-ups after a token: ${hangUpsWhileRunning}); open fds ${soak.before.fds} before, ${soak.fds} after; ` +
        `threads ${soak.before.threads}`,
    );
    console.log(
      `RSS MiB: fresh ${rss[0][1].toFixed(1)}; after the warm-up ${start.toFixed(1)}, max ${max.toFixed(1)}, ` +
        `middle ${mid.toFixed(1)}, end ${end.toFixed(1)}; growth after the warm-up ${(end - start).toFixed(1)} MiB, ` +
        `over the second half ${(end - mid).toFixed(1)} MiB (slope ${(slope * 60).toFixed(2)} MiB/min; ` +
        `${rss.length} samples every ${opts.rssEvery} s)`,
    );
    const every = Math.max(opts.rssEvery, Math.ceil(soakSeconds / 12 / opts.rssEvery) * opts.rssEvery);
    const series = [];
    for (let s = 0; s <= soakSeconds + 1e-6; s += every) series.push(`${s.toFixed(0)}s ${at(s).toFixed(0)}`);
    console.log(`RSS MiB over time: ${series.join(", ")}`);
    if (opts.judgeRss)
      checks.push([`RSS growth after the warm-up <= ${opts.rssBoundMib} MiB`, end - start <= opts.rssBoundMib, `${(end - start).toFixed(1)} MiB`]);
    else console.log("RSS not judged (--judge-rss 0: too short a warm-up for the server's memory to settle)");
  }
  console.log("");
  for (const [what, ok, detail] of checks) console.log(`${ok ? "ok  " : "FAIL"} ${what}${ok || !detail ? "" : `: ${detail}`}`);
  const shown = new Map();
  for (const f of failures) {
    const kind = f.split(":")[0];
    shown.set(kind, (shown.get(kind) ?? 0) + 1);
    if (shown.get(kind) <= 5) console.error(`failure: ${f}`);
  }
  agent.destroy();
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`serve_soak: ${e.stack ?? e}`);
    process.exit(1);
  },
);
